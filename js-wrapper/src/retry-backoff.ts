// Layer: js-wrapper. The core's retry delays (src/core/backoff.hpp) for loops other than the
// stream's connection, e.g. the send loop: full jitter, the ceiling doubling with each failure
// up to the cap, the same computation and tests as the connection machine's backoff.
//
//   const backoff = new RetryBackoff(module, { baseMs: 500, capMs: 30000 });
//   on failure: setTimeout(retry, backoff.nextDelayMs());
//   on success: backoff.reset();
import { backoffNumbers } from './backoff-policy.js';
import type { BackoffOptions } from './backoff-policy.js';
import { SyncError } from './errors.js';
import type { RawRetryBackoff, SynclineModule } from './wasm.js';

export type { BackoffOptions } from './backoff-policy.js';

export class RetryBackoff {
  private raw: RawRetryBackoff | null;

  /** Throws SyncError('invalid_options') for a number that is not a non-negative whole number. */
  constructor(module: SynclineModule, options: BackoffOptions = {}) {
    const { baseMs, capMs, seed } = backoffNumbers(options);
    this.raw = new module.RetryBackoff(baseMs, capMs, seed);
  }

  private get b(): RawRetryBackoff {
    if (!this.raw) throw new SyncError('closed', 'retry backoff was disposed');
    return this.raw;
  }

  /** After a failure: how long to wait before the next attempt (ms, whole, in
   * [0, min(capMs, baseMs * 2^failures)] with failures counted before this call). */
  nextDelayMs(): number {
    return this.b.nextDelayMs();
  }

  /** After a success: the next failure waits at most baseMs again. */
  reset(): void {
    this.b.reset();
  }

  /** Failures since the last reset. */
  get failures(): number {
    return this.b.failures();
  }

  /** Frees the wasm object; later calls throw SyncError('closed'). Idempotent. */
  dispose(): void {
    if (this.raw) {
      this.raw.delete();
      this.raw = null;
    }
  }
}
