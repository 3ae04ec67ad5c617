// Layer: js-wrapper. Loads the Emscripten module (web/ build output) exactly once.
// The wasm is found next to this file through `new URL(..., import.meta.url)`, which Vite and
// other bundlers rewrite to the emitted asset: apps need no configuration. In Node (tests,
// SSR tooling) the bytes are read from disk because the 3.1.6 loader cannot fetch file paths.

/** Replies are JSON text as a view of the wasm heap (UTF-8 bytes), valid until the next call:
 *  decode it at once (engine.ts, SyncEngine.reply). */
export interface RawEngine {
  /** `batch`: a JSON array of mutations, or {"mutations":[...],"atomic":true} for one group. */
  mutate(batch: string, now: number): Uint8Array;
  /** Address of an input buffer of at least `size` bytes in the wasm heap (valid until the next call). */
  inputBuffer(size: number): number;
  /** Receives the first `length` bytes of the input buffer as a batch of server frames. */
  receiveInput(length: number, now: number): Uint8Array;
  /** Applies the first `length` bytes of the input buffer as a snapshot (same reply). */
  applySnapshotInput(length: number, now: number): Uint8Array;
  takeBatch(now: number, durableNextMid: number): string;
  batchFailed(): void;
  markAllDirty(): Uint8Array;
  setTransportReady(ready: boolean): void;
  setChangeDetail(detail: boolean): void;
  tick(now: number): Uint8Array;
  foreign(ops: string, now: number): Uint8Array;
  record(type: string, data: string, now: number): Uint8Array;
  followSubscription(subscription: string, now: number): Uint8Array;
  subscription(): Uint8Array;
  get(collection: string, id: string): Uint8Array;
  documents(collection: string): Uint8Array;
  addQuery(spec: string): Uint8Array;
  removeQuery(id: number): void;
  queryResult(id: number): Uint8Array;
  queryIds(id: number): Uint8Array;
  getMany(collection: string, idsJson: string): Uint8Array;
  addAggregate(spec: string): Uint8Array;
  removeAggregate(id: number): void;
  aggregateResult(id: number): Uint8Array;
  history(): Uint8Array;
  state(): Uint8Array;
  cursor(): number;
  /** withImage: no document records (the caller stores baseImage() instead), the meta always. */
  takePersistence(withHistory: boolean, withImage: boolean): Uint8Array;
  /** Every stored document (tombstones too) as one JSON array, UTF-8. */
  baseImage(): Uint8Array;
  /** Frees the last reply's bytes (after decoding a large one). */
  releaseReply(): void;
  /** Documents marked dirty since the last takePersistence. */
  dirtyDocs(): number;
  /** Documents the base replica stores (tombstones too). */
  storedDocs(): number;
  snapshotBytes(): Uint8Array;
  delete(): void;
}

/** Every method answers one JSON object: {"action":"open"|"close"|"none","state","attempt",
 * "online","lastError","backoffMs","deadline"} (deadline: ms, null: no timer). Decoded by
 * ConnectionMachine (connection-machine.ts). */
export interface RawConnection {
  start(now: number): string;
  stop(now: number): string;
  onOpen(now: number): string;
  onMessage(now: number): string;
  onFailure(now: number, reason: string, fatal: boolean): string;
  setOnline(online: boolean, now: number): string;
  retryNow(now: number): string;
  tick(now: number): string;
  delete(): void;
}

export interface RawRetryBackoff {
  nextDelayMs(): number;
  reset(): void;
  failures(): number;
  delete(): void;
}

export interface SynclineModule {
  _createEngine(options: string): RawEngine | null;
  _restoreEngine(bytes: Uint8Array, options: string): RawEngine | null;
  /** `imageLength` > 0: the base replica image was written to _restoreBuffer(imageLength). */
  _restoreEngineJson(state: string, options: string, imageLength: number): RawEngine | null;
  /** Address of a buffer of at least `size` bytes for the image a restore reads. */
  _restoreBuffer(size: number): number;
  _lastError(): string;
  _parseFilter(text: string): string;
  _jsonDecodeCount(text: string): number;
  /** The allocator's figures as JSON: {"inUse": bytes in live allocations, "top": sbrk(0)}. */
  _heapStats(): string;
  /** Benchmarks: the receive decoder alone. _decodeBuffer(size) is where to write a UTF-8
   * batch `[frame,...]`; _decodeServerInput(length) decodes it and returns the frames decoded
   * without error, or -1 when the batch is not a JSON array. */
  _decodeBuffer(size: number): number;
  _decodeServerInput(length: number): number;
  /** The wasm memory as bytes; replaced by a new view whenever the memory grows. */
  HEAPU8: Uint8Array;
  Connection: new (baseMs: number, capMs: number, heartbeatMs: number, seed: number) => RawConnection;
  RetryBackoff: new (baseMs: number, capMs: number, seed: number) => RawRetryBackoff;
}

export interface LoadOptions {
  /** The wasm bytes, if the caller already has them (skips fetching). */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Where the .wasm lives, if not next to this module. */
  wasmUrl?: string | URL;
}

let loading: Promise<SynclineModule> | null = null;

/** Loads the engine once per page; later calls return the same module. */
export function loadSyncline(options: LoadOptions = {}): Promise<SynclineModule> {
  if (!loading) {
    loading = instantiate(options).catch((e) => {
      loading = null;
      throw e;
    });
  }
  return loading;
}

async function instantiate(options: LoadOptions): Promise<SynclineModule> {
  // @ts-ignore -- generated by Emscripten, copied next to this file at build time
  const factory = (await import('./syncline.mjs')).default as (m: object) => Promise<SynclineModule>;
  const wasmUrl = options.wasmUrl ?? new URL('./syncline.wasm', import.meta.url);
  let wasmBinary = options.wasmBinary;
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  const isNode = !!proc?.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined';
  if (!wasmBinary && isNode) {
    const fsName = 'node:fs/promises';
    const fs = (await import(/* @vite-ignore */ fsName)) as { readFile(u: URL): Promise<Uint8Array> };
    wasmBinary = await fs.readFile(new URL(wasmUrl.toString()));
  }
  const moduleArg: Record<string, unknown> = {
    locateFile: (path: string) => (path.endsWith('.wasm') ? wasmUrl.toString() : path),
  };
  if (wasmBinary) moduleArg.wasmBinary = wasmBinary;
  return factory(moduleArg);
}
