// Layer: js-wrapper. A typed face for the core's connection state machine
// (src/core/connection.hpp): the runtime reports what its transport did, with the time, and gets
// back one ConnectionStep saying what to do now (open, close, nothing) and when to call tick()
// next. No I/O here. Each reply of the wasm is decoded strictly: a reply of another shape means
// the JS and the wasm come from different builds, which is an `internal` error, not something to
// guess around.
//
//   const m = new ConnectionMachine(module, { baseMs: 500, capMs: 30000 });
//   let step = m.start();                    // { action: 'open', state: 'connecting', ... }
//   step = m.onFailure('refused');           // { action: 'close', state: 'backing_off', deadlineMs }
//   setTimeout(() => (step = m.tick()), step.deadlineMs! - Date.now());
//   m.dispose();
import { backoffNumbers, wholeMs } from './backoff-policy.js';
import type { BackoffOptions } from './backoff-policy.js';
import { SyncError, unwrap } from './errors.js';
import type { ConnectionStatus } from './types.js';
import type { RawConnection, SynclineModule } from './wasm.js';

export interface ConnectionPolicy extends BackoffOptions {
  /** A connected stream that receives nothing (not even a heartbeat) this long is declared dead
   * (default 45000; 0 disables). Connecting times out after 15 s. */
  heartbeatTimeoutMs?: number;
}

export type ConnectionAction = 'open' | 'close' | 'none';

/** What the machine answers to every input. */
export interface ConnectionStep {
  /** What to do with the transport now. */
  action: ConnectionAction;
  state: ConnectionStatus;
  /** Failed attempts since the last successful open (0 when connected). */
  attempt: number;
  /** Why the last attempt failed ('' when none did since the last open or start). */
  lastError: string;
  /** When tick() is due (ms since the epoch, the clock passed in); null: no timer needed. */
  deadlineMs: number | null;
  /** Whether the machine believes the network is up (setOnline). */
  online: boolean;
  /** The delay drawn for the current backoff (0 when not backing off after a failure). */
  backoffMs: number;
}

const ACTIONS: ReadonlySet<string> = new Set<ConnectionAction>(['open', 'close', 'none']);
const STATES: ReadonlySet<string> = new Set<ConnectionStatus>(['disconnected', 'connecting', 'connected', 'backing_off', 'error']);

function malformed(field: string, what: string): SyncError {
  return new SyncError('internal', `connection machine reply: ${field} ${what}`, { field });
}

/** Decodes one reply of the wasm connection machine; SyncError('internal') naming the member
 * when it is not exactly the documented shape. */
export function decodeConnectionStep(text: string): ConnectionStep {
  let v: unknown;
  try {
    v = unwrap<unknown>(text);
  } catch (e) {
    if (e instanceof SyncError) throw e;
    throw new SyncError('internal', 'connection machine reply is not JSON', { cause: e });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed('reply', 'is not an object');
  const r = v as Record<string, unknown>;
  const nonNegative = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (typeof r.action !== 'string' || !ACTIONS.has(r.action)) throw malformed('action', 'is not open, close or none');
  if (typeof r.state !== 'string' || !STATES.has(r.state)) throw malformed('state', 'is not a connection state');
  if (!nonNegative(r.attempt)) throw malformed('attempt', 'is not a non-negative integer');
  if (typeof r.lastError !== 'string') throw malformed('lastError', 'is not a string');
  if (r.deadline !== null && !(typeof r.deadline === 'number' && Number.isSafeInteger(r.deadline))) {
    throw malformed('deadline', 'is neither an integer nor null');
  }
  if (typeof r.online !== 'boolean') throw malformed('online', 'is not a boolean');
  if (!nonNegative(r.backoffMs)) throw malformed('backoffMs', 'is not a non-negative integer');
  return {
    action: r.action as ConnectionAction,
    state: r.state as ConnectionStatus,
    attempt: r.attempt as number,
    lastError: r.lastError,
    deadlineMs: r.deadline as number | null,
    online: r.online,
    backoffMs: r.backoffMs as number,
  };
}

export class ConnectionMachine {
  private raw: RawConnection | null;

  /** Throws SyncError('invalid_options') for a policy number that is not a non-negative whole
   * number (`field` names it). */
  constructor(module: SynclineModule, policy: ConnectionPolicy = {}) {
    const { baseMs, capMs, seed } = backoffNumbers(policy);
    const heartbeat = wholeMs(policy.heartbeatTimeoutMs, 45000, 'heartbeatTimeoutMs');
    this.raw = new module.Connection(baseMs, capMs, heartbeat, seed);
  }

  private get m(): RawConnection {
    if (!this.raw) throw new SyncError('closed', 'connection machine was disposed');
    return this.raw;
  }

  /** Begin connecting (at once when online, else when the network comes back). */
  start(now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.start(time(now)));
  }

  /** The user asked to disconnect: `close` when a transport may be open. */
  stop(now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.stop(time(now)));
  }

  /** The transport reports it is open (`close` for a transport no longer wanted). */
  onOpen(now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.onOpen(time(now)));
  }

  /** Anything arrived, heartbeats included (counts as the open while connecting). */
  onMessage(now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.onMessage(time(now)));
  }

  /** The transport failed or closed. `fatal` (e.g. 401/403): no retry until start() or
   * retryNow(); otherwise back off for the policy's next delay. */
  onFailure(reason: string, fatal = false, now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.onFailure(time(now), String(reason), fatal === true));
  }

  /** The browser went on- or offline. Offline closes without counting a failure; back online
   * while waiting opens at once. */
  setOnline(online: boolean, now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.setOnline(online === true, time(now)));
  }

  /** Reconnect now (a reconnect button, the tab became visible): from backing_off or error. */
  retryNow(now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.retryNow(time(now)));
  }

  /** The deadline of the last step passed: timeouts and the end of a backoff act here. */
  tick(now = Date.now()): ConnectionStep {
    return decodeConnectionStep(this.m.tick(time(now)));
  }

  /** Frees the wasm object; later calls throw SyncError('closed'). Idempotent. */
  dispose(): void {
    if (this.raw) {
      this.raw.delete();
      this.raw = null;
    }
  }
}

/** A clock reading for the core: whole ms (a fractional performance-style time is floored). */
function time(now: number): number {
  if (typeof now !== 'number' || !Number.isFinite(now) || Math.abs(now) > Number.MAX_SAFE_INTEGER) {
    throw new SyncError('invalid_request', 'now must be a finite time in ms', { field: 'now' });
  }
  return Math.floor(now);
}
