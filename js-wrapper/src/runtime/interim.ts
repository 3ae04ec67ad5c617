// INTERIM (replaced by connection-machine.ts when the typed wasm facade lands).
import type { RawConnection } from '../wasm.js';
import type { StreamMachine, ConnectionStep } from './stream-session.js';
import type { Backoff } from './send-loop.js';

export function machineOf(raw: RawConnection): StreamMachine {
  const d = (t: string): ConnectionStep => {
    const a = JSON.parse(t) as { action: ConnectionStep['action']; state: ConnectionStep['state']; attempt: number; lastError: string; deadline: number | null };
    return { action: a.action, state: a.state, attempt: a.attempt, lastError: a.lastError, deadlineMs: a.deadline };
  };
  return {
    start: (n) => d(raw.start(n)), stop: (n) => d(raw.stop(n)), onOpen: (n) => d(raw.onOpen(n)),
    onMessage: (n) => d(raw.onMessage(n)), onFailure: (n, r, f) => d(raw.onFailure(n, r, f)),
    setOnline: (o, n) => d(raw.setOnline(o, n)), retryNow: (n) => d(raw.retryNow(n)), tick: (n) => d(raw.tick(n)),
    dispose: () => raw.delete(),
  };
}

export function interimBackoff(): Backoff {
  let n = 0;
  return { nextDelayMs: () => Math.min(30000, 500 * 2 ** Math.min(++n, 6)) * (0.5 + Math.random() / 2), reset: () => (n = 0) };
}
