// Layer: js-wrapper. The write path of the client: collection writes and transactions turned into
// engine mutations, this tab's unsettled writes (for the other tabs' views), and the promises
// that settle on the server's verdict. It does no I/O itself: the host (client.ts) stores, sends
// and announces; this module decides what a write is and how its promise ends.
//
//   const w = client.collection('products').update(id, { stock: increment(-1, { min: 0 }) });
//   await w.local;   // durable in the outbox
//   await w;         // applied by the server, or SyncError('constraint')
//
//   await client.transaction((tx) => {
//     tx.collection('bills').update(billId, { status: 'paid' }, { if: 'status=eq.unpaid' });
//     tx.collection('ledger_entries').insert({ kind: 'credit', amount: 4200 });
//   });
import type { EngineOutput, MutationInput, OutboxEntry, Settled, SyncEngine, WireMutation } from './engine.js';
import { fromWire, SyncError } from './errors.js';
import { assertNoFieldOps, splitFieldOps } from './field-ops.js';
import { newId } from './ids.js';
import type {
  DeleteOptions,
  InsertOptions,
  PendingTransaction,
  PendingWrite,
  Transaction,
  TransactionCollection,
  TransactionResult,
  TransactionWrite,
  UpdateOptions,
  WriteResult,
} from './types.js';

export const COLLECTION_RE = /^[a-z][a-z0-9_]{0,63}$/;
const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The wire form of a stored or new mutation: only the members the protocol has. */
export function wireOf(e: WireMutation): WireMutation {
  const w: WireMutation = { mid: e.mid, op: e.op, collection: e.collection, id: e.id };
  if (e.fields !== undefined && e.fields !== null) w.fields = e.fields;
  if (e.base_version !== undefined) w.base_version = e.base_version;
  if (e.ops !== undefined) w.ops = e.ops;
  if (e.if !== undefined) w.if = e.if;
  if (e.group !== undefined) {
    w.group = e.group;
    w.group_size = e.group_size ?? 1;
  }
  return w;
}

/** The stored outbox entries the server has not applied yet, in the wire form. */
export function unsettledOf(entries: readonly OutboxEntry[]): WireMutation[] {
  return entries.filter((e) => e.appliedSeq === undefined).map(wireOf);
}

/** What the write path needs from the client it belongs to. */
export interface WriteHost {
  /** The engine (read at call time: the client creates it after this object). */
  engine(): SyncEngine;
  /** Throws SyncError('closed') once the client is closed. */
  assertOpen(): void;
  /** Shows this tab's new pending writes in the other tabs (before they are stored or sent). */
  announce(mutations: WireMutation[]): void;
  /** Acts on an engine output (views, listeners, persistence, settled writes). */
  handle(out: EngineOutput): void;
  /** Resolves once what the engine marked dirty is on disk; rejects with the storage error. */
  persist(): Promise<void>;
  /** Sends what is queued (soon). */
  send(): void;
}

/** A write or a transaction waiting for the server: settled by its members' verdicts. */
interface Waiter {
  settle(verdicts: Settled[]): void;
  fail(e: SyncError): void;
}

function checkCollection(name: string): void {
  if (typeof name !== 'string' || !COLLECTION_RE.test(name)) {
    throw new SyncError('invalid_mutation', `collection name "${name}" is not valid`, { field: 'collection' });
  }
}

function checkId(id: string): void {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw new SyncError('invalid_mutation', `document id "${id}" is not valid`, { field: 'id' });
}

function checkCondition(opts: UpdateOptions | undefined, m: MutationInput): void {
  if (!opts || opts.if === undefined) return;
  if (typeof opts.if !== 'string' || opts.if.trim() === '') {
    throw new SyncError('invalid_mutation', 'if must be a non-empty filter, e.g. "status=eq.unpaid"', { field: 'if' });
  }
  m.if = opts.if;
}

/** A validated insert, update or delete in the engine's input form. */
function buildInsert(collection: string, fields: unknown, opts: InsertOptions | undefined): MutationInput {
  const id = opts?.id ?? newId();
  checkId(id);
  if (!fields || typeof fields !== 'object' || Array.isArray(fields)) throw new SyncError('invalid_mutation', 'fields must be an object', { field: 'fields' });
  if (opts && (opts as UpdateOptions).if !== undefined) throw new SyncError('invalid_mutation', 'an insert takes no condition (if)', { field: 'if' });
  const split = splitFieldOps(fields as Record<string, unknown>);
  const m: MutationInput = { op: 'insert', collection, id, fields: split.fields };
  if (split.ops) m.ops = split.ops;
  return m;
}

function buildUpdate(collection: string, id: string, patch: unknown, opts: UpdateOptions | undefined): MutationInput {
  checkId(id);
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new SyncError('invalid_mutation', 'patch must be an object', { field: 'fields' });
  const split = splitFieldOps(patch as Record<string, unknown>);
  const m: MutationInput = { op: 'update', collection, id, fields: split.fields };
  if (split.ops) m.ops = split.ops;
  if (opts?.baseVersion !== undefined) m.base_version = opts.baseVersion;
  checkCondition(opts, m);
  return m;
}

function buildDelete(collection: string, id: string, opts: DeleteOptions | undefined): MutationInput {
  checkId(id);
  assertNoFieldOps(opts);
  const m: MutationInput = { op: 'delete', collection, id };
  if (opts?.baseVersion !== undefined) m.base_version = opts.baseVersion;
  checkCondition(opts, m);
  return m;
}

/** The engine names a batch member's input "mutations[i].x": the index and the rest. */
function memberOf(field: string | undefined): { index: number; field?: string } | null {
  const m = field ? /^mutations\[(\d+)\](?:\.(.*))?$/.exec(field) : null;
  if (!m) return null;
  return m[2] ? { index: Number(m[1]), field: m[2] } : { index: Number(m[1]) };
}

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: SyncError): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: SyncError) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Read-only properties on a promise, known before it settles (id, mid, local, ...). */
function withProps<T>(promise: Promise<T>, props: Record<string, unknown>): Promise<T> {
  for (const [k, value] of Object.entries(props)) Object.defineProperty(promise, k, { value, enumerable: true });
  return promise;
}

function rejection(s: Settled, extra: { failedMid?: number; failedIndex?: number } = {}): SyncError {
  return fromWire(s.code, s.message ?? 'rejected by the server', {
    collection: s.collection,
    id: s.id,
    ...extra,
    ...(s.current !== undefined ? { current: s.current } : {}),
  });
}

export class Writes {
  private readonly host: WriteHost;
  // This tab's writes not yet settled, in the wire form, for the other tabs' views.
  private readonly own = new Map<number, WireMutation>();
  // Promises waiting for a verdict, by mid (every member of a transaction maps to its one waiter).
  private readonly waiting = new Map<number, Waiter>();

  constructor(host: WriteHost) {
    this.host = host;
  }

  /** This tab's unsettled writes restored from its outbox slot (no promise waits for them). */
  restore(mutations: WireMutation[]): void {
    for (const m of mutations) this.own.set(m.mid, m);
  }

  /** This tab's unsettled writes, in the wire form. */
  ownPending(): WireMutation[] {
    return [...this.own.values()];
  }

  get ownPendingCount(): number {
    return this.own.size;
  }

  /** The write methods of a collection handle. */
  collection(name: string): {
    insert(fields: unknown, opts?: InsertOptions): PendingWrite;
    update(id: string, patch: unknown, opts?: UpdateOptions): PendingWrite;
    delete(id: string, opts?: DeleteOptions): PendingWrite;
  } {
    checkCollection(name);
    return {
      insert: (fields, opts) => this.single(buildInsert(name, fields, opts)),
      update: (id, patch, opts) => this.single(buildUpdate(name, id, patch, opts)),
      delete: (id, opts) => this.single(buildDelete(name, id, opts)),
    };
  }

  /** Queues the callback's writes as one atomic group; see SyncClient.transaction. */
  transaction(fn: (tx: Transaction) => void): PendingTransaction {
    this.host.assertOpen();
    if (typeof fn !== 'function') throw new SyncError('invalid_mutation', 'transaction takes a function', { field: 'transaction' });
    const batch: MutationInput[] = [];
    const writes: TransactionWrite[] = [];
    let open = true;
    const add = (m: MutationInput): TransactionWrite => {
      if (!open) throw new SyncError('invalid_mutation', 'this transaction was already sent: queue its writes inside the callback', { field: 'transaction' });
      const w: TransactionWrite = Object.freeze({ op: m.op, collection: m.collection, id: m.id, index: batch.length });
      batch.push(m);
      writes.push(w);
      return w;
    };
    const tx: Transaction = {
      collection: <T>(name: string): TransactionCollection<T> => {
        checkCollection(name);
        return {
          name,
          insert: (fields, opts) => add(buildInsert(name, fields, opts)),
          update: (id, patch, opts) => add(buildUpdate(name, id, patch, opts)),
          delete: (id, opts) => add(buildDelete(name, id, opts)),
        };
      },
    };
    let returned: unknown;
    try {
      returned = fn(tx);
    } finally {
      open = false;
    }
    if (returned && typeof (returned as { then?: unknown }).then === 'function') {
      throw new SyncError('invalid_mutation', 'the transaction callback must be synchronous: queue the writes, do not await in it', { field: 'transaction' });
    }
    if (batch.length === 0) {
      const empty = Promise.resolve<TransactionResult>(Object.freeze({ results: Object.freeze([]) }));
      return withProps(empty, { writes: Object.freeze([]), mids: Object.freeze([]), local: Promise.resolve() }) as PendingTransaction;
    }

    let out: EngineOutput & { mids: number[] };
    try {
      out = this.host.engine().mutate(batch, Date.now(), true);
    } catch (e) {
      // The engine's own checks (a condition that does not parse, too many operations) name the
      // member as "mutations[i]": say which write of the transaction it was.
      if (!(e instanceof SyncError)) throw e;
      const at = memberOf(e.field);
      const w = at ? writes[at.index] : undefined;
      if (!at || !w) throw e;
      throw new SyncError(e.code, e.message, { ...(at.field ? { field: at.field } : {}), failedIndex: w.index, collection: w.collection, id: w.id, cause: e });
    }
    const mids = out.mids;
    const grouped = mids.length > 1;
    const wire = batch.map((m, i) => wireOf({ mid: mids[i]!, ...m, ...(grouped ? { group: mids[0]!, group_size: mids.length } : {}) } as WireMutation));

    const d = deferred<TransactionResult>();
    const results: (WriteResult | undefined)[] = new Array(mids.length);
    let left = mids.length;
    let done = false;
    const finish = () => {
      done = true;
      for (const mid of mids) this.waiting.delete(mid);
    };
    const waiter: Waiter = {
      settle: (verdicts) => {
        if (done) return;
        const rejected = verdicts.filter((s) => !s.applied);
        if (rejected.length) {
          // Every member carries the cause and the failed member's mid (failedMid); that member's own verdict
          // may also carry `current`. A group of one is its own failed member. Without failedMid
          // (the whole request was refused, e.g. forbidden) no member is singled out.
          const failedMid = rejected.find((s) => s.failedMid)?.failedMid ?? (mids.length === 1 ? mids[0] : undefined);
          const failed = rejected.find((s) => s.mid === failedMid) ?? rejected[0]!;
          const index = failedMid === undefined ? -1 : mids.indexOf(failedMid);
          const member = writes[index];
          const e = rejection(failed, member ? { failedMid, failedIndex: index } : {});
          if (member && failed.mid !== failedMid) {
            // The failed member's own verdict was not among these: name it from what was queued.
            (e as { collection?: string }).collection = member.collection;
            (e as { id?: string }).id = member.id;
          }
          finish();
          d.reject(e);
          return;
        }
        for (const s of verdicts) {
          const i = mids.indexOf(s.mid);
          if (i < 0 || results[i]) continue;
          results[i] = Object.freeze({ mid: s.mid, seq: s.seq ?? 0, id: batch[i]!.id });
          left--;
        }
        if (left === 0) {
          finish();
          d.resolve(Object.freeze({ results: Object.freeze(results as WriteResult[]) }));
        }
      },
      fail: (e) => {
        if (done) return;
        finish();
        d.reject(e);
      },
    };
    const local = this.queued(out, wire, waiter);
    return withProps(d.promise, { writes: Object.freeze(writes), mids: Object.freeze([...mids]), local }) as PendingTransaction;
  }

  private single(m: MutationInput): PendingWrite {
    this.host.assertOpen();
    let out: EngineOutput & { mids: number[] };
    try {
      out = this.host.engine().mutate([m]);
    } catch (e) {
      // "mutations[0].if" is this write's "if".
      const at = e instanceof SyncError ? memberOf(e.field) : null;
      if (!at) throw e;
      const err = e as SyncError;
      throw new SyncError(err.code, err.message, { ...(at.field ? { field: at.field } : {}), cause: err });
    }
    const mid = out.mids[0]!;
    const d = deferred<WriteResult>();
    const waiter: Waiter = {
      settle: (verdicts) => {
        const s = verdicts[0]!;
        this.waiting.delete(mid);
        if (s.applied) d.resolve({ mid: s.mid, seq: s.seq ?? 0, id: m.id });
        else d.reject(rejection(s));
      },
      fail: (e) => {
        this.waiting.delete(mid);
        d.reject(e);
      },
    };
    const local = this.queued(out, [wireOf({ mid, ...m } as WireMutation)], waiter);
    return withProps(d.promise, { id: m.id, mid, local }) as PendingWrite;
  }

  /** After the engine took a write or group: the other tabs see it, its promise waits, the
   * views update, and it is stored then sent. Returns the `local` promise. */
  private queued(out: EngineOutput, wire: WireMutation[], waiter: Waiter): Promise<void> {
    for (const w of wire) {
      this.own.set(w.mid, w);
      this.waiting.set(w.mid, waiter);
    }
    this.host.announce(wire);
    this.host.handle(out);
    const local = this.host.persist();
    local.then(() => this.host.send(), () => undefined);
    return local;
  }

  /** The verdicts of an engine output: this tab's writes leave its pending set (returned, for
   * the other tabs), and the promises waiting for them settle. */
  settle(settled: Settled[]): { applied: number[]; rejected: number[] } {
    const applied: number[] = [];
    const rejected: number[] = [];
    if (!settled.length) return { applied, rejected };
    for (const s of settled) {
      if (this.own.delete(s.mid)) (s.applied ? applied : rejected).push(s.mid);
    }
    // One call per waiter with all of its verdicts in this output: a group's members arrive
    // together, and the failed member's verdict is the one that names the cause.
    const byWaiter = new Map<Waiter, Settled[]>();
    for (const s of settled) {
      const w = this.waiting.get(s.mid);
      if (!w) continue;
      const list = byWaiter.get(w);
      if (list) list.push(s);
      else byWaiter.set(w, [s]);
    }
    for (const [w, verdicts] of byWaiter) w.settle(verdicts);
    return { applied, rejected };
  }

  /** Rejects every promise still waiting (the client closed). */
  failAll(e: SyncError): void {
    for (const w of new Set(this.waiting.values())) w.fail(e);
    this.waiting.clear();
  }
}
