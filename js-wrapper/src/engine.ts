// Layer: js-wrapper. A typed face for the wasm engine: every call crosses the boundary once
// with a JSON batch, and `{"error": ...}` replies become SyncError. No I/O happens here; the
// runtime (client.ts) feeds it server messages and acts on its outputs.
//
// Casing at the boundary: every object the engine builds for JS, or takes from it (outputs,
// state(), history, persistence batches and their outbox record and meta, restore parts,
// options, query specs) is camelCase. Payloads that are the wire protocol keep the protocol's
// spelling (docs/protocol.md): mutations (`base_version`, `group_size`, also inside outbox
// entries and foreign ops), server frames and events, snapshot documents.
import { SyncError, unwrap } from './errors.js';
import type { CurrentDocument } from './errors.js';
import type { WireFieldOp } from './field-ops.js';
import { sseToFrame } from './frames.js';
import type { RawEngine, SynclineModule } from './wasm.js';

export type ForeignOp =
  | { op: 'add' | 'replace'; client: string; mutations: WireMutation[] }
  | { op: 'drop'; client: string; mids: number[] };

/** A mutation in the wire form (the core of every outbox entry). */
export interface WireMutation {
  mid: number;
  op: 'insert' | 'update' | 'delete';
  collection: string;
  id: string;
  fields?: Record<string, unknown> | null;
  base_version?: number;
  /** Field operations applied at commit after `fields` (insert, update). */
  ops?: Record<string, WireFieldOp>;
  /** Precondition in the `where` grammar, checked at commit (update, delete). */
  if?: string;
  /** Member of an atomic group: the mid of its first member, and how many members it has. */
  group?: number;
  group_size?: number;
}

/** An outbox entry as the engine stores it: the mutation in its wire form plus what the core
 * keeps beside it. */
export interface OutboxEntry extends WireMutation {
  /** The seq the server applied it at: confirmed, kept until the replica has seen that seq. */
  appliedSeq?: number;
  /** The local clock when it was queued (absent: unknown, an entry saved before it was kept). */
  queuedMs?: number;
}

/** One tab slot's outbox as stored: mids below `nextMid` were handed out (never reused). */
export interface OutboxRecord {
  nextMid: number;
  entries: OutboxEntry[];
}

export interface SyncDocument<T = Record<string, unknown>> {
  collection: string;
  id: string;
  version: number;
  fields: T;
  pending?: boolean;
  deleted?: boolean;
}

export type MutationOp = 'insert' | 'update' | 'delete';

export interface MutationInput {
  op: MutationOp;
  collection: string;
  id: string;
  fields?: Record<string, unknown> | null;
  base_version?: number;
  ops?: Record<string, WireFieldOp>;
  if?: string;
}

/** A changed document. `before`, `after` and `pending` are absent after setChangeDetail(false). */
export interface DocChange {
  collection: string;
  id: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  pending?: boolean;
}

export interface Settled {
  mid: number;
  applied: boolean;
  collection: string;
  id: string;
  seq?: number;
  code?: string;
  message?: string;
  /** A rejected member of an atomic group: the mid of the member whose rejection failed it. */
  failedMid?: number;
  /** Rejected with conflict: the document as the server has it (null: absent), when sent. */
  current?: CurrentDocument | null;
}

export interface ServerEvent {
  seq: number;
  name: string;
  collection?: string;
  id?: string;
  data: Record<string, unknown>;
}

export interface EngineOutput {
  changes: DocChange[];
  queries: number[];
  aggregates: number[];
  settled: Settled[];
  events: ServerEvent[];
  needSnapshot: boolean;
  cursor: number;
  pending: number;
  persist: boolean;
  errors?: { index: number; code: string; message: string; field?: string }[];
}

export interface EngineOptions {
  clientId: string;
  collections?: string[];
  /** The subscription's filter (the `where` grammar); part of the subscription with collections. */
  where?: string;
  /** The clock at creation/restore: the time of history entries a restore writes. */
  nowMs?: number;
  historyLimit?: number;
  maxBatch?: number;
  requestTimeoutMs?: number;
}

export interface QuerySpec {
  collection: string;
  where?: string;
  orderBy?: string;
  limit?: number;
}

export interface AggregateSpec {
  collection: string;
  where?: string;
  groupBy?: string;
  sum?: string;
}

export interface AggregateResult {
  groups: Record<string, { count: number; sum: number }>;
  total: { count: number; sum: number };
}

export interface HistoryEntry {
  /** When it was recorded (ms since the epoch). */
  atMs: number;
  type: string;
  seq: number;
  collection: string;
  id: string;
  data: Record<string, unknown>;
}

export interface HistoryState {
  /** The format of the saved history (1); written by the engine, optional when handed back. */
  version?: number;
  capacity: number;
  entries: HistoryEntry[];
  counts: Record<string, number>;
  total: number;
}

export interface EngineState {
  clientId: string;
  cursor: number;
  /** This engine's outbox: writes not yet confirmed (or whose change has not arrived). */
  pending: number;
  /** Other tabs' pending writes shown in this view (see foreign()). */
  foreignPending: number;
  unacknowledged: number;
  inFlight: boolean;
  needSnapshot: boolean;
  nextMid: number;
}

export interface PersistenceBatch {
  putDocs: SyncDocument[];
  deleteDocs: { collection: string; id: string }[];
  outbox?: OutboxRecord;
  /** The cursor, with the subscription the replica is built for and whether it still needs a
   * snapshot for it (a replica belongs to a subscription). */
  meta?: { cursor: number; clientId: string; subscription?: Subscription; needSnapshot?: boolean };
  history?: HistoryState;
  /** The history changed but was left for a later batch. */
  historyHeld?: boolean;
  /** Set by the writer, not the engine: the whole base replica (SyncEngine.baseImage), stored
   *  in place of every document record (a batch taken for it has none). */
  image?: Uint8Array;
}

/** A document record an adapter keeps beside the image: a stored document, or the mark of one
 *  that left the replica after the image was made. */
export type StoredDocument = SyncDocument | { collection: string; id: string; erased: true };

/** A subscription in the core's canonical form: collections sorted, `where` canonical ('' = none). */
export interface Subscription {
  collections: string[];
  where: string;
}

/** What an adapter stores, in parts: shared documents + cursor, one outbox per tab slot, history. */
export interface PersistedState {
  client: string;
  cursor: number;
  /** With an image (restoreParts), what changed since it; otherwise every stored document. */
  docs: StoredDocument[];
  outbox: OutboxRecord;
  history: HistoryState;
  /** The replica was waiting for a snapshot when it was stored. */
  needSnapshot?: boolean;
  /** The subscription the stored documents and cursor were built for (absent: unknown). */
  subscription?: Subscription;
}

// One encoder for every engine: encodeInto writes UTF-8 straight into the wasm heap.
const utf8 = new TextEncoder();
const utf8Out = new TextDecoder();

// A reply past this size is freed in the wasm heap once decoded (RawEngine.releaseReply).
const KEPT_REPLY_BYTES = 64 * 1024;

export class SyncEngine {
  private raw: RawEngine | null;
  private readonly module: SynclineModule;

  private constructor(module: SynclineModule, raw: RawEngine) {
    this.module = module;
    this.raw = raw;
  }

  static create(module: SynclineModule, options: EngineOptions): SyncEngine {
    const raw = module._createEngine(JSON.stringify(options));
    if (!raw) throw errorFrom(module._lastError());
    return new SyncEngine(module, raw);
  }

  /** Restores from bytes written by snapshotBytes(); throws SyncError('invalid_snapshot'). */
  static restore(module: SynclineModule, bytes: Uint8Array, options: EngineOptions): SyncEngine {
    const raw = module._restoreEngine(bytes, JSON.stringify(options));
    if (!raw) throw errorFrom(module._lastError());
    return new SyncEngine(module, raw);
  }

  /** Restores from separately stored parts (see PersistedState). Parts written by the previous
   * version (snake_case `next_mid`, `applied_seq`, `queued_ms`, `at_ms`, `need_snapshot`) load
   * too: the core reads both spellings. A malformed part throws SyncError('invalid_snapshot')
   * with `field` naming it. `image`: the base replica as one record (baseImage), restored first. */
  static restoreParts(module: SynclineModule, state: PersistedState, options: EngineOptions, image: Uint8Array | null = null): SyncEngine {
    const length = image?.length ?? 0;
    if (image && length) module.HEAPU8.set(image, module._restoreBuffer(length));
    const raw = module._restoreEngineJson(JSON.stringify({ v: 1, ...state }), JSON.stringify(options), length);
    if (!raw) throw errorFrom(module._lastError());
    return new SyncEngine(module, raw);
  }

  /** A reply of the engine (JSON as UTF-8 in the wasm heap) decoded in one TextDecoder pass. */
  private reply<T>(bytes: Uint8Array): T {
    const text = utf8Out.decode(bytes);
    if (bytes.length > KEPT_REPLY_BYTES) this.e.releaseReply();
    return unwrap<T>(text);
  }

  private get e(): RawEngine {
    if (!this.raw) throw new SyncError('closed', 'engine was disposed');
    return this.raw;
  }

  /** Queues local writes (validated all or nothing). `atomic`: the batch is one group the
   * server applies all or none, shown and rolled back as one (sent as {mutations, atomic}). */
  mutate(batch: MutationInput[], now = Date.now(), atomic = false): EngineOutput & { mids: number[] } {
    const text = atomic ? JSON.stringify({ mutations: batch, atomic: true }) : JSON.stringify(batch);
    return this.reply(this.e.mutate(text, now));
  }

  /** Feeds a batch of server messages given as JSON texts with a "type" member (WebSocket frames).
   *  The batch `[f1,f2,...]` is written frame by frame as UTF-8 into the engine's input buffer in
   *  the wasm heap: no joined JS string, and no Embind string conversion (a JS loop). */
  receiveFrames(frames: string[], now = Date.now()): EngineOutput {
    let units = 2 + frames.length;
    for (const f of frames) units += f.length;
    const length = this.writeInput(units, (heap, start, end) => {
      let at = start;
      heap[at++] = 0x5b; // [
      for (let i = 0; i < frames.length; i++) {
        if (i > 0) heap[at++] = 0x2c; // ,
        const f = frames[i];
        // One byte kept free after every frame, for the ',' or ']' that follows it.
        const { read, written } = utf8.encodeInto(f, heap.subarray(at, end - 1));
        at += written;
        if (read !== f.length || at >= end) return null;
      }
      heap[at++] = 0x5d; // ]
      return at;
    });
    return this.reply(this.e.receiveInput(length, now));
  }

  /** Writes UTF-8 into the engine's input buffer and returns its length. The buffer is sized
   * for ASCII first (one byte per UTF-16 unit of `units`: nearly all traffic), and at three
   * bytes per unit when that did not fit. `write` returns where it ended, or null if it ran out. */
  private writeInput(units: number, write: (heap: Uint8Array, start: number, end: number) => number | null): number {
    for (let capacity = units + 8; ; capacity = units * 3 + 8) {
      const start = this.e.inputBuffer(capacity);
      // Read HEAPU8 only now: inputBuffer may have grown the memory, which detaches older views.
      const end = write(this.module.HEAPU8, start, start + capacity);
      if (end !== null) return end - start;
    }
  }

  /** Feeds SSE messages: event name + data text, spliced into frames without re-parsing. */
  receiveSse(messages: { type: string; data: string }[], now = Date.now()): EngineOutput {
    return this.receiveFrames(messages.map((m) => sseToFrame(m.type, m.data)), now);
  }

  /** The snapshot's JSON goes into the wasm heap as UTF-8 (encodeInto), like frames: tens of
   *  thousands of documents would otherwise cross as an Embind string, converted in a JS loop. */
  applySnapshot(snapshot: { collections?: string[]; docs: SyncDocument[]; seq: number }, now = Date.now()): EngineOutput {
    const text = JSON.stringify(snapshot);
    const length = this.writeInput(text.length, (heap, start, end) => {
      const { read, written } = utf8.encodeInto(text, heap.subarray(start, end));
      return read === text.length ? start + written : null;
    });
    return this.reply(this.e.applySnapshotInput(length, now));
  }

  /** The next mutation batch as a request body, or null. Only mutations whose mid is below
   * `durableNextMid` are taken: those whose outbox record is on disk. */
  takeBatch(now = Date.now(), durableNextMid = Number.MAX_SAFE_INTEGER): string | null {
    const text = this.e.takeBatch(now, durableNextMid);
    if (text === '') return null;
    if (text.startsWith('{"error"')) unwrap(text);
    return text;
  }

  batchFailed(): void {
    this.e.batchFailed();
  }

  /** Everything must be written again (the browser wiped the store). */
  markAllDirty(): EngineOutput {
    return this.reply(this.e.markAllDirty());
  }

  setTransportReady(ready: boolean): void {
    this.e.setTransportReady(ready);
  }

  /** With false, `changes` entries carry only collection and id: the reply stays small when
   *  nobody reads before/after (the default, true, includes them). */
  setChangeDetail(detail: boolean): void {
    this.e.setChangeDetail(detail);
  }

  tick(now = Date.now()): EngineOutput {
    return this.reply(this.e.tick(now));
  }

  /** Other tabs' pending writes, shown in this view (never sent or stored by this engine), as
   * one batch of operations in arrival order: 'add' extends a client's set, 'replace' sets all
   * of it, 'drop' removes mids its tab settled. */
  foreign(ops: ForeignOp[], now = Date.now()): EngineOutput {
    return this.reply(this.e.foreign(JSON.stringify(ops), now));
  }

  /** The frames this engine receives from now on come from a stream of `upstream` (another
   * tab's it follows, or its own; null: unknown). While it is not this engine's subscription,
   * the replica needs snapshots of its own (state().needSnapshot) and ignores what is outside. */
  followSubscription(upstream: Subscription | null, now = Date.now()): EngineOutput {
    return this.reply(this.e.followSubscription(JSON.stringify(upstream), now));
  }

  /** This engine's subscription, canonical. */
  subscription(): Subscription {
    return this.reply(this.e.subscription());
  }

  record(type: string, data: Record<string, unknown> = {}, now = Date.now()): EngineOutput {
    return this.reply(this.e.record(type, JSON.stringify(data), now));
  }

  get<T = Record<string, unknown>>(collection: string, id: string): SyncDocument<T> | null {
    return this.reply(this.e.get(collection, id));
  }

  documents<T = Record<string, unknown>>(collection: string): SyncDocument<T>[] {
    return this.reply(this.e.documents(collection));
  }

  addQuery(spec: QuerySpec): number {
    return this.reply<{ id: number }>(this.e.addQuery(JSON.stringify(spec))).id;
  }

  removeQuery(id: number): void {
    this.e.removeQuery(id);
  }

  queryResult<T = Record<string, unknown>>(id: number): { docs: SyncDocument<T>[]; total: number } {
    return this.reply(this.e.queryResult(id));
  }

  /** The ids of a live query's result in order, and its total: cheap to read on every change. */
  queryIds(id: number): { ids: string[]; total: number } {
    return this.reply(this.e.queryIds(id));
  }

  /** Several visible documents of one collection in one call (null where none is visible). */
  getMany<T = Record<string, unknown>>(collection: string, ids: readonly string[]): (SyncDocument<T> | null)[] {
    return this.reply(this.e.getMany(collection, JSON.stringify(ids)));
  }

  addAggregate(spec: AggregateSpec): number {
    return this.reply<{ id: number }>(this.e.addAggregate(JSON.stringify(spec))).id;
  }

  removeAggregate(id: number): void {
    this.e.removeAggregate(id);
  }

  aggregateResult(id: number): AggregateResult {
    return this.reply(this.e.aggregateResult(id));
  }

  history(): HistoryState {
    return this.reply(this.e.history());
  }

  state(): EngineState {
    return this.reply(this.e.state());
  }

  /** The log position the replica has seen up to (cheaper than state().cursor). */
  cursor(): number {
    return this.e.cursor();
  }

  /** `withHistory` false leaves a changed history pending (the batch says `historyHeld`). */
  /** withImage: the batch holds no document records (store baseImage() with it) and always the meta. */
  takePersistence(withHistory = true, withImage = false): PersistenceBatch {
    return this.reply(this.e.takePersistence(withHistory, withImage));
  }

  /** The base replica (every stored document, tombstones too) as one JSON array in UTF-8: what
   *  a storage adapter keeps as one record (restoreParts' `image`). A copy, safe to keep. */
  baseImage(): Uint8Array {
    const image = this.e.baseImage().slice();
    this.e.releaseReply();
    return image;
  }

  /** Documents the next takePersistence would write. */
  dirtyDocs(): number {
    return this.e.dirtyDocs();
  }

  /** Documents the base replica stores (tombstones too): what an image holds. */
  storedDocs(): number {
    return this.e.storedDocs();
  }

  snapshotBytes(): Uint8Array {
    return this.e.snapshotBytes();
  }

  dispose(): void {
    if (this.raw) {
      this.raw.delete();
      this.raw = null;
    }
  }
}

function errorFrom(text: string): SyncError {
  try {
    unwrap(text);
  } catch (e) {
    if (e instanceof SyncError) return e;
  }
  return new SyncError('internal', text || 'unknown failure');
}
