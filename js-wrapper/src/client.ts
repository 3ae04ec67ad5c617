// Layer: js-wrapper. The browser runtime: composes the wasm engine (decisions) with the parts
// that do I/O, and exposes the public API. Everything the app sees is an immutable snapshot.
//
//   const client = await createClient({ url, token, collections: ['bills'] });
//   const bills = client.query('bills', { where: 'status=eq.unpaid', orderBy: 'total.desc', limit: 20 });
//   bills.subscribe(() => render(bills.getSnapshot()));
//   await client.collection('bills').insert({ total: 42, status: 'unpaid' });
//
// The parts, one concern each (runtime/): PersistenceWriter (what the engine marks dirty, to
// storage), SendLoop (the outbox, to the server), StreamSession (the live stream of the tab that
// owns it), Leadership (which tab leads), FollowerSync (a follower on the leader's stream),
// PendingGossip (the other tabs' pending writes), SnapshotLoader, LiveViews (queries, documents,
// listeners), StatusStore, NodeRing (which server node requests and the stream go to); the tab's
// role (roles.ts) decides what differs between leader and follower. Writes and their promises
// are writes.ts.
import { SyncEngine } from './engine.js';
import type { EngineOutput, Subscription } from './engine.js';
import { fromWire, SyncError, type ErrorCode } from './errors.js';
import { fetchSnapshot, pingServer, postEvent, postMutations } from './http.js';
import type { HttpContext } from './http.js';
import { newId } from './ids.js';
import { unsettledOf, Writes } from './writes.js';
import { deepFreeze, LazySubject } from './observable.js';
import type { Persistence, StoredOutbox } from './adapters/persistence.js';
import { HeldLock, heldLockNames, lockHolder, TabChannel, tabsSupported } from './adapters/tabs.js';
import type { TabMessage } from './adapters/tabs.js';
import { SseTransport, WebSocketTransport } from './adapters/transport.js';
import type { StreamParams } from './adapters/transport.js';
import { isOwnReply } from './frames.js';
import { RecentFrames } from './recent-frames.js';
import { loadSyncline } from './wasm.js';
import type { SynclineModule } from './wasm.js';
import { AuthGate } from './runtime/auth-gate.js';
import { FollowerSync } from './runtime/follower-sync.js';
import { Leadership, type Lock, type LockManager } from './runtime/leadership.js';
import { claimSlot, EMPTY_HISTORY, openPersistence, restoreEngine } from './runtime/startup.js';
import { LiveViews } from './runtime/live-views.js';
import { NodeRing, nodeUrls } from './runtime/nodes.js';
import { currentToken, isBrowserOnline, tokenSubject, validateOptions } from './runtime/options.js';
import { drainOrphans, orphanSlots } from './runtime/orphan-drain.js';
import { PendingGossip } from './runtime/pending-gossip.js';
import { PersistenceWriter } from './runtime/persistence-writer.js';
import { Follower, StreamOwner, type Role, type RoleHost } from './runtime/roles.js';
import { SendLoop } from './runtime/send-loop.js';
import { SnapshotLoader } from './runtime/snapshot-loader.js';
import { buildStatus, connectionViewOf, StatusStore } from './runtime/status.js';
import { StreamSession } from './runtime/stream-session.js';
import { ConnectionMachine } from './connection-machine.js';
import { RetryBackoff } from './retry-backoff.js';
import type {
  AggregateOptions,
  ClientOptions,
  CollectionHandle,
  ChangedDocument,
  DocumentChange,
  PublishedEvent,
  EventsSnapshot,
  LiveAggregate,
  LiveQuery,
  Observable,
  PendingTransaction,
  QueryOptions,
  SyncClient,
  SyncStatus,
  Transaction,
} from './types.js';

const ORPHAN_DRAIN_EVERY_MS = 5000;
const STORAGE_WATCH_EVERY_MS = 2000;
// Same bound as an HTTP request: a batch unanswered this long is sent again.
const REQUEST_TIMEOUT_MS = 15000;

const browserLocks: LockManager = {
  wait: (name, onAcquired, onLost) => HeldLock.wait(name, onAcquired, onLost),
  steal: (name, onAcquired, onLost) => HeldLock.steal(name, onAcquired, onLost),
  tryAcquire: (name) => HeldLock.tryAcquire(name),
  heldNames: () => heldLockNames(),
  holder: (name) => lockHolder(name),
};

/** Loads the wasm (once per page), restores persisted state and starts syncing. */
export async function createClient(options: ClientOptions): Promise<SyncClient> {
  validateOptions(options);
  const loadOpts = options.wasmUrl ? { wasmUrl: options.wasmUrl } : {};
  const mod = await loadSyncline(loadOpts);
  const client = new Client(mod, options);
  await client.start();
  return client;
}

class Client implements SyncClient, RoleHost {
  readonly ready = true as const;
  readonly options: Readonly<ClientOptions>;
  readonly auth: AuthGate;
  readonly recent = new RecentFrames();
  private readonly mod: SynclineModule;
  private readonly scope: string;
  private engineRef: SyncEngine | null = null;
  private persistence!: Persistence;
  private requests = new AbortController();
  private http: Omit<HttpContext, 'baseUrl'>; // onNode adds the node
  private readonly nodes: NodeRing;
  clientId = '';
  private slotLock: Lock | null = null;
  private channel: TabChannel | null = null;
  private role: Role;
  private leadership: Leadership | null = null;
  private gossip: PendingGossip | null = null;
  readonly writer: PersistenceWriter;
  follower!: FollowerSync;
  private readonly writes: Writes;
  private readonly sender: SendLoop;
  // The send loop's retry delays: the core's full-jitter backoff, as the stream's.
  private readonly sendBackoff: RetryBackoff;
  private readonly snapshots: SnapshotLoader;
  private readonly views: LiveViews;
  private readonly statusState: StatusStore;
  private readonly eventsSubject: LazySubject<EventsSnapshot>;
  private ownSub: Subscription | null = null;
  private closed = false;
  private disposed = false;
  private manualOffline = false;
  private eventsDirty = false;
  private lastSyncAt: number | null = null;
  private lastError: { code: ErrorCode; message: string } | null = null;
  private drainTimer: ReturnType<typeof setInterval> | null = null;
  private watchTimer: ReturnType<typeof setInterval> | null = null;
  private removeWindowListeners: (() => void) | null = null;

  constructor(mod: SynclineModule, options: ClientOptions) {
    this.mod = mod;
    this.options = Object.freeze({ ...options });
    this.nodes = new NodeRing(nodeUrls(options.url), { online: () => this.isOnline(), onChange: (to, from, reason) => this.note('node', { from, to, reason }) });
    this.scope = options.name ?? `${this.nodes.urls[0]!.replace(/\/$/, '')}|${tokenSubject(typeof options.token === 'string' ? options.token : undefined)}`;
    this.http = { token: () => currentToken(this.options.token), signal: this.requests.signal };
    this.auth = new AuthGate(() => {
      // A request went through after a final refusal: the stream may open again.
      if (this.role instanceof StreamOwner) this.role.stream.restart();
    });
    this.role = new Follower(this); // replaced in start()
    this.writes = new Writes({
      engine: () => this.engine(),
      assertOpen: () => this.assertOpen(),
      announce: (mutations) => this.gossip?.announce(mutations),
      handle: (out) => this.handleOutput(out, false),
      persist: () => this.writer.flush().then(() => {
        const e = this.writer.error;
        if (e) throw new SyncError(e.code, e.message);
      }),
      send: () => this.sender.schedule(0),
    });
    this.sendBackoff = new RetryBackoff(mod, { baseMs: options.backoff?.baseMs ?? 500, capMs: options.backoff?.capMs ?? 30000 });
    this.sender = new SendLoop({
      engine: () => this.engine(),
      isClosed: () => this.closed,
      route: () => (this.isOnline() ? this.role.sendRoute() : 'wait'),
      flush: () => this.writer.flush(),
      blocked: () => this.writer.blocksSending,
      durableNextMid: () => this.writer.durableNextMid,
      sendFrame: (text) => this.role.sendFrame(text),
      post: (body) => this.onNode((ctx) => postMutations(ctx, body)),
      handle: (out) => this.handleOutput(out, false),
      handleQuiet: (out) => this.handleOutputQuiet(out),
      onError: (e) => this.setLastError(e),
      backoff: this.sendBackoff,
      auth: this.auth,
      streamAnswerMs: options.backoff?.baseMs ?? 500,
    });
    this.snapshots = new SnapshotLoader({
      engine: () => this.engine(),
      fetch: () => this.onNode((ctx) => fetchSnapshot(ctx, [...this.options.collections], this.options.where)),
      collections: this.options.collections,
      ownsConnection: () => this.role.ownsConnection,
      isClosed: () => this.closed,
      applied: (out) => {
        this.recent.restart(this.engine().cursor());
        this.lastSyncAt = Date.now();
        this.handleOutput(out, false);
      },
      note: (type, data) => this.note(type, data),
    });
    this.writer = new PersistenceWriter({
      engine: () => (this.disposed ? null : this.engineRef),
      persistence: () => this.persistence,
      clientId: () => this.clientId,
      writesShared: () => this.role.ownsConnection,
      onError: (e) => this.storageFailed(e),
      onRecovered: () => {
        this.updateStatus();
        this.sender.schedule(0);
      },
      isClosed: () => this.closed,
    });
    this.views = new LiveViews({ engine: () => this.engine(), isClosed: () => this.closed });
    this.statusState = new StatusStore(this.buildStatus());
    // Built when read, not on every change: with a history of thousands of entries, copying and
    // freezing it for each frame batch kept busy tabs from their timers and their stream.
    this.eventsSubject = new LazySubject<EventsSnapshot>(deepFreeze({ entries: [], counts: {}, total: 0, capacity: options.historyLimit ?? 100 }), () => {
      if (!this.engineRef || this.disposed) return null;
      const h = this.engineRef.history();
      return deepFreeze({ entries: h.entries, counts: h.counts, total: h.total, capacity: h.capacity });
    });
  }

  engine(): SyncEngine {
    if (!this.engineRef) throw new SyncError('closed', 'the client is not started or already closed');
    return this.engineRef;
  }

  private lockName(kind: string): string {
    return `syncline:${this.scope}:${kind}`;
  }

  // ------------------------------------------------------------------ start-up

  async start(): Promise<void> {
    this.persistence = openPersistence(this.options.persistence, `syncline:${this.scope}`, (e) => this.writer.reportError(e), () => this.onStorageWiped());
    await this.persistence.open();
    if (this.persistence.kind !== 'memory') this.background(this.requestPersistentStorage());
    const loaded = await this.persistence.load();
    const multiTab = (this.options.multiTab ?? true) && tabsSupported() && this.persistence.kind !== 'memory';
    const slotLock = (id: string) => HeldLock.tryAcquire(this.lockName(`slot:${id}`));
    const claimed = multiTab ? await claimSlot(this.persistence, loaded.outboxes, slotLock) : null;
    const slot = multiTab ? (claimed?.slot ?? null) : (loaded.outboxes[0] ?? null);
    this.clientId = slot?.clientId ?? `c-${newId()}`;
    this.slotLock = claimed?.lock ?? (multiTab ? await slotLock(this.clientId) : null);
    this.engineRef = restoreEngine(this.mod, loaded, slot, {
      clientId: this.clientId,
      collections: [...this.options.collections],
      ...(this.options.where ? { where: this.options.where } : {}),
      nowMs: Date.now(),
      historyLimit: this.options.historyLimit ?? 100,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    const engine = this.engine();
    this.syncChangeDetail();
    if (this.persistence.discardedBeforeOpen) {
      this.writer.reportError(new SyncError('storage_wiped', 'the local database of an earlier run is gone (discarded by the browser or cleared): writes it still held are lost'));
    }
    // Make the slot durable at once so its mids never restart.
    await this.writer.writeOutboxNow(slot?.outbox ?? { nextMid: engine.state().nextMid, entries: [] });
    this.writes.restore(unsettledOf(slot?.outbox.entries ?? []));
    this.ownSub = engine.subscription();
    this.follower = new FollowerSync({
      engine: () => (this.disposed ? null : this.engineRef),
      clientId: this.clientId,
      post: multiTab ? (m) => this.post(m) : null,
      isClosed: () => this.closed,
      ownsConnection: () => this.role.ownsConnection,
      isOnline: () => this.isOnline(),
      loadSnapshot: () => this.snapshots.load(),
      apply: (frames) => {
        this.lastSyncAt = Date.now();
        this.handleOutput(this.receiveRecorded(frames, frames), false);
      },
      handle: (out) => {
        this.eventsDirty = true;
        this.handleOutput(out, false);
      },
      note: (type, data) => this.note(type, data),
      onError: (e) => (this.lastError = e),
      onSettled: () => this.updateStatus(),
      background: (t) => this.background(t),
    }, this.ownSub);
    // A re-base on restore (subscription_changed) left storage work: documents outside the new
    // subscription to delete, the new subscription to store (the leader's write; a follower keeps
    // it for when it leads).
    this.handleOutput(engine.tick(Date.now()), false);
    // Other tabs' stored pending writes (alive or gone): shown here at once, even offline.
    if (multiTab) {
      const ops = PendingGossip.opsForSlots(loaded.outboxes, this.clientId);
      if (ops.length) engine.foreign(ops);
    }
    this.eventsDirty = true;
    this.installWindowListeners();
    if (this.persistence.kind !== 'memory') {
      this.watchTimer = setInterval(() => this.background(this.checkStorageAlive()), STORAGE_WATCH_EVERY_MS);
    }

    if (multiTab) {
      this.channel = new TabChannel(this.lockName('channel'), (m) => this.onTabMessage(m));
      this.gossip = new PendingGossip({
        clientId: this.clientId,
        post: (m) => this.post(m),
        engine: () => (this.disposed ? null : this.engineRef),
        ownPending: () => this.writes.ownPending(),
        ownPendingCount: () => this.writes.ownPendingCount,
        ownsConnection: () => this.role.ownsConnection,
        orphanSlots: () => this.orphanSlots(),
        handle: (out) => this.handleOutput(out, false),
        handleQuiet: (out) => this.handleOutputQuiet(out),
        isClosed: () => this.closed,
        background: (t) => this.background(t),
      });
      this.leadership = new Leadership({
        locks: browserLocks,
        lockName: (kind) => this.lockName(kind),
        clientId: this.clientId,
        post: (m) => this.post(m),
        storedCursor: () => this.writer.storedCursor,
        leaderTimeoutMs: this.options.leaderTimeoutMs ?? 5000,
        isHidden: () => typeof document !== 'undefined' && document.visibilityState === 'hidden',
        isClosed: () => this.closed,
        onLead: () => this.becomeLeader(),
        onLose: () => this.loseLeadership(),
        note: (type, data) => this.note(type, data),
        background: (t) => this.background(t),
      });
      this.role = new Follower(this);
      this.leadership.start();
      this.post({ t: 'hello', from: this.clientId });
      this.gossip.start();
      this.background(this.follower.catchUp());
      engine.setTransportReady(this.isOnline());
      this.sender.schedule(0);
    } else {
      this.role = this.ownStream('single');
    }
    this.updateStatus();
  }

  /** Asks the browser not to evict this origin's storage under pressure (best effort). */
  private async requestPersistentStorage(): Promise<void> {
    const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean>; persisted?: () => Promise<boolean> } } }).navigator?.storage;
    if (!storage?.persist) return;
    try {
      const already = (await storage.persisted?.()) ?? false;
      const granted = already || (await storage.persist());
      this.note('storage_persist', { granted });
    } catch {
      /* not available in this context */
    }
  }

  private installWindowListeners(): void {
    const w = globalThis as unknown as Window & typeof globalThis;
    if (typeof w.addEventListener !== 'function') return;
    const network = () => this.onNetworkChange();
    const visibility = () => {
      if (typeof document === 'undefined') return;
      if (document.visibilityState === 'hidden') void this.flush(true);
      else if (!this.closed) this.role.retryNow();
    };
    const pagehide = () => void this.flush(true);
    w.addEventListener('online', network);
    w.addEventListener('offline', network);
    w.addEventListener('pagehide', pagehide);
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', visibility);
    this.removeWindowListeners = () => {
      w.removeEventListener('online', network);
      w.removeEventListener('offline', network);
      w.removeEventListener('pagehide', pagehide);
      if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', visibility);
    };
  }

  private isOnline(): boolean {
    return !this.manualOffline && isBrowserOnline();
  }

  /** Abandons requests in flight (their answers may never come); the engine resends. */
  private abortRequests(): void {
    this.requests.abort(new DOMException('connection lost', 'AbortError'));
    this.requests = new AbortController();
    this.http = { ...this.http, signal: this.requests.signal };
  }

  /** A request to the current node (or `pinned`); one that finds the node down moves to the next. */
  private onNode<T>(request: (ctx: HttpContext) => Promise<T>, pinned?: string): Promise<T> {
    return this.nodes.run((baseUrl) => request({ ...this.http, baseUrl }), pinned);
  }

  private onNetworkChange(): void {
    if (this.closed) return;
    const online = this.isOnline();
    if (!online) this.abortRequests();
    this.role.networkChanged(online);
    if (online) this.sender.schedule(0);
    this.updateStatus();
  }

  // ------------------------------------------------------------------ roles

  /** This tab takes the stream (a single tab, or the leader). */
  private ownStream(kind: 'single' | 'leader'): StreamOwner {
    const h = this.options.backoff ?? {};
    const machine = new ConnectionMachine(this.mod, {
      ...(h.baseMs !== undefined ? { baseMs: h.baseMs } : {}),
      ...(h.capMs !== undefined ? { capMs: h.capMs } : {}),
      ...(h.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: h.heartbeatTimeoutMs } : {}),
    });
    const stream = new StreamSession({
      machine,
      makeTransport: (handlers) => ((this.options.transport ?? 'sse') === 'websocket' ? new WebSocketTransport(handlers) : new SseTransport(handlers)),
      params: () => this.streamParams(),
      needsSnapshot: () => {
        const st = this.engine().state();
        return st.needSnapshot || st.cursor === 0;
      },
      loadSnapshot: () => this.snapshots.load(),
      ping: (node) => this.onNode((ctx) => pingServer(ctx), node),
      nodeFailed: (node, reason) => this.nodes.failed(node, reason),
      auth: this.auth,
      isOnline: () => this.isOnline(),
      onFrames: (frames) => this.onStreamFrames(frames),
      onOpen: () => {
        this.engine().setTransportReady(true);
        this.sender.schedule(0);
        this.updateStatus();
      },
      onClosed: () => this.engine().setTransportReady(false),
      onFailure: (e) => {
        this.abortRequests();
        this.engine().setTransportReady(false);
        this.setLastError(e);
        // A final refusal: pending writes settle (as unauthorized) through HTTP.
        if (this.auth.isFinal) this.sender.schedule(0);
      },
      onState: (step) => {
        this.engine().record('status', { state: step.state, attempt: step.attempt, reason: step.lastError });
        this.eventsDirty = true;
        this.notifyEvents();
        this.updateStatus();
      },
      onLatency: () => this.updateStatus(),
      onReset: () => this.post({ t: 'resnapshot', from: this.clientId }),
      isClosed: () => this.closed,
    });
    const owner = new StreamOwner(kind, this, stream);
    this.role = owner;
    stream.start();
    return owner;
  }

  private becomeLeader(): void {
    this.role.dispose();
    this.follower.stopBuffering();
    // Its own stream from now on: a replica that followed a leader of another subscription
    // takes a snapshot first (the stream's open) and writes every document again.
    this.follower.follow(this.ownSub ?? undefined);
    this.writer.tookStream();
    this.note('leader', { clientId: this.clientId });
    this.ownStream('leader');
    this.background(this.drain());
    this.drainTimer = setInterval(() => this.background(this.drain()), ORPHAN_DRAIN_EVERY_MS);
    this.updateStatus();
  }

  /** Another tab stole the leader lock while this one did not answer (hung or frozen): hand the
   * stream over and follow. The outbox slot stays this tab's; its writes go over HTTP. */
  private loseLeadership(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = null;
    this.role.dispose();
    this.role = new Follower(this);
    this.note('leader_lost', { clientId: this.clientId });
    this.engine().setTransportReady(this.isOnline());
    this.background(this.follower.catchUp());
    this.sender.schedule(0);
    this.updateStatus();
  }

  private onTabMessage(m: TabMessage): void {
    if (this.closed || m.from === this.clientId) return;
    this.leadership?.heard(m);
    if (m.t === 'pending' || m.t === 'pendingSet' || m.t === 'settled') this.gossip?.heard(m);
    else if (m.t === 'wiped') this.onStorageWiped(true);
    else {
      if (m.t === 'hello') this.gossip?.postSet();
      this.role.heard(m);
    }
  }

  post(m: TabMessage): void {
    this.channel?.post(m);
  }

  ownSubscription(): Subscription | null {
    return this.ownSub;
  }

  lastSync(): number | null {
    return this.lastSyncAt;
  }

  private orphanSlots(): Promise<StoredOutbox[]> {
    return orphanSlots({
      persistence: this.persistence,
      clientId: this.clientId,
      slotLockName: (id) => this.lockName(`slot:${id}`),
      heldNames: () => heldLockNames(),
    });
  }

  private drain(): Promise<void> {
    return drainOrphans({
      persistence: this.persistence,
      clientId: this.clientId,
      slotLockName: (id) => this.lockName(`slot:${id}`),
      heldNames: () => heldLockNames(),
      tryAcquire: (name) => HeldLock.tryAcquire(name),
      engineFor: (slot) => {
        const temp = SyncEngine.restoreParts(this.mod, {
          client: slot.clientId, cursor: 0, docs: [], outbox: slot.outbox, history: EMPTY_HISTORY(0),
        }, { clientId: slot.clientId, collections: ['orphan_outbox'], historyLimit: 0 });
        return {
          setTransportReady: (r) => temp.setTransportReady(r),
          takeBatch: () => temp.takeBatch(),
          receiveFrames: (f) => temp.receiveFrames(f),
          takePersistence: () => temp.takePersistence(),
          dispose: () => temp.dispose(),
        };
      },
      post: (body) => this.onNode((ctx) => postMutations(ctx, body)),
      mayDrain: () => !this.closed && this.role.ownsConnection && this.isOnline(),
      note: (type, data) => this.note(type, data),
    });
  }

  broadcastStatus(): void {
    if (!this.channel || !this.role.ownsConnection) return;
    this.post({ t: 'status', from: this.clientId, status: { ...connectionViewOf(this.statusState.current), transport: this.statusState.current.transport } });
  }

  // ------------------------------------------------------------------ stream

  /** Where the stream resumes: the engine's cursor, for every subscribed collection. */
  private async streamParams(): Promise<StreamParams> {
    const params: StreamParams = {
      baseUrl: this.nodes.current,
      token: await currentToken(this.options.token),
      collections: [...this.options.collections],
      cursor: this.engine().state().cursor,
    };
    if (this.options.where) params.where = this.options.where;
    return params;
  }

  /** Frames of this tab's own stream; true when the replica's cursor expired. */
  private onStreamFrames(frames: string[]): boolean {
    if (this.closed) return false;
    // Mutation results answer this tab's own client id: other tabs must never see them, or a
    // follower would take the leader's verdict on mid N for its own mid N
    // (docs/decisions/0004-mutation-results-are-never-shared.md).
    const shared = frames.filter((f) => !isOwnReply(f));
    const out = this.receiveRecorded(frames, shared);
    this.lastSyncAt = Date.now();
    if (shared.length) this.post({ t: 'frames', frames: shared, from: this.clientId, ...(this.ownSub ? { sub: this.ownSub } : {}) });
    this.handleOutput(out, true);
    return out.needSnapshot;
  }

  /** Feeds frames to the engine and keeps `shared` (those other tabs may see) in the recent
   * stretch of the log, with the cursor move they made: a leader catches followers up from it. */
  private receiveRecorded(frames: string[], shared: string[]): EngineOutput {
    const engine = this.engine();
    const before = engine.cursor();
    const out = engine.receiveFrames(frames);
    this.recent.record(before, engine.cursor(), shared);
    return out;
  }

  // ------------------------------------------------------------------ storage

  /** Runs an internal task nobody awaits. close() can dispose the engine while such a task
   * waits on the network or storage; what it throws after that is moot, but anything else is a
   * bug and stays an unhandled rejection so that it is seen. */
  background(task: Promise<unknown>): void {
    task.catch((e) => {
      if (!this.closed) throw e;
    });
  }

  flush(withHistory = false): Promise<void> {
    return this.writer.flush(withHistory);
  }

  private async checkStorageAlive(): Promise<void> {
    if (await this.writer.slotVanished()) this.onStorageWiped();
  }

  /** The browser deleted the database under us: everything in memory is written again. */
  private onStorageWiped(fromOtherTab = false): void {
    if (this.closed || !this.engineRef) return;
    this.writer.reportError(new SyncError('storage_wiped', 'the local database was cleared; rewriting it from memory'));
    if (!fromOtherTab) this.post({ t: 'wiped', from: this.clientId });
    this.writer.wiped();
    this.handleOutput(this.engine().markAllDirty(), false);
    void this.flush();
  }

  private storageFailed(e: { code: ErrorCode; message: string }): void {
    this.engineRef?.record('storage_error', { code: e.code, message: e.message });
    this.eventsDirty = true;
    this.notifyEvents();
    this.updateStatus();
  }

  /** A runtime event in the history (leadership, catch-up, ...): apps see it at once. */
  private note(type: string, data: Record<string, unknown>): void {
    if (!this.engineRef || this.disposed) return;
    this.eventsDirty = true;
    this.handleOutput(this.engineRef.record(type, data), false);
  }

  // ------------------------------------------------------------------ outputs

  private handleOutput(out: EngineOutput, fromStream: boolean): void {
    this.views.apply(out);
    const { applied, rejected } = this.writes.settle(out.settled);
    if (rejected.length || applied.length) this.gossip?.settled(applied, rejected);
    if (out.errors?.length) {
      const e = fromWire(out.errors[0]!.code, out.errors[0]!.message);
      this.lastError = { code: e.code, message: e.message };
    }
    if (out.changes.length || out.events.length || out.settled.length || fromStream || out.errors?.length) this.eventsDirty = true;
    if (out.persist) this.writer.schedule();
    if (out.settled.length || out.changes.length) this.sender.schedule(0);
    this.notifyEvents();
    this.updateStatus();
  }

  /** handleOutput without waking the send loop (used from inside it and by periodic work). */
  private handleOutputQuiet(out: EngineOutput): void {
    if (out.changes.length || out.settled.length || out.queries.length || out.aggregates.length || out.persist) {
      this.handleOutput(out, false);
    }
  }

  private setLastError(e: { code: ErrorCode; message: string }): void {
    this.lastError = e;
    this.updateStatus();
  }

  private notifyEvents(): void {
    if (!this.eventsDirty) return;
    this.eventsDirty = false;
    this.eventsSubject.invalidate();
  }

  private buildStatus(): SyncStatus {
    const st = this.engineRef && !this.disposed ? this.engineRef.state() : null;
    return buildStatus({
      view: this.role.connectionView(),
      role: this.role.kind,
      transport: this.options.transport ?? 'sse',
      isOnline: this.isOnline(),
      engine: st,
      clientId: this.clientId,
      node: this.nodes.current,
      lastError: this.lastError,
      storageError: this.writer?.error ?? null, // undefined while the constructor runs
    });
  }

  updateStatus(): void {
    if (!this.engineRef || this.disposed) return;
    if (this.statusState.update(this.buildStatus())) this.broadcastStatus();
  }

  // ------------------------------------------------------------------ public API

  get status(): SyncStatus {
    return this.statusState.current;
  }

  get statusStore(): Observable<SyncStatus> {
    return this.statusState.subject;
  }

  get events(): Observable<EventsSnapshot> {
    return this.eventsSubject;
  }

  private assertOpen(): void {
    if (this.closed) throw new SyncError('closed', 'the client is closed');
  }

  collection<T = Record<string, unknown>>(name: string): CollectionHandle<T> {
    const w = this.writes.collection(name);
    return {
      name,
      insert: w.insert,
      update: w.update,
      delete: w.delete,
      get: (id) => this.views.frozenDoc<T>(name, id),
      getMany: (ids) => this.views.frozenMany<T>(name, ids),
      all: () => this.views.all<T>(name),
      document: (id) => this.views.document<T>(name, id),
      observe: () => this.query<T>(name),
    };
  }

  transaction(fn: (tx: Transaction) => void): PendingTransaction {
    return this.writes.transaction(fn);
  }

  query<T = Record<string, unknown>>(collection: string, options: QueryOptions = {}): LiveQuery<T> {
    this.assertOpen();
    return this.views.query<T>(collection, options);
  }

  aggregate(collection: string, options: AggregateOptions = {}): LiveAggregate {
    this.assertOpen();
    return this.views.aggregate(collection, options);
  }

  onDocumentChange(listener: (e: DocumentChange) => void): () => void {
    const off = this.views.onDocumentChange(listener);
    this.syncChangeDetail();
    return () => {
      const removed = off();
      this.syncChangeDetail();
      return removed;
    };
  }

  onChanges(listener: (changes: readonly ChangedDocument[]) => void): () => void {
    return this.views.onChanges(listener);
  }

  private syncChangeDetail(): void {
    if (this.engineRef && !this.disposed) this.engineRef.setChangeDetail(this.views.wantsChangeDetail);
  }

  onEvent(listener: (e: PublishedEvent) => void): () => void {
    return this.views.onEvent(listener);
  }

  async publish(name: string, data: Record<string, unknown> = {}, target: { collection?: string; id?: string } = {}): Promise<{ seq: number }> {
    this.assertOpen();
    if (typeof name !== 'string' || !name || name.length > 128) throw new SyncError('invalid_request', 'event name must be 1..128 characters', { field: 'name' });
    if (!this.isOnline()) throw new SyncError('network', 'offline: custom events are not queued');
    return this.onNode((ctx) => postEvent(ctx, { name, data, ...target }));
  }

  forceSync(): void {
    if (this.closed) return;
    this.role.forceSync();
    this.sender.schedule(0);
  }

  goOffline(): void {
    this.manualOffline = true;
    this.onNetworkChange();
  }

  goOnline(): void {
    this.manualOffline = false;
    this.onNetworkChange();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush(true).catch(() => undefined);
    this.closed = true;
    this.role.dispose();
    this.sender.dispose();
    this.sendBackoff.dispose();
    this.writer.dispose();
    this.leadership?.dispose();
    this.gossip?.dispose();
    for (const t of [this.drainTimer, this.watchTimer]) if (t) clearInterval(t);
    this.removeWindowListeners?.();
    this.channel?.close();
    this.slotLock?.release();
    this.persistence.close();
    this.writes.failAll(new SyncError('closed', 'the client was closed before the server answered'));
    this.eventsSubject.getSnapshot(); // the last history stays readable after close
    this.disposed = true;
    this.engine().dispose();
    this.engineRef = null;
  }
}
