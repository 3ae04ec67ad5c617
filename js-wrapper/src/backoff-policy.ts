// Layer: js-wrapper. The numbers a retry policy crosses into the wasm with, checked on this side:
// the core takes whole milliseconds and a 64-bit seed, and a NaN, an infinity or a negative
// value has no meaning there (the binding would only clamp it).
import { SyncError } from './errors.js';
import { randomSeed } from './ids.js';

/** Full-jitter backoff: the delay after failure n (from 0) is uniform in
 * [0, min(capMs, baseMs * 2^n)] (src/core/backoff.hpp). */
export interface BackoffOptions {
  /** The ceiling of the first delay (default 500). */
  baseMs?: number;
  /** The largest delay (default 30000). */
  capMs?: number;
  /** Seed of the jitter (default: random). The same seed gives the same delays. */
  seed?: number;
}

/** `value` (default `fallback`) as a whole number of ms in [0, 2^53); SyncError otherwise. */
export function wholeMs(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new SyncError('invalid_options', `${field} must be a non-negative whole number`, { field });
  }
  return v;
}

/** The policy's numbers, checked, with defaults filled in. */
export function backoffNumbers(o: BackoffOptions): { baseMs: number; capMs: number; seed: number } {
  return {
    baseMs: wholeMs(o.baseMs, 500, 'baseMs'),
    capMs: wholeMs(o.capMs, 30000, 'capMs'),
    seed: wholeMs(o.seed, randomSeed(), 'seed'),
  };
}
