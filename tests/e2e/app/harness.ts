// The page the e2e tests drive through page.evaluate(): a thin, observable wrapper around a
// real client. Outcomes of writes are recorded so tests can wait for them.
import { createClient, SyncError } from 'syncline';
import type { ClientOptions, SyncClient } from 'syncline';

type Outcome = { state: 'pending' } | { state: 'applied'; seq: number } | { state: 'rejected'; code: string; message: string };

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

const harness = {
  async start(options: ClientOptions) {
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
