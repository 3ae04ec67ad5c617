// The page the e2e tests drive through page.evaluate(): a thin, observable wrapper around a
// real client. Outcomes of writes are recorded so tests can wait for them.
import { createClient, increment, serverTime, SyncError } from 'syncline';
import type { ClientOptions, CurrentDocument, SyncClient, UpdateOptions } from 'syncline';

/** A rejection as the test sees it: the SyncError's code and what it names. */
type Rejection = {
  state: 'rejected'; code: string; message: string;
  collection?: string; id?: string; failedIndex?: number; failedMid?: number; current?: CurrentDocument | null;
};
type Outcome = { state: 'pending' } | { state: 'applied'; seq: number; seqs?: number[] } | Rejection;

/** A patch as JSON can carry it across page.evaluate: {"$increment": [by, {min, max}]} and
 * {"$serverTime": true} stand for increment() and serverTime(). */
type PatchSpec = Record<string, unknown>;
function patchOf(spec: PatchSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) {
    const o = v as { $increment?: [number, { min?: number; max?: number }?]; $serverTime?: true } | null;
    if (o && typeof o === 'object' && o.$increment) out[k] = increment(o.$increment[0], o.$increment[1]);
    else if (o && typeof o === 'object' && o.$serverTime) out[k] = serverTime();
    else out[k] = v;
  }
  return out;
}
type MemberSpec = { op: 'insert' | 'update' | 'delete'; collection: string; id?: string; fields?: PatchSpec; options?: UpdateOptions };

function rejectionOf(e: SyncError): Rejection {
  const r: Rejection = { state: 'rejected', code: e.code, message: e.message };
  if (e.collection !== undefined) r.collection = e.collection;
  if (e.id !== undefined) r.id = e.id;
  if (e.failedIndex !== undefined) r.failedIndex = e.failedIndex;
  if (e.failedMid !== undefined) r.failedMid = e.failedMid;
  if (e.current !== undefined) r.current = e.current;
  return r;
}

const outcomes: Record<string, Outcome> = {};
let client: SyncClient | null = null;
// What a list bound to the first collection would see: how often it re-rendered, and its size.
// (Only counts are kept: a copy per change grows without bound in the long fault runs.)
const renders = { count: 0, lastAt: 0, size: 0 };
type Snapshot = readonly { id: string; version: number; pending?: boolean }[];
let query: { getSnapshot(): Snapshot } | null = null;
let kept: Snapshot = [];
const seenAt: Record<string, number> = {};
const locals: Record<string, Promise<void>> = {};
// When this tab's role or connection changed, [Date.now(), role, isConnected], the newest 50:
// the leader suite splits a takeover into waiting for the lock and connecting.
const transitions: [number, string, boolean][] = [];
// Document changes seen after traceChanges(), each with the number of the task turn that
// delivered it: changes with the same `turn` reached listeners together (one engine output).
const changeTrace: { turn: number; collection: string; id: string; type: string; pending: boolean }[] = [];
let turn = 0;
let turnOpen = false;

let tokenList: string[] = [];
let tokenCalls = 0;

const harness = {
  setTokens(list: string[]) {
    tokenList = [...list];
  },
  tokenCalls() {
    return tokenCalls;
  },
  /** `options.tokens`: the client's token is a function answering from this list (the first
   * until setTokens replaces it), counting its calls: a token that expires and is refreshed. */
  async start(options: ClientOptions & { tokens?: string[] }) {
    if (options.tokens) {
      tokenList = options.tokens;
      const { tokens: _, ...rest } = options;
      options = { ...rest, token: () => {
        tokenCalls++;
        return tokenList.length > 1 ? tokenList.shift()! : tokenList[0]!;
      } };
    }
    client = await createClient(options);
    const q = client.query(options.collections[0]!, {});
    query = q;
    q.subscribe(() => {
      renders.count++;
      renders.lastAt = performance.now();
      renders.size = q.getSnapshot().length;
    });
    client.onDocumentChange((e) => {
      if (e.type === 'appear' && !(e.id in seenAt)) seenAt[e.id] = Date.now();
    });
    const onStatus = () => {
      const st = client!.status;
      const last = transitions.at(-1);
      if (last && last[1] === st.role && last[2] === st.isConnected) return;
      transitions.push([Date.now(), st.role, st.isConnected]);
      if (transitions.length > 50) transitions.shift();
    };
    onStatus();
    client.statusStore.subscribe(onStatus);
    return { clientId: client.status.clientId, role: client.status.role };
  },
  transitions() {
    return transitions;
  },
  async writeDurably(op: 'insert' | 'update' | 'delete', collection: string, id: string, fields?: Record<string, unknown>) {
    const r = harness.write(op, collection, id, fields);
    await locals[r.key];
    return r;
  },
  /** The `local` promise of a write made with write(): resolves once its outbox record is durable. */
  localOf(key: string): Promise<void> | undefined {
    return locals[key];
  },
  write(op: 'insert' | 'update' | 'delete', collection: string, id: string, fields?: Record<string, unknown>, baseVersion?: number): { key: string; mid: number; at: number; visible: boolean } {
    const c = client!.collection(collection);
    const w = op === 'insert' ? c.insert(fields ?? {}, { id }) : op === 'update' ? c.update(id, fields ?? {}, baseVersion !== undefined ? { baseVersion } : {}) : c.delete(id);
    const key = `${collection}/${id}#${w.mid}`;
    outcomes[key] = { state: 'pending' };
    locals[key] = w.local;
    w.then(
      (r) => (outcomes[key] = { state: 'applied', seq: r.seq }),
      (e: SyncError) => (outcomes[key] = { state: 'rejected', code: e.code, message: e.message }),
    );
    return { key, mid: w.mid, at: Date.now(), visible: op === 'delete' ? !c.get(id) : !!c.get(id) };
  },
  /** A write whose patch may hold field operations (see PatchSpec) and whose options may hold `if`. */
  writeOps(op: 'insert' | 'update' | 'delete', collection: string, id: string, spec: PatchSpec = {}, options: UpdateOptions = {}) {
    const c = client!.collection(collection);
    const w = op === 'insert' ? c.insert(patchOf(spec), { id }) : op === 'update' ? c.update(id, patchOf(spec), options) : c.delete(id, options);
    const key = `${collection}/${id}#${w.mid}`;
    outcomes[key] = { state: 'pending' };
    locals[key] = w.local;
    w.then((r) => (outcomes[key] = { state: 'applied', seq: r.seq }), (e: SyncError) => (outcomes[key] = rejectionOf(e)));
    return { key, mid: w.mid };
  },
  /** The members as one client.transaction(); its outcome is kept under `tx#<first mid>`. */
  transaction(members: MemberSpec[]) {
    const t = client!.transaction((tx) => {
      for (const m of members) {
        const c = tx.collection(m.collection);
        if (m.op === 'insert') c.insert(patchOf(m.fields ?? {}), m.id ? { id: m.id } : {});
        else if (m.op === 'update') c.update(m.id!, patchOf(m.fields ?? {}), m.options ?? {});
        else c.delete(m.id!, m.options ?? {});
      }
    });
    const key = `tx#${t.mids[0]}`;
    outcomes[key] = { state: 'pending' };
    locals[key] = t.local;
    t.then(
      (r) => (outcomes[key] = { state: 'applied', seq: r.results.at(-1)!.seq, seqs: r.results.map((x) => x.seq) }),
      (e: SyncError) => (outcomes[key] = rejectionOf(e)),
    );
    return { key, mids: t.mids, ids: t.writes.map((w) => w.id) };
  },
  traceChanges() {
    client!.onDocumentChange((e) => {
      if (!turnOpen) {
        turnOpen = true;
        turn++;
        queueMicrotask(() => (turnOpen = false));
      }
      changeTrace.push({ turn, collection: e.collection, id: e.id, type: e.type, pending: e.pending });
    });
  },
  changeTrace() {
    return changeTrace;
  },
    /** Resolves at wall-clock time `t` (ms since epoch): two contexts act at the same instant. */
  async at(t: number) {
    while (Date.now() < t - 2) await new Promise((r) => setTimeout(r, Math.min(50, t - Date.now() - 2)));
    while (Date.now() < t) { /* the last ms: spin */ }
  },
  outcome(key: string) {
    return outcomes[key] ?? null;
  },
  outcomes() {
    return outcomes;
  },
  docs(collection: string) {
    return client!.collection(collection).all().map((d) => ({ id: d.id, version: d.version, fields: d.fields, pending: !!d.pending }));
  },
  get(collection: string, id: string) {
    return client!.collection(collection).get(id);
  },
  seenAt(id: string) {
    return seenAt[id] ?? null;
  },
  status() {
    return client!.status;
  },
  events() {
    return client!.events.getSnapshot();
  },
  renders() {
    return renders;
  },
  /** The live query over the first collection: ids with version and pending flag. */
  queryDocs() {
    return query!.getSnapshot().map((d) => ({ id: d.id, version: d.version, pending: !!d.pending }));
  },
  /** Keeps the query's current snapshot, for sameObjects() to compare a later one with. */
  keepQuery() {
    kept = query!.getSnapshot();
  },
  /** Of the documents in both the kept and the current snapshot: how many are the same object. */
  sameObjects() {
    const now = new Map(query!.getSnapshot().map((d) => [d.id, d]));
    let same = 0;
    let other = 0;
    for (const d of kept) if (now.has(d.id)) (now.get(d.id) === d ? same++ : other++);
    return { kept: kept.length, same, other, frozen: Object.isFrozen(query!.getSnapshot()) };
  },
  swReady() {
    return !!navigator.serviceWorker?.controller;
  },
  forceSync() {
    client!.forceSync();
  },
  goOffline() {
    client!.goOffline();
  },
  goOnline() {
    client!.goOnline();
  },
  async close() {
    await client?.close();
    client = null;
  },
  async publish(name: string, data: Record<string, unknown>) {
    return client!.publish(name, data);
  },
  errorCodeOf(fn: string) {
    try {
      if (fn === 'badFilter') client!.query('bills', { where: 'total=zz.1' });
      if (fn === 'badCollection') client!.collection('Bad Name');
      return null;
    } catch (e) {
      return { code: (e as SyncError).code, isSyncError: e instanceof SyncError };
    }
  },
};

(window as unknown as { harness: typeof harness }).harness = harness;
if (new URLSearchParams(location.search).has('sw') && 'serviceWorker' in navigator) {
  void navigator.serviceWorker.register('/sw.js');
}
(window as unknown as { harnessReady: boolean }).harnessReady = true;
