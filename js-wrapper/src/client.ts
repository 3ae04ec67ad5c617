// Layer: js-wrapper. The browser runtime: wires the wasm engine (decisions) to the transports,
// storage and tab coordination (I/O). Everything the app sees is an immutable snapshot.
//
//   const client = await createClient({ url, token, collections: ['bills'] });
//   const bills = client.query('bills', { where: 'status=eq.unpaid', orderBy: 'total.desc', limit: 20 });
//   bills.subscribe(() => render(bills.getSnapshot()));
//   await client.collection('bills').insert({ total: 42, status: 'unpaid' });
// The write path (writes, transactions, their promises) is writes.ts.
import { SyncEngine } from './engine.js';
import type { EngineOutput, ForeignOp, HistoryState, OutboxRecord, PersistenceBatch, Subscription, SyncDocument } from './engine.js';
import { fromWire, SyncError, type ErrorCode } from './errors.js';
import { streamFailureCode } from './cors.js';
import { fetchSnapshot, pingServer, postEvent, postMutations } from './http.js';
import type { HttpContext } from './http.js';
import { newId, randomSeed } from './ids.js';
import { COLLECTION_RE, unsettledOf, Writes } from './writes.js';
import { deepFreeze, LazySubject, Subject } from './observable.js';
import { hasSharedParts, IndexedDbPersistence, LocalStoragePersistence, MemoryPersistence } from './adapters/persistence.js';
import type { Persistence } from './adapters/persistence.js';
import { HeldLock, heldLockNames, lockHolder, TabChannel, tabsSupported } from './adapters/tabs.js';
import { FollowerShare } from './follower-share.js';
import { RecentFrames } from './recent-frames.js';
import { FrameProbe, httpProbe, LatencyMeter, streamProbe } from './latency.js';
import type { TabMessage } from './adapters/tabs.js';
import { SseTransport, WebSocketTransport } from './adapters/transport.js';
import type { StreamParams, StreamTransport } from './adapters/transport.js';
import { loadSyncline } from './wasm.js';
import type { RawConnection, SynclineModule } from './wasm.js';
import type {
  AggregateOptions,
  ClientOptions,
  CollectionHandle,
  ConnectionStatus,
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
  TabRole,
  Transaction,
} from './types.js';

// The leader tab's heartbeat on the tab channel, and how often followers check for it.
const LEADER_BEAT_MS = 1000;
// The event history is written whole: with a long one (historyLimit in the thousands), writing
// it with every 20 ms batch kept busy tabs from their streams. At most this often, and on close
// or when the page hides.
const HISTORY_WRITE_EVERY_MS = 1000;
// Each tab re-sends its whole set of pending writes this often, so the other tabs' copies never
// go stale (the engine drops a set not refreshed for 30 s: its tab is gone).
const PENDING_SET_MS = 10000;
/** How long a follower waits for the leader's recent frames before it takes a snapshot. */
const CATCH_UP_WAIT_MS = 1000;
// A write the server applied leaves the other tabs' views when its change reaches them; this
// long after the verdict its tab also drops it explicitly (for a change a tab never receives).
const SETTLED_DROP_DELAY_MS = 3000;

const EMPTY_HISTORY = (capacity: number): HistoryState & { version: number } => ({
  version: 1, capacity, total: 0, counts: {}, entries: [],
});

function validateOptions(o: ClientOptions): void {
  if (!o || typeof o !== 'object') throw new SyncError('invalid_options', 'options must be an object');
  if (typeof o.url !== 'string' || !/^https?:\/\//.test(o.url)) {
    throw new SyncError('invalid_options', 'url must be an http(s) URL', { field: 'url' });
  }
  if (!Array.isArray(o.collections) || o.collections.length === 0) {
    throw new SyncError('invalid_options', 'collections must list at least one collection', { field: 'collections' });
  }
  o.collections.forEach((c, i) => {
    if (typeof c !== 'string' || !COLLECTION_RE.test(c)) {
      throw new SyncError('invalid_options', `collection name "${c}" is not valid`, { field: `collections[${i}]` });
    }
  });
  if (o.where !== undefined && o.where !== null && typeof o.where !== 'string') {
    throw new SyncError('invalid_options', 'where must be a filter string', { field: 'where' });
  }
  if (o.transport && o.transport !== 'sse' && o.transport !== 'websocket') {
    throw new SyncError('invalid_options', 'transport must be "sse" or "websocket"', { field: 'transport' });
  }
  if (o.persistence && !['indexeddb', 'localstorage', 'memory'].includes(o.persistence)) {
    throw new SyncError('invalid_options', 'persistence must be indexeddb, localstorage or memory', { field: 'persistence' });
  }
}

function tokenSubject(token: string | undefined): string {
  if (!token) return 'anonymous';
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: string };
    return json.sub ?? 'anonymous';
  } catch {
    return 'anonymous';
  }
}

function isBrowserOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine ?? true;
}

/** Combines an unsaved batch with a newer one: newer values win, per document key. */
function mergeBatches(older: PersistenceBatch, newer: PersistenceBatch): PersistenceBatch {
  const docs = new Map<string, { put?: SyncDocument; del?: { collection: string; id: string } }>();
  for (const b of [older, newer]) {
    for (const d of b.putDocs) docs.set(`${d.collection}/${d.id}`, { put: d });
    for (const k of b.deleteDocs) docs.set(`${k.collection}/${k.id}`, { del: k });
  }
  const out: PersistenceBatch = { putDocs: [], deleteDocs: [] };
  for (const v of docs.values()) {
    if (v.put) out.putDocs.push(v.put);
    else if (v.del) out.deleteDocs.push(v.del);
  }
  const outbox = newer.outbox ?? older.outbox;
  const meta = newer.meta ?? older.meta;
  const history = newer.history ?? older.history;
  if (outbox) out.outbox = outbox;
  if (meta) out.meta = meta;
  if (history) out.history = history;
  return out;
}

/** Results and errors are replies to this connection, not part of the shared stream. */
function isOwnReply(frame: string): boolean {
  if (!frame.includes('"results"') && !frame.includes('"error"')) return false;
  try {
    const t = (JSON.parse(frame) as { type?: string }).type;
    return t === 'results' || t === 'error';
  } catch {
    return false;
  }
}

/** Loads the wasm (once per page), restores persisted state and starts syncing. */
export async function createClient(options: ClientOptions): Promise<SyncClient> {
  validateOptions(options);
  const loadOpts = options.wasmUrl ? { wasmUrl: options.wasmUrl } : {};
  const mod = await loadSyncline(loadOpts);
  const client = new Client(mod, options);
  await client.start();
  return client;
}

class Client implements SyncClient {
  readonly ready = true as const;
  readonly options: Readonly<ClientOptions>;
  private readonly mod: SynclineModule;
  private engine!: SyncEngine;
  private persistence!: Persistence;
  private readonly scope: string;
  private http: HttpContext;
  private requests = new AbortController();
  private clientId = '';
  private slotLock: HeldLock | null = null;
  private leaderLock: HeldLock | null = null;
  private channel: TabChannel | null = null;
  private role: TabRole = 'single';
  private conn: RawConnection | null = null;
  private transport: StreamTransport | null = null;
  private connTimer: ReturnType<typeof setTimeout> | null = null;
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private drainTimer: ReturnType<typeof setInterval> | null = null;
  private beatTimer: ReturnType<typeof setInterval> | null = null;
  private leaderWatchTimer: ReturnType<typeof setInterval> | null = null;
  // Last time this follower heard from the leader tab (any message it sends counts).
  private leaderHeardAt = 0;
  // The browser's client id of this document, as the lock manager reports it for our leader lock.
  private lockClientId: string | null = null;
  // Writes, transactions and their promises; also this tab's unsettled writes (other tabs show them).
  private readonly writes: Writes;
  private pendingSetTimer: ReturnType<typeof setInterval> | null = null;
  private pendingSetWasEmpty = true;
  private foreignInbox: ForeignOp[] = [];
  private closed = false;
  private manualOffline = false;
  private pumping = false;
  private postFailures = 0;
  private snapshotting: Promise<void> | null = null;
  private followerBuffer: string[][] | null = null;
  /** The frames this tab applied lately: a leader catches followers up from them. */
  private readonly recent = new RecentFrames();
  private catchingUp: Promise<void> | null = null;
  // This engine's subscription (canonical), announced with the frames this tab forwards, and the
  // key of the one the frames it applies come from (its own while it leads).
  private ownSub: Subscription | null = null;
  private upstreamKey = '';
  private catchUpWantsSnapshot = false;
  private catchUpSeq = 0;
  private readonly catchUpWaiters = new Map<number, (frames: string[] | null) => void>();
  private flushChain: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private historyTakenAt = -Infinity;
  private historyTimer: ReturnType<typeof setTimeout> | null = null;
  // What this tab received while following and the leader has not said it stored (flush()).
  private readonly followerShared = new FollowerShare();
  // The leader's: the cursor of its last completed write of documents and cursor (0: none since
  // it led, or since the store was wiped). Followers drop what it covers.
  private storedCursor = 0;
  private wipedAt = -Infinity;
  private unsaved: PersistenceBatch | null = null;
  // next_mid of the last outbox record known to be durable: mids below it may be sent.
  private durableNextMid = 1;
  private flushRetryTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private watchTimer: ReturnType<typeof setInterval> | null = null;
  private checkingStorage = false;
  // Live queries by engine id; `touch(id)` tells one that a document of its collection changed
  // (so a refresh reads it again instead of reusing the object it holds).
  private queries = new Map<number, { collection: string; touch(id: string): void; refresh(): void }>();
  private aggregates = new Map<number, { refresh(): void }>();
  private docSubjects = new Map<string, Subject<SyncDocument | null>>();
  private docListeners = new Set<(e: DocumentChange) => void>();
  private eventListeners = new Set<(e: PublishedEvent) => void>();
  private readonly statusSubject: Subject<SyncStatus>;
  private readonly eventsSubject: LazySubject<EventsSnapshot>;
  private eventsDirty = false;
  private leaderStatus: Partial<SyncStatus> | null = null;
  private connState: { state: ConnectionStatus; attempt: number; lastError: string } = { state: 'disconnected', attempt: 0, lastError: '' };
  private connectedSince: number | null = null;
  private lastSync: number | null = null;
  private storageError: { code: ErrorCode; message: string } | null = null;
  private lastError: { code: ErrorCode; message: string } | null = null;
  private removeWindowListeners: (() => void) | null = null;
  // The measured round trip of this tab's stream (leader or single tab; followers show the
  // leader's figures from its status messages).
  private readonly frameProbe = new FrameProbe((f) => this.transport?.send(f) ?? false);
  private readonly latency: LatencyMeter;

  constructor(mod: SynclineModule, options: ClientOptions) {
    this.mod = mod;
    this.options = Object.freeze({ ...options });
    this.scope = options.name ?? `${options.url.replace(/\/$/, '')}|${tokenSubject(typeof options.token === 'string' ? options.token : undefined)}`;
    this.http = { baseUrl: options.url, token: () => this.token(), signal: this.requests.signal };
    this.writes = new Writes({
      engine: () => this.engine,
      assertOpen: () => this.assertOpen(),
      // The other tabs show it at once (BroadcastChannel), before it is stored or sent.
      announce: (mutations) => this.channel?.post({ t: 'pending', from: this.clientId, client: this.clientId, mutations }),
      handle: (out) => this.handleOutput(out, false),
      persist: () => this.flush().then(() => {
        if (this.storageError) throw new SyncError(this.storageError.code, this.storageError.message);
      }),
      send: () => this.schedulePump(0),
    });
    this.latency = new LatencyMeter({
      probe: streamProbe(() => (this.transport?.kind === 'websocket' ? this.frameProbe : null), httpProbe(() => pingServer(this.http))),
      onChange: () => this.updateStatus(),
    });
    this.statusSubject = new Subject<SyncStatus>(this.buildStatus());
    // Built when read, not on every change: with a history of thousands of entries, copying and
    // freezing it for each frame batch kept busy tabs from their timers and their stream.
    this.eventsSubject = new LazySubject<EventsSnapshot>(deepFreeze({ entries: [], counts: {}, total: 0, capacity: options.historyLimit ?? 100 }), () => {
      if (!this.engine || this.disposed) return null;
      const h = this.engine.history();
      return deepFreeze({ entries: h.entries, counts: h.counts, total: h.total, capacity: h.capacity });
    });
  }

  private async token(): Promise<string | null> {
    const t = this.options.token;
    if (!t) return null;
    return typeof t === 'string' ? t : await t();
  }

  private lockName(kind: string): string {
    return `syncline:${this.scope}:${kind}`;
  }

  // ------------------------------------------------------------------ start-up

  async start(): Promise<void> {
    const kind = this.options.persistence ?? 'indexeddb';
    const onStorageError = (e: SyncError) => this.reportStorageError(e);
    const dbName = `syncline:${this.scope}`;
    if (kind === 'indexeddb' && typeof indexedDB !== 'undefined') {
      this.persistence = new IndexedDbPersistence(dbName, onStorageError, () => this.onStorageWiped());
    }
    else if (kind === 'localstorage' && typeof localStorage !== 'undefined') this.persistence = new LocalStoragePersistence(dbName + ':');
    else this.persistence = new MemoryPersistence();
    await this.persistence.open();
    if (this.persistence.kind !== 'memory') this.background(this.requestPersistentStorage());
    const loaded = await this.persistence.load();
    const historyLimit = this.options.historyLimit ?? 100;
    const multiTab = (this.options.multiTab ?? true) && tabsSupported() && this.persistence.kind !== 'memory';

    // Claim an outbox slot whose owner is gone (a reload gets its own pending writes back).
    let slot: { clientId: string; outbox: OutboxRecord } | null = null;
    if (multiTab) {
      const candidates = [...loaded.outboxes].sort((a, b) => b.outbox.entries.length - a.outbox.entries.length || b.updatedAt - a.updatedAt);
      for (const c of candidates) {
        const lock = await HeldLock.tryAcquire(this.lockName(`slot:${c.clientId}`));
        if (lock) {
          this.slotLock = lock;
          // Read it again now that it is ours: the copy loaded before the lock may be older
          // than what its last owner (or the leader draining it) wrote since, and restoring a
          // stale next_mid would reuse mids the server has already seen.
          slot = (await this.persistence.readOutbox(c.clientId)) ?? c;
          break;
        }
      }
    } else if (loaded.outboxes.length) {
      slot = loaded.outboxes[0]!;
    }
    this.clientId = slot?.clientId ?? `c-${newId()}`;
    if (multiTab && !this.slotLock) this.slotLock = await HeldLock.tryAcquire(this.lockName(`slot:${this.clientId}`));

    const engineOptions = {
      clientId: this.clientId,
      collections: [...this.options.collections],
      ...(this.options.where ? { where: this.options.where } : {}),
      nowMs: Date.now(),
      historyLimit,
      // Same bound as an HTTP request: a batch unanswered this long is sent again.
      requestTimeoutMs: 15000,
    };
    if (loaded.docs.length || loaded.cursor || slot || loaded.history) {
      this.engine = SyncEngine.restoreParts(this.mod, {
        client: this.clientId,
        cursor: loaded.cursor,
        docs: loaded.docs,
        outbox: slot?.outbox ?? { nextMid: 1, entries: [] },
        history: loaded.history ?? EMPTY_HISTORY(historyLimit),
        // The core compares it with this subscription: another one (collections, where) re-bases
        // the replica (keeps the outbox, drops what is outside, needs a snapshot).
        ...(loaded.subscription ? { subscription: loaded.subscription } : {}),
        needSnapshot: loaded.needSnapshot,
      }, engineOptions);
    } else {
      this.engine = SyncEngine.create(this.mod, engineOptions);
    }
    this.syncChangeDetail();
    if (this.persistence.discardedBeforeOpen) {
      this.reportStorageError(new SyncError('storage_wiped', 'the local database of an earlier run is gone (discarded by the browser or cleared): writes it still held are lost'));
    }
    // Make the slot durable at once so its mids never restart.
    await this.persistence.writeOutbox(this.clientId, slot?.outbox ?? { nextMid: this.engine.state().nextMid, entries: [] });
    this.durableNextMid = this.engine.state().nextMid;
    this.writes.restore(unsettledOf(slot?.outbox.entries ?? []));
    this.ownSub = this.engine.subscription();
    this.upstreamKey = JSON.stringify(this.ownSub);
    // A re-base on restore (subscription_changed) left storage work: documents outside the new
    // subscription to delete, the new subscription to store (the leader's write; a follower keeps
    // it for when it leads).
    this.handleOutput(this.engine.tick(Date.now()), false);
    // Other tabs' stored pending writes (alive or gone): shown here at once, even offline.
    if (multiTab) {
      const ops: ForeignOp[] = loaded.outboxes
        .filter((o) => o.clientId !== this.clientId)
        .map((o) => ({ op: 'replace' as const, client: o.clientId, mutations: unsettledOf(o.outbox.entries) }))
        .filter((op) => op.mutations.length > 0);
      if (ops.length) this.engine.foreign(ops);
    }
    this.eventsDirty = true;
    this.installWindowListeners();
    if (this.persistence.kind !== 'memory') {
      // Storage can be cleared with no event reaching this page (site data cleared from the
      // browser's settings or devtools): check every 2 s that this tab's slot is still there.
      this.watchTimer = setInterval(() => this.background(this.checkStorageAlive()), 2000);
    }

    const h = this.options.backoff ?? {};
    this.conn = new this.mod.Connection(h.baseMs ?? 500, h.capMs ?? 30000, h.heartbeatTimeoutMs ?? 45000, randomSeed());

    if (multiTab) {
      this.role = 'follower';
      this.channel = new TabChannel(this.lockName('channel'), (m) => this.onTabMessage(m));
      this.waitForLeadership();
      this.leaderHeardAt = Date.now();
      this.leaderWatchTimer = setInterval(() => this.background(this.checkLeaderAlive()), LEADER_BEAT_MS);
      this.channel.post({ t: 'hello', from: this.clientId });
      this.pendingSetTimer = setInterval(() => this.background(this.refreshPendingSets()), PENDING_SET_MS);
      this.background(this.followerCatchUp());
      this.engine.setTransportReady(this.isOnline());
      this.schedulePump(0);
    } else {
      this.role = 'single';
      this.startConnection();
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
    const online = () => this.onNetworkChange();
    const offline = () => this.onNetworkChange();
    const visibility = () => {
      if (typeof document === 'undefined') return;
      if (document.visibilityState === 'hidden') void this.flush(true);
      else if (this.conn && this.ownsConnection()) this.applyAction(this.conn.retryNow(Date.now()));
    };
    const pagehide = () => void this.flush(true);
    w.addEventListener('online', online);
    w.addEventListener('offline', offline);
    w.addEventListener('pagehide', pagehide);
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', visibility);
    this.removeWindowListeners = () => {
      w.removeEventListener('online', online);
      w.removeEventListener('offline', offline);
      w.removeEventListener('pagehide', pagehide);
      if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', visibility);
    };
  }

  private isOnline(): boolean {
    return !this.manualOffline && isBrowserOnline();
  }

  private ownsConnection(): boolean {
    return this.role === 'leader' || this.role === 'single';
  }

  /** Abandons requests in flight (their answers may never come); the engine resends. */
  private abortRequests(): void {
    this.requests.abort(new DOMException('connection lost', 'AbortError'));
    this.requests = new AbortController();
    this.http = { ...this.http, signal: this.requests.signal };
  }

  private onNetworkChange(): void {
    if (this.closed) return;
    const online = this.isOnline();
    if (!online) this.abortRequests();
    if (this.conn && this.ownsConnection()) this.applyAction(this.conn.setOnline(online, Date.now()));
    if (!this.ownsConnection()) this.engine.setTransportReady(online);
    if (online) this.schedulePump(0);
    this.updateStatus();
  }

  // ------------------------------------------------------------------ tabs

  private waitForLeadership(): void {
    // A lock that is no longer this tab's current one (replaced after a loss) changes nothing.
    const lock: HeldLock = HeldLock.wait(this.lockName('leader'), () => this.becomeLeader(), () => {
      if (this.leaderLock === lock) this.loseLeadership();
    });
    this.leaderLock = lock;
  }

  private becomeLeader(): void {
    if (this.closed) {
      this.leaderLock?.release();
      return;
    }
    this.role = 'leader';
    this.followerBuffer = null;
    // Its own stream from now on: a replica that followed a leader of another subscription
    // takes a snapshot first (openStream) and writes every document again.
    this.followUpstream(this.ownSub ?? undefined);
    this.storedCursor = 0;
    if (this.followerShared.size) this.scheduleFlush();
    this.channel?.post({ t: 'leader', from: this.clientId });
    this.note('leader', { clientId: this.clientId });
    this.startConnection();
    this.background(this.drainOrphans());
    this.drainTimer = setInterval(() => this.background(this.drainOrphans()), 5000);
    // Followers take over from a leader that goes quiet (hung, frozen): say it is alive.
    this.beatTimer = setInterval(() => this.channel?.post({ t: 'beat', from: this.clientId, stored: this.storedCursor }), LEADER_BEAT_MS);
    this.background(lockHolder(this.lockName('leader')).then((id) => (this.lockClientId = id)));
    this.updateStatus();
  }

  /** Another tab says it leads while this one thinks it does: this tab was hung or frozen and
   * its lock was stolen. The browser also rejects the stolen request, but a tab that just woke
   * may take seconds to get to that task; the lock manager answers at once. */
  private async verifyLeadership(): Promise<void> {
    if (this.role !== 'leader' || !this.lockClientId) return;
    const holder = await lockHolder(this.lockName('leader'));
    if (this.role === 'leader' && holder !== this.lockClientId) this.loseLeadership();
  }

  /** Another tab stole the leader lock while this one did not answer (hung or frozen): hand the
   * stream over and follow. The outbox slot stays this tab's; its writes go over HTTP. */
  private loseLeadership(): void {
    if (this.closed || this.role !== 'leader') return;
    this.role = 'follower';
    this.lockClientId = null;
    this.leaderLock?.release(); // stolen already; this only stops it from reporting the loss again
    for (const t of [this.drainTimer, this.beatTimer]) if (t) clearInterval(t);
    this.drainTimer = this.beatTimer = null;
    if (this.conn) this.applyAction(this.conn.stop(Date.now()));
    this.transport?.close();
    this.transport = null;
    this.connectedSince = null;
    this.latency.stop();
    this.note('leader_lost', { clientId: this.clientId });
    this.leaderHeardAt = Date.now();
    this.waitForLeadership();
    this.engine.setTransportReady(this.isOnline());
    this.background(this.followerCatchUp());
    this.schedulePump(0);
    this.updateStatus();
  }

  /** A follower that has not heard from the leader for leaderTimeoutMs steals its lock. One
   * follower at a time (the `steal` lock), and only while the leader lock is really held. */
  private async checkLeaderAlive(): Promise<void> {
    if (this.closed || this.role !== 'follower') return;
    const hidden = typeof document !== 'undefined' && document.visibilityState === 'hidden';
    const timeout = (this.options.leaderTimeoutMs ?? 5000) * (hidden ? 15 : 1);
    if (Date.now() - this.leaderHeardAt < timeout) return;
    const guard = await HeldLock.tryAcquire(this.lockName('steal'));
    if (!guard) return;
    try {
      const leaderName = this.lockName('leader');
      if (this.closed || this.role !== 'follower' || Date.now() - this.leaderHeardAt < timeout) return;
      if (!(await heldLockNames()).has(leaderName)) return; // nobody leads: the line moves by itself
      const silentMs = Date.now() - this.leaderHeardAt;
      this.leaderLock?.release(); // leave the line: the stolen lock replaces that request
      const lock: HeldLock = HeldLock.steal(leaderName, () => this.becomeLeader(), () => {
        if (this.leaderLock === lock) this.loseLeadership();
      });
      this.leaderLock = lock;
      this.note('leader_stolen', { clientId: this.clientId, silentMs });
    } finally {
      // Hold the guard a moment so that the others hear the new leader before they look.
      setTimeout(() => guard.release(), LEADER_BEAT_MS);
    }
  }

  private onTabMessage(m: TabMessage): void {
    if (this.closed || m.from === this.clientId) return;
    if (m.t === 'beat' || m.t === 'leader' || m.t === 'frames' || m.t === 'status' || m.t === 'caughtUp') this.leaderHeardAt = Date.now();
    if ((m.t === 'beat' || m.t === 'leader') && this.role === 'leader') this.background(this.verifyLeadership());
    // A beat sent before the leader heard of a wipe speaks of a database that is gone.
    if (m.t === 'beat' && !this.ownsConnection() && m.stored && Date.now() - this.wipedAt > 2 * LEADER_BEAT_MS) {
      this.followerShared.storedThrough(m.stored);
    }
    if (m.t === 'pending' || m.t === 'pendingSet' || m.t === 'settled') {
      // Queued and applied in one crossing per task turn: a tab that wakes up or loads with
      // hundreds of these queued handles them (and refreshes its queries) once.
      this.foreignInbox.push(m.t === 'settled' ? { op: 'drop', client: m.client, mids: m.mids }
        : { op: m.t === 'pending' ? 'add' : 'replace', client: m.client, mutations: m.mutations });
      if (this.foreignInbox.length === 1) setTimeout(() => this.applyForeignInbox(), 0);
      return;
    }
    if (m.t === 'frames') {
      if (this.ownsConnection()) return;
      this.followUpstream(m.sub);
      if (this.followerBuffer) this.followerBuffer.push(m.frames);
      else this.applyLeaderFrames(m.frames);
      this.lastSync = Date.now();
      this.updateStatus();
    } else if (m.t === 'catchUp') {
      if (this.ownsConnection()) {
        this.channel?.post({ t: 'caughtUp', from: this.clientId, to: m.from, id: m.id, frames: this.recent.since(m.cursor), ...(this.ownSub ? { sub: this.ownSub } : {}) });
      }
    } else if (m.t === 'caughtUp') {
      if (m.to === this.clientId && this.catchUpWaiters.has(m.id)) {
        this.followUpstream(m.sub);
        this.catchUpWaiters.get(m.id)?.(m.frames);
      }
    } else if (m.t === 'status') {
      if (!this.ownsConnection()) {
        this.leaderStatus = m.status as Partial<SyncStatus>;
        this.updateStatus();
      }
    } else if (m.t === 'resnapshot') {
      if (!this.ownsConnection()) this.background(this.followerCatchUp(true));
    } else if (m.t === 'wiped') {
      this.onStorageWiped(true);
    } else if (m.t === 'hello') {
      if (this.ownsConnection()) this.broadcastStatus();
      this.postPendingSet();
    }
  }

  /** A follower fills the gap between its state and the leader's live frames: from the
   * leader's recent frames when they reach back far enough, else from a snapshot. `snapshot`:
   * the leader's cursor expired (reset), so this tab's did too. One catch-up at a time. */
  private followerCatchUp(snapshot = false): Promise<void> {
    this.catchUpWantsSnapshot ||= snapshot;
    if (!this.catchingUp) this.catchingUp = this.runFollowerCatchUp().finally(() => (this.catchingUp = null));
    return this.catchingUp;
  }

  private async runFollowerCatchUp(): Promise<void> {
    this.followerBuffer = this.followerBuffer ?? [];
    try {
      // A reset heard while this ran needs one more round, now by snapshot.
      for (let round = 0; round < 3; round++) {
        // needSnapshot: the replica was re-based for a new subscription, or follows a leader of
        // another one (followUpstream): the leader's frames cannot fill what it lacks.
        const wantSnapshot = this.catchUpWantsSnapshot || this.engine.state().needSnapshot;
        this.catchUpWantsSnapshot = false;
        const frames = wantSnapshot ? null : await this.askLeaderForFrames();
        // A tab that leads now resumes its own stream from its cursor.
        if (this.closed || this.ownsConnection()) return;
        if (frames) {
          this.applyLeaderFrames(frames);
          this.note('caught_up', { from: 'leader', frames: frames.length });
        } else if (this.isOnline()) {
          await this.loadSnapshot();
          this.note('caught_up', { from: 'snapshot' });
        }
        if (!this.catchUpWantsSnapshot) break;
      }
    } catch (e) {
      this.lastError = { code: (e as SyncError).code ?? 'network', message: (e as Error).message };
    } finally {
      const buffered = this.followerBuffer ?? [];
      this.followerBuffer = null;
      for (const frames of buffered) this.applyLeaderFrames(frames);
      this.updateStatus();
    }
  }

  /** The frames this tab applies come from a stream of `sub` (the leader's; undefined: a leader
   * that does not say). The core decides: another subscription than this tab's means the
   * replica needs a snapshot of its own and ignores what is outside its subscription, until this
   * tab follows a stream of its own subscription again (its own, when it leads) and has taken a
   * snapshot since. The stored replica stays the leader's. */
  private followUpstream(sub: Subscription | undefined): void {
    const key = sub ? JSON.stringify(sub) : 'unknown';
    if (key === this.upstreamKey || !this.engine || this.disposed) return;
    this.upstreamKey = key;
    this.eventsDirty = true;
    this.handleOutput(this.engine.followSubscription(sub ?? null), false);
    if (!this.ownsConnection() && this.engine.state().needSnapshot) {
      // After the catch-up running now (if any) has finished: a flag set during its last
      // steps would not start another round.
      setTimeout(() => {
        if (!this.closed && !this.ownsConnection()) this.background(this.followerCatchUp(true));
      }, 0);
    }
  }

  /** The leader's frames after this tab's cursor, or null (no answer in time, or it does not
   * keep frames that old). */
  private askLeaderForFrames(): Promise<string[] | null> {
    const channel = this.channel;
    if (!channel) return Promise.resolve(null);
    const id = ++this.catchUpSeq;
    return new Promise((resolve) => {
      const done = (frames: string[] | null) => {
        clearTimeout(timer);
        this.catchUpWaiters.delete(id);
        resolve(frames);
      };
      const timer = setTimeout(() => done(null), CATCH_UP_WAIT_MS);
      this.catchUpWaiters.set(id, done);
      channel.post({ t: 'catchUp', from: this.clientId, id, cursor: this.engine.cursor() });
    });
  }

  /** Frames the leader forwarded (live, or to catch up): applied, and kept for when this tab leads. */
  private applyLeaderFrames(frames: string[]): void {
    this.handleOutput(this.receiveRecorded(frames, frames), false);
  }

  /** Feeds frames to the engine and keeps `shared` (those other tabs may see) in the recent
   * stretch of the log, with the cursor move they made. */
  private receiveRecorded(frames: string[], shared: string[]): EngineOutput {
    const before = this.engine.cursor();
    const out = this.engine.receiveFrames(frames);
    this.recent.record(before, this.engine.cursor(), shared);
    return out;
  }

  /** Sends the pending writes of tabs that are gone, under their own client ids (so the
   * server's per-client dedupe keeps them exactly once). */
  private async drainOrphans(): Promise<void> {
    if (this.closed || !this.ownsConnection() || !this.isOnline()) return;
    let held: Set<string>;
    let slots;
    try {
      held = await heldLockNames();
      slots = await this.persistence.listOutboxes();
    } catch {
      return;
    }
    for (const s of slots) {
      if (s.clientId === this.clientId || s.outbox.entries.length === 0) continue;
      const name = this.lockName(`slot:${s.clientId}`);
      if (held.has(name)) continue;
      const lock = await HeldLock.tryAcquire(name);
      if (!lock) continue;
      try {
        const fresh = await this.persistence.readOutbox(s.clientId);
        if (!fresh || fresh.outbox.entries.length === 0) continue;
        const temp = SyncEngine.restoreParts(this.mod, {
          client: s.clientId, cursor: 0, docs: [], outbox: fresh.outbox, history: EMPTY_HISTORY(0),
        }, { clientId: s.clientId, collections: ['orphan_outbox'], historyLimit: 0 });
        try {
          temp.setTransportReady(true);
          for (let round = 0; round < 1000; round++) {
            const body = temp.takeBatch();
            if (!body) break;
            const results = await postMutations(this.http, body);
            temp.receiveFrames([results]);
            const p = temp.takePersistence();
            if (p.outbox) await this.persistence.writeOutbox(s.clientId, p.outbox);
          }
          this.note('adopted_outbox', { clientId: s.clientId });
        } finally {
          temp.dispose();
        }
      } catch {
        /* try again on the next round */
      } finally {
        lock.release();
      }
    }
  }

  private applyForeignInbox(): void {
    const ops = this.foreignInbox;
    this.foreignInbox = [];
    if (this.closed || !ops.length) return;
    this.handleOutput(this.engine.foreign(ops), false);
  }

  /** This tab's whole pending set, for the other tabs (replaces their copy). */
  private postPendingSet(): void {
    if (!this.channel) return;
    const size = this.writes.ownPendingCount;
    if (size === 0 && this.pendingSetWasEmpty) return;
    this.pendingSetWasEmpty = size === 0;
    this.channel.post({ t: 'pendingSet', from: this.clientId, client: this.clientId, mutations: this.writes.ownPending() });
  }

  /** Every PENDING_SET_MS: re-send this tab's set; the leader also re-sends the sets stored in
   * the slots of tabs that are gone (until it has drained them), so no tab forgets them while
   * offline; expired sets leave this view (engine tick). */
  private async refreshPendingSets(): Promise<void> {
    if (this.closed) return;
    this.postPendingSet();
    if (this.ownsConnection() && this.channel) {
      const held = await heldLockNames();
      for (const o of await this.persistence.listOutboxes()) {
        if (this.closed || o.clientId === this.clientId || held.has(this.lockName(`slot:${o.clientId}`))) continue;
        const entries = unsettledOf(o.outbox.entries);
        if (!entries.length) continue;
        this.handleOutputQuiet(this.engine.foreign([{ op: 'replace', client: o.clientId, mutations: entries }]));
        this.channel.post({ t: 'pendingSet', from: this.clientId, client: o.clientId, mutations: entries });
      }
    }
    if (!this.closed) this.handleOutputQuiet(this.engine.tick(Date.now()));
  }

  private broadcastStatus(): void {
    if (!this.channel || !this.ownsConnection()) return;
    const s = this.statusSubject.getSnapshot();
    this.channel.post({
      t: 'status',
      from: this.clientId,
      status: {
        connection: s.connection, isConnected: s.isConnected, transport: s.transport,
        connectedSince: s.connectedSince, lastSync: s.lastSync, attempt: s.attempt, lastError: s.lastError,
        latencyMs: s.latencyMs, lastLatencyMs: s.lastLatencyMs,
      },
    });
  }

  // ------------------------------------------------------------------ connection

  private startConnection(): void {
    if (!this.conn) return;
    const handlers = {
      onOpen: () => this.onStreamOpen(),
      onFrames: (frames: string[]) => this.onStreamFrames(frames),
      onActivity: () => {
        if (this.conn) this.applyAction(this.conn.onMessage(Date.now()));
      },
      onFailure: (reason: string, fatal: boolean) => this.onStreamFailure(reason, fatal),
      intercept: (frame: string) => this.frameProbe.receive(frame),
    };
    this.transport = (this.options.transport ?? 'sse') === 'websocket' ? new WebSocketTransport(handlers) : new SseTransport(handlers);
    if (!this.isOnline()) this.conn.setOnline(false, Date.now());
    this.applyAction(this.conn.start(Date.now()));
  }

  private applyAction(text: string): void {
    const a = JSON.parse(text) as { action: string; state: ConnectionStatus; attempt: number; lastError: string; deadline: number | null };
    const prev = this.connState.state;
    this.connState = { state: a.state, attempt: a.attempt, lastError: a.lastError };
    if (a.action === 'close') {
      this.transport?.close();
      this.engine.setTransportReady(false);
      this.connectedSince = null;
      this.latency.stop();
    }
    if (a.action === 'open') this.background(this.openStream());
    if (this.connTimer) clearTimeout(this.connTimer);
    this.connTimer = null;
    if (a.deadline !== null && !this.closed) {
      const delay = Math.max(0, a.deadline - Date.now());
      this.connTimer = setTimeout(() => {
        if (this.conn && !this.closed) this.applyAction(this.conn.tick(Date.now()));
      }, Math.min(delay, 2 ** 31 - 1));
    }
    if (prev !== a.state) {
      this.engine.record('status', { state: a.state, attempt: a.attempt, reason: a.lastError });
      this.eventsDirty = true;
      this.notifyEvents();
      this.updateStatus();
    }
  }

  private async openStream(): Promise<void> {
    if (this.closed || !this.transport) return;
    try {
      const st = this.engine.state();
      if (st.needSnapshot || st.cursor === 0) await this.loadSnapshot();
    } catch (e) {
      const err = e as SyncError;
      const fatal = err.status === 401 || err.status === 403;
      this.onStreamFailure(`snapshot: ${err.message}`, fatal, err.code);
      return;
    }
    if (this.closed || !this.transport || this.connState.state !== 'connecting') return;
    this.transport.open(await this.streamParams());
  }

  /** Where the stream resumes: the engine's cursor, for every subscribed collection. */
  private async streamParams(): Promise<StreamParams> {
    const params: StreamParams = {
      baseUrl: this.options.url,
      token: await this.token(),
      collections: [...this.options.collections],
      cursor: this.engine.state().cursor,
    };
    if (this.options.where) params.where = this.options.where;
    return params;
  }

  private loadSnapshot(): Promise<void> {
    if (!this.snapshotting) {
      this.snapshotting = (async () => {
        const cursorAtFetch = this.engine.cursor();
        const snap = await fetchSnapshot(this.http, [...this.options.collections], this.options.where);
        if (this.closed) return;
        if (this.ownsConnection() && this.engine.cursor() !== cursorAtFetch) {
          // Fetched as a follower, to fill its gap; meanwhile this tab took the connection and its
          // own stream, resumed from the replica's cursor, moved the replica on. That gap is
          // filled, and this older state would take back what the stream delivered since (which
          // the stream does not send again): a confirmed write would vanish from the view
          // (docs/decisions/0002-a-late-snapshot-never-rolls-back-the-stream.md).
          this.note('snapshot_skipped', { seq: snap.seq, cursor: this.engine.cursor() });
          return;
        }
        const out = this.engine.applySnapshot({ collections: [...this.options.collections], docs: snap.docs, seq: snap.seq });
        this.recent.restart(this.engine.cursor());
        this.lastSync = Date.now();
        this.handleOutput(out, false);
      })().finally(() => (this.snapshotting = null));
    }
    return this.snapshotting;
  }

  private onStreamOpen(): void {
    if (!this.conn) return;
    this.connectedSince = Date.now();
    this.postFailures = 0;
    this.applyAction(this.conn.onOpen(Date.now()));
    this.frameProbe.reset();
    this.latency.start({ warmUp: this.transport?.kind !== 'websocket' });
    this.engine.setTransportReady(true);
    this.schedulePump(0);
    this.updateStatus();
  }

  private onStreamFrames(frames: string[]): void {
    if (this.closed) return;
    // Mutation results answer this tab's own client id: other tabs must never see them, or a
    // follower would take the leader's verdict on mid N for its own mid N
    // (docs/decisions/0004-mutation-results-are-never-shared.md).
    const shared = frames.filter((f) => !isOwnReply(f));
    const out = this.receiveRecorded(frames, shared);
    this.lastSync = Date.now();
    if (shared.length) this.channel?.post({ t: 'frames', frames: shared, from: this.clientId, ...(this.ownSub ? { sub: this.ownSub } : {}) });
    this.handleOutput(out, true);
    if (out.needSnapshot) {
      // The cursor is older than the server's log: take a fresh snapshot, then resume.
      this.channel?.post({ t: 'resnapshot', from: this.clientId });
      this.transport?.close();
      void this.loadSnapshot().then(
        () => {
          if (this.conn && this.connState.state === 'connected') this.background(this.reopenAfterSnapshot());
        },
        (e: SyncError) => this.onStreamFailure(`snapshot: ${e.message}`, false, e.code),
      );
    }
  }

  private async reopenAfterSnapshot(): Promise<void> {
    if (!this.transport) return;
    this.transport.open(await this.streamParams());
  }

  /** `code` when the failure already has one (a snapshot request's SyncError); else derived from
   * the transport's reason. */
  private onStreamFailure(reason: string, fatal: boolean, code?: ErrorCode): void {
    if (this.closed || !this.conn) return;
    this.abortRequests();
    this.engine.setTransportReady(false);
    this.connectedSince = null;
    this.latency.stop();
    this.lastError = { code: code ?? streamFailureCode(reason, fatal), message: reason };
    this.applyAction(this.conn.onFailure(Date.now(), reason, fatal));
    this.updateStatus();
  }

  // ------------------------------------------------------------------ sending

  /** Runs an internal task nobody awaits. close() can dispose the engine while such a task
   * waits on the network or storage; what it throws after that is moot, but anything else is a
   * bug and stays an unhandled rejection so that it is seen. */
  private background(task: Promise<unknown>): void {
    task.catch((e) => {
      if (!this.closed) throw e;
    });
  }

  private schedulePump(delay: number): void {
    if (this.closed) return;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      this.background(this.pump());
    }, delay);
  }

  /** Sends outbox batches until nothing is left or the network refuses. Outbox writes are
   * made durable before anything is sent, so a mid is never reused after a crash. */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      for (let round = 0; round < 10000 && !this.closed; round++) {
        if (!this.isOnline()) return;
        if (this.ownsConnection() && this.connState.state !== 'connected') return;
        if (!this.ownsConnection()) this.engine.setTransportReady(true);
        await this.flush();
        // Never send what is not durable: a crash would reuse its mid.
        if (this.unsaved || this.storageError) return;
        // Frees a batch whose answer never came (lost WebSocket frame, dropped response).
        this.handleOutputQuiet(this.engine.tick(Date.now()));
        // A write made while that flush was in progress is in the engine's outbox but not yet on
        // disk: it waits for the next flush (its own), the durable prefix goes now
        // (docs/decisions/0001-send-only-the-durable-outbox-prefix.md).
        const body = this.engine.takeBatch(Date.now(), this.durableNextMid);
        if (!body) {
          if (this.engine.state().inFlight) this.schedulePump(1000);
          return;
        }
        if (this.transport?.kind === 'websocket' && this.ownsConnection()) {
          if (this.transport.send('{"type":"mutate",' + body.slice(1))) {
            // Results arrive as a frame; the engine frees the slot then (or on timeout).
            this.schedulePump(this.options.backoff?.baseMs ?? 500);
            return;
          }
          this.engine.batchFailed();
          return;
        }
        try {
          const results = await postMutations(this.http, body);
          this.postFailures = 0;
          this.handleOutput(this.engine.receiveFrames([results]), false);
        } catch (e) {
          const err = e as SyncError;
          if (err.status && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 408 && err.status !== 429) {
            // The server refused the whole batch (bad request, forbidden, too large): settle
            // every mutation in it as rejected instead of retrying forever.
            const parsed = JSON.parse(body) as { mutations: { mid: number }[] };
            const frame = JSON.stringify({
              type: 'results', seq: 0,
              results: parsed.mutations.map((m) => ({ mid: m.mid, status: 'rejected', code: err.code, message: err.message })),
            });
            this.handleOutput(this.engine.receiveFrames([frame]), false);
            continue;
          }
          this.engine.batchFailed();
          this.postFailures++;
          this.lastError = { code: err.code ?? 'network', message: err.message };
          this.updateStatus();
          const delay = Math.min(30000, 500 * 2 ** Math.min(this.postFailures, 6)) * (0.5 + Math.random() / 2);
          this.schedulePump(delay);
          return;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  // ------------------------------------------------------------------ persistence

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setTimeout(() => {
      this.flushQueued = false;
      void this.flush();
    }, 20);
  }

  /** Writes whatever the engine marked dirty, in one transaction per store. A batch that
   * failed to write is kept and merged into the next one, so nothing is dropped and an old
   * outbox is never written over a newer one. */
  flush(withHistory = false): Promise<void> {
    this.flushChain = this.flushChain.then(async () => {
      if (!this.engine || this.disposed) return;
      let batch: PersistenceBatch;
      try {
        const sinceHistory = Date.now() - this.historyTakenAt;
        batch = this.engine.takePersistence(withHistory || sinceHistory >= HISTORY_WRITE_EVERY_MS);
        if (batch.history) this.historyTakenAt = Date.now();
        if (batch.historyHeld && !this.historyTimer) {
          this.historyTimer = setTimeout(() => {
            this.historyTimer = null;
            void this.flush();
          }, HISTORY_WRITE_EVERY_MS - sinceHistory);
        }
      } catch {
        return;
      }
      if (!this.ownsConnection()) {
        // Documents, cursor and history are the leader's to write; a follower writes its outbox
        // and keeps the rest (newest per document) for when it leads: a snapshot it loaded
        // itself may be known to no leader, and an outbox that dropped confirmed writes must not
        // be the only trace of them on disk.
        const { outbox, ...shared } = batch;
        if (hasSharedParts(shared)) this.followerShared.add(shared, this.engine.cursor());
        batch = { putDocs: [], deleteDocs: [], ...(outbox ? { outbox } : {}) };
      } else {
        const kept = this.followerShared.take();
        if (kept) batch = mergeBatches(kept, batch);
      }
      if (this.unsaved) batch = mergeBatches(this.unsaved, batch);
      if (!batch.outbox && !hasSharedParts(batch)) return;
      try {
        const shared = this.ownsConnection() && hasSharedParts(batch);
        let together = false;
        if (batch.outbox && shared && this.persistence.writeTogether) {
          // One transaction, so a pruned outbox is never durable without the confirmed documents.
          // If it fails (e.g. quota on documents), the parts are written apart below: the outbox
          // must not wait for the documents.
          together = await this.persistence.writeTogether(this.clientId, batch.outbox, batch).then(() => true, () => false);
        }
        if (together) {
          this.durableNextMid = Math.max(this.durableNextMid, batch.outbox!.nextMid);
        } else {
          if (batch.outbox) {
            await this.persistence.writeOutbox(this.clientId, batch.outbox);
            this.durableNextMid = Math.max(this.durableNextMid, batch.outbox.nextMid);
          }
          if (shared) await this.persistence.writeShared(batch);
        }
        if (shared && batch.meta) this.storedCursor = Math.max(this.storedCursor, batch.meta.cursor);
        this.unsaved = null;
        if (this.storageError) {
          this.storageError = null;
          this.updateStatus();
          this.schedulePump(0);
        }
      } catch (e) {
        this.unsaved = batch;
        this.reportStorageError(e instanceof SyncError ? e : new SyncError('storage', String(e)));
        this.scheduleFlushRetry();
      }
    });
    return this.flushChain;
  }

  private scheduleFlushRetry(): void {
    if (this.flushRetryTimer || this.closed) return;
    this.flushRetryTimer = setTimeout(() => {
      this.flushRetryTimer = null;
      if (this.closed) return;
      void this.flush().then(() => {
        if (this.unsaved) this.scheduleFlushRetry();
        else this.schedulePump(0);
      });
    }, 2000);
  }

  private async checkStorageAlive(): Promise<void> {
    if (this.closed || this.unsaved || this.checkingStorage) return;
    this.checkingStorage = true;
    try {
      await this.flushChain;
      if (!(await this.persistence.readOutbox(this.clientId))) this.onStorageWiped();
    } catch {
      /* reported by the next write */
    } finally {
      this.checkingStorage = false;
    }
  }

  /** The browser deleted the database under us: everything in memory is written again. */
  private onStorageWiped(fromOtherTab = false): void {
    if (this.closed) return;
    this.reportStorageError(new SyncError('storage_wiped', 'the local database was cleared; rewriting it from memory'));
    if (!fromOtherTab) this.channel?.post({ t: 'wiped', from: this.clientId });
    this.storedCursor = 0;
    this.wipedAt = Date.now();
    this.handleOutput(this.engine.markAllDirty(), false);
    void this.flush();
  }

  /** A runtime event in the history (leadership, catch-up, ...): apps see it at once. */
  private note(type: string, data: Record<string, unknown>): void {
    if (!this.engine || this.disposed) return;
    this.eventsDirty = true;
    this.handleOutput(this.engine.record(type, data), false);
  }

  private reportStorageError(e: SyncError): void {
    this.storageError = { code: e.code ?? 'storage', message: e.message };
    this.engine?.record('storage_error', { code: this.storageError.code, message: e.message });
    this.eventsDirty = true;
    this.notifyEvents();
    this.updateStatus();
  }

  // ------------------------------------------------------------------ outputs

  private handleOutput(out: EngineOutput, fromStream: boolean): void {
    for (const c of out.changes) {
      for (const q of this.queries.values()) if (q.collection === c.collection) q.touch(c.id);
      const key = `${c.collection}/${c.id}`;
      const subject = this.docSubjects.get(key);
      if (subject) subject.set(this.frozenDoc(c.collection, c.id));
      // A listener added while this output is handled sees the next one: this one was made
      // without before/after (see syncChangeDetail).
      if (this.docListeners.size && c.before !== undefined && c.after !== undefined) {
        const type = c.before === null ? 'appear' : c.after === null ? 'disappear' : 'update';
        const ev: DocumentChange = deepFreeze({ type, collection: c.collection, id: c.id, before: c.before, after: c.after, pending: c.pending ?? false });
        for (const l of [...this.docListeners]) l(ev);
      }
    }
    for (const id of out.queries) this.queries.get(id)?.refresh();
    for (const id of out.aggregates) this.aggregates.get(id)?.refresh();
    const { applied, rejected } = this.writes.settle(out.settled);
    if (this.channel && (rejected.length || applied.length)) {
      const post = (mids: number[]) => this.channel?.post({ t: 'settled', from: this.clientId, client: this.clientId, mids });
      if (rejected.length) post(rejected);
      if (applied.length) setTimeout(() => post(applied), SETTLED_DROP_DELAY_MS);
    }
    for (const e of out.events) for (const l of [...this.eventListeners]) l(deepFreeze(e as PublishedEvent));
    if (out.errors?.length) {
      const e = fromWire(out.errors[0]!.code, out.errors[0]!.message);
      this.lastError = { code: e.code, message: e.message };
    }
    if (out.changes.length || out.events.length || out.settled.length || fromStream || out.errors?.length) this.eventsDirty = true;
    if (out.persist) this.scheduleFlush();
    if (out.settled.length || out.changes.length) this.schedulePump(0);
    this.notifyEvents();
    this.updateStatus();
  }

  /** handleOutput without scheduling another pump (used from inside the pump). */
  private handleOutputQuiet(out: EngineOutput): void {
    if (out.changes.length || out.settled.length || out.queries.length || out.aggregates.length || out.persist) {
      this.handleOutput(out, false);
    }
  }

  private notifyEvents(): void {
    if (!this.eventsDirty) return;
    this.eventsDirty = false;
    this.eventsSubject.invalidate();
  }

  private frozenDoc<T>(collection: string, id: string): SyncDocument<T> | null {
    const d = this.engine.get<T>(collection, id);
    return d ? deepFreeze(d) : null;
  }

  private buildStatus(): SyncStatus {
    const own = this.ownsConnection();
    const ls = this.leaderStatus;
    const connection: ConnectionStatus = own ? this.connState.state : ((ls?.connection as ConnectionStatus) ?? 'connecting');
    const isConnected = own ? this.connState.state === 'connected' : !!ls?.isConnected;
    const st = this.engine ? this.engine.state() : null;
    const connected = isConnected && this.isOnline();
    const latency = own ? this.latency.figures : { latencyMs: (ls?.latencyMs as number | null) ?? null, lastLatencyMs: (ls?.lastLatencyMs as number | null) ?? null };
    return deepFreeze({
      connection,
      transport: this.options.transport ?? 'sse',
      role: this.role,
      isOnline: this.isOnline(),
      isConnected: connected,
      // The origin's: this tab's outbox and the other tabs' pending writes this view shows.
      pendingOperations: (st?.pending ?? 0) + (st?.foreignPending ?? 0),
      latencyMs: connected ? latency.latencyMs : null,
      lastLatencyMs: connected ? latency.lastLatencyMs : null,
      lastSync: own ? this.lastSync : (this.lastSync ?? (ls?.lastSync as number | null) ?? null),
      connectedSince: own ? this.connectedSince : ((ls?.connectedSince as number | null) ?? null),
      cursor: st?.cursor ?? 0,
      clientId: this.clientId,
      attempt: own ? this.connState.attempt : ((ls?.attempt as number) ?? 0),
      lastError: this.lastError,
      storageError: this.storageError,
    });
  }

  private updateStatus(): void {
    if (!this.engine) return;
    const next = this.buildStatus();
    const prev = this.statusSubject.getSnapshot();
    const same = (Object.keys(next) as (keyof SyncStatus)[]).every((k) => JSON.stringify(next[k]) === JSON.stringify(prev[k]));
    if (!same) {
      this.statusSubject.set(next);
      this.broadcastStatus();
    }
  }

  // ------------------------------------------------------------------ public API

  get status(): SyncStatus {
    return this.statusSubject.getSnapshot();
  }

  get statusStore(): Observable<SyncStatus> {
    return this.statusSubject;
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
      get: (id) => this.frozenDoc<T>(name, id),
      all: () => deepFreeze(this.engine.documents<T>(name)),
      document: (id) => this.documentObservable<T>(name, id),
      observe: () => this.query<T>(name),
    };
  }

  transaction(fn: (tx: Transaction) => void): PendingTransaction {
    return this.writes.transaction(fn);
  }

  private documentObservable<T>(collection: string, id: string): Observable<SyncDocument<T> | null> {
    const key = `${collection}/${id}`;
    let s = this.docSubjects.get(key);
    if (!s) {
      s = new Subject<SyncDocument | null>(this.frozenDoc(collection, id));
      this.docSubjects.set(key, s);
    }
    const subject = s;
    return {
      getSnapshot: () => subject.getSnapshot() as SyncDocument<T> | null,
      subscribe: (l) => {
        // Re-register: the entry is dropped when the last listener leaves, and a later
        // subscriber to this same observable must get updates again.
        const live = this.docSubjects.get(key);
        if (live !== subject) {
          subject.set(this.frozenDoc(collection, id));
          this.docSubjects.set(key, subject);
        }
        const off = subject.subscribe(l);
        return () => {
          off();
          if (subject.listenerCount === 0) this.docSubjects.delete(key);
        };
      },
    };
  }

  query<T = Record<string, unknown>>(collection: string, options: QueryOptions = {}): LiveQuery<T> {
    this.assertOpen();
    const spec: Record<string, unknown> = { collection };
    if (options.where) spec.where = options.where;
    if (options.orderBy) spec.orderBy = options.orderBy;
    if (options.limit !== undefined) spec.limit = options.limit;
    const id = this.engine.addQuery(spec as never);
    // The result keeps the documents it already has: a refresh reads the ordered ids and only
    // the documents that changed, so a large result costs little per change, and a document
    // that did not change keeps its (frozen) object from one snapshot to the next.
    let byId = new Map<string, SyncDocument<T>>();
    const changed = new Set<string>();
    const read = () => {
      const r = this.engine.queryIds(id);
      const need = r.ids.filter((x) => changed.has(x) || !byId.has(x));
      changed.clear();
      const fresh = need.length ? this.engine.getMany<T>(collection, need) : [];
      const next = new Map<string, SyncDocument<T>>();
      fresh.forEach((d, i) => d && next.set(need[i]!, deepFreeze(d)));
      const docs: SyncDocument<T>[] = [];
      for (const x of r.ids) {
        const d = next.get(x) ?? byId.get(x);
        if (!d) continue;
        next.set(x, d);
        docs.push(d);
      }
      byId = next;
      return { docs: Object.freeze(docs) as readonly SyncDocument<T>[], total: r.total };
    };
    let current = read();
    const subject = new Subject<readonly SyncDocument<T>[]>(current.docs);
    let closed = false;
    this.queries.set(id, {
      collection,
      touch: (x) => {
        if (byId.has(x)) changed.add(x);
      },
      refresh: () => {
        current = read();
        subject.set(current.docs);
      },
    });
    return {
      getSnapshot: subject.getSnapshot,
      subscribe: subject.subscribe,
      get total() {
        return current.total;
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.queries.delete(id);
        if (!this.closed) this.engine.removeQuery(id);
      },
    };
  }

  aggregate(collection: string, options: AggregateOptions = {}): LiveAggregate {
    this.assertOpen();
    const spec: Record<string, unknown> = { collection };
    if (options.where) spec.where = options.where;
    if (options.groupBy) spec.groupBy = options.groupBy;
    if (options.sum) spec.sum = options.sum;
    const id = this.engine.addAggregate(spec as never);
    const subject = new Subject(deepFreeze(this.engine.aggregateResult(id)));
    let closed = false;
    this.aggregates.set(id, { refresh: () => subject.set(deepFreeze(this.engine.aggregateResult(id))) });
    return {
      getSnapshot: subject.getSnapshot,
      subscribe: subject.subscribe,
      close: () => {
        if (closed) return;
        closed = true;
        this.aggregates.delete(id);
        if (!this.closed) this.engine.removeAggregate(id);
      },
    };
  }

  onDocumentChange(listener: (e: DocumentChange) => void): () => void {
    this.docListeners.add(listener);
    this.syncChangeDetail();
    return () => {
      const removed = this.docListeners.delete(listener);
      this.syncChangeDetail();
      return removed;
    };
  }

  /** before/after of every change cross the wasm boundary only while a document listener
   *  needs them; document subjects, queries and aggregates re-read what they show. */
  private syncChangeDetail(): void {
    if (this.engine && !this.disposed) this.engine.setChangeDetail(this.docListeners.size > 0);
  }

  onEvent(listener: (e: PublishedEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  async publish(name: string, data: Record<string, unknown> = {}, target: { collection?: string; id?: string } = {}): Promise<{ seq: number }> {
    this.assertOpen();
    if (typeof name !== 'string' || !name || name.length > 128) throw new SyncError('invalid_request', 'event name must be 1..128 characters', { field: 'name' });
    if (!this.isOnline()) throw new SyncError('network', 'offline: custom events are not queued');
    return postEvent(this.http, { name, data, ...target });
  }

  forceSync(): void {
    if (this.closed) return;
    if (this.conn && this.ownsConnection()) this.applyAction(this.conn.retryNow(Date.now()));
    if (!this.ownsConnection()) this.background(this.followerCatchUp());
    this.schedulePump(0);
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
    this.latency.stop();
    this.closed = true;
    if (this.conn) {
      this.conn.stop(Date.now());
      this.conn.delete();
      this.conn = null;
    }
    this.transport?.close();
    this.transport = null;
    for (const t of [this.connTimer, this.pumpTimer, this.flushRetryTimer, this.historyTimer]) if (t) clearTimeout(t);
    for (const t of [this.drainTimer, this.beatTimer, this.leaderWatchTimer, this.watchTimer, this.pendingSetTimer]) if (t) clearInterval(t);
    this.removeWindowListeners?.();
    this.channel?.close();
    this.leaderLock?.release();
    this.slotLock?.release();
    this.persistence.close();
    this.writes.failAll(new SyncError('closed', 'the client was closed before the server answered'));
    this.eventsSubject.getSnapshot(); // the last history stays readable after close
    this.disposed = true;
    this.engine.dispose();
  }
}
