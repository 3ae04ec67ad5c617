// Layer: js-wrapper (TypeScript API). Depends on the wasm module only through engine.ts.
// One error class for everything the library reports. `code` is an ErrorCode: the registry
// src/core/error_codes.def lists every code of the core, the server and this runtime, and
// error-codes.ts is generated from it. A code read from the wire goes through fromWire().
import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';
export { ERROR_CODES } from './error-codes.js';

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** True when `value` is one of the registered codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN.has(value);
}

/** A registered code and its message: an unknown code (a newer server's) becomes `internal`,
 * its message then starting with the code. */
function known(code: unknown, message: string): [ErrorCode, string] {
  if (isErrorCode(code)) return [code, message];
  return ['internal', `${typeof code === 'string' && code ? code : 'unknown error'}: ${message}`];
}

/** A document as the server holds it, sent with a `conflict` (null: the document is absent). */
export interface CurrentDocument<T = Record<string, unknown>> {
  readonly version: number;
  readonly fields: T;
}

export interface SyncErrorOptions {
  field?: string;
  status?: number;
  cause?: unknown;
  /** The collection and id of the write that was refused (of the failing member of a group). */
  collection?: string;
  id?: string;
  /** A refused group: the mid and the position in the transaction of the member that failed. */
  failedMid?: number;
  failedIndex?: number;
  /** `conflict`: the document as the server has it, when the server sent it (null: absent). */
  current?: CurrentDocument | null;
}

export class SyncError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly status?: number;
  readonly collection?: string;
  readonly id?: string;
  readonly failedMid?: number;
  readonly failedIndex?: number;
  readonly current?: CurrentDocument | null;
  constructor(code: ErrorCode, message: string, options: SyncErrorOptions = {}) {
    const [c, m] = known(code, message); // untyped callers: the code is a registered one at run time too
    super(m);
    this.name = 'SyncError';
    this.code = c;
    if (options.field !== undefined) this.field = options.field;
    if (options.status !== undefined) this.status = options.status;
    if (options.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
    if (options.collection !== undefined) this.collection = options.collection;
    if (options.id !== undefined) this.id = options.id;
    if (options.failedMid !== undefined) this.failedMid = options.failedMid;
    if (options.failedIndex !== undefined) this.failedIndex = options.failedIndex;
    if (options.current !== undefined) this.current = options.current;
  }
}

/**
 * A SyncError for a code read from the wire or the engine (a string the types cannot vouch
 * for): an unregistered code becomes `internal` with the code at the start of the message.
 */
export function fromWire(code: unknown, message: string, options: SyncErrorOptions = {}): SyncError {
  return new SyncError(code as ErrorCode, message, options);
}

export interface ErrorBody {
  code: string;
  message: string;
  field?: string;
}

/** Parses a JSON reply from the wasm engine, throwing SyncError for `{"error": ...}`. */
export function unwrap<T>(text: string): T {
  const value = JSON.parse(text) as T | { error: ErrorBody };
  if (value && typeof value === 'object' && 'error' in (value as object)) {
    const e = (value as { error: ErrorBody }).error;
    throw fromWire(e.code, e.message, e.field !== undefined ? { field: e.field } : {});
  }
  return value as T;
}
