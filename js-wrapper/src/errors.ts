// Layer: js-wrapper (TypeScript API). Depends on the wasm module only through engine.ts.
// One error class for everything the library reports; `code` values are the core's stable
// codes (src/core/error.hpp) plus the runtime's own ("network", "storage", "closed", ...).

export class SyncError extends Error {
  readonly code: string;
  readonly field?: string;
  readonly status?: number;
  constructor(code: string, message: string, options: { field?: string; status?: number; cause?: unknown } = {}) {
    super(message);
    this.name = 'SyncError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.status !== undefined) this.status = options.status;
    if (options.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
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
