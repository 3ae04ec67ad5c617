// Layer: js-wrapper (TypeScript API). Depends on the wasm module only through engine.ts.
// One error class for everything the library reports; `code` values are the core's stable
// codes (src/core/error.hpp) plus the runtime's own ("network", "storage", "closed", ...).

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
  readonly code: string;
  readonly field?: string;
  readonly status?: number;
  readonly collection?: string;
  readonly id?: string;
  readonly failedMid?: number;
  readonly failedIndex?: number;
  readonly current?: CurrentDocument | null;
  constructor(code: string, message: string, options: SyncErrorOptions = {}) {
    super(message);
    this.name = 'SyncError';
    this.code = code;
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
    throw new SyncError(e.code, e.message, e.field !== undefined ? { field: e.field } : {});
  }
  return value as T;
}
