// Layer: js-wrapper. Sends the outbox: batches the engine hands out, over the stream's
// WebSocket when this tab owns one, else over HTTP. Invariants:
//  - nothing is sent before it is durable: each round flushes first and takes only mids below
//    the durable outbox record's next mid (docs/decisions/0001-send-only-the-durable-outbox-prefix.md);
//  - one loop at a time; a failed send backs off with the core's full-jitter backoff, reset by
//    the next success;
//  - a batch the server refuses whole for a reason retrying cannot change (a 4xx other than
//    401, 408, 429) settles every mutation in it as rejected with the server's code; a refused
//    token is retried (each attempt asks token() again) until the refusal is final (AuthGate),
//    then settles the same way with `unauthorized`.
import type { EngineOutput } from '../engine.js';
import { SyncError, type ErrorCode } from '../errors.js';
import type { AuthGate } from './auth-gate.js';

/** The part of the engine the loop drives. */
export interface SendEngine {
  tick(now: number): EngineOutput;
  takeBatch(now: number, durableNextMid: number): string | null;
  batchFailed(): void;
  receiveFrames(frames: string[]): EngineOutput;
  setTransportReady(ready: boolean): void;
  state(): { inFlight: boolean };
}

/** A retry schedule: the delay before the next attempt after a failure; reset on success. */
export interface Backoff {
  nextDelayMs(): number;
  reset(): void;
}

/** How the next batch can go: not now, over HTTP, or as a frame on this tab's stream. */
export type SendRoute = 'wait' | 'http' | 'stream';

export interface SendLoopDeps {
  engine(): SendEngine;
  isClosed(): boolean;
  route(): SendRoute;
  /** Writes what is dirty; sending waits while `blocked()` says a write is not durable. */
  flush(): Promise<void>;
  blocked(): boolean;
  durableNextMid(): number;
  sendFrame(text: string): boolean;
  post(body: string): Promise<string>;
  /** Output of an answer (schedules the next round) and of a tick (does not). */
  handle(out: EngineOutput): void;
  handleQuiet(out: EngineOutput): void;
  onError(error: { code: ErrorCode; message: string }): void;
  backoff: Backoff;
  auth: AuthGate;
  /** How long a batch sent on the stream waits for its results before the loop looks again. */
  streamAnswerMs: number;
  now?: () => number;
}

const MAX_ROUNDS = 10000;
const IN_FLIGHT_RECHECK_MS = 1000;

/** A results frame that settles every mutation of `body` as rejected. */
export function rejectionFrame(body: string, code: ErrorCode, message: string): string {
  const parsed = JSON.parse(body) as { mutations: { mid: number }[] };
  return JSON.stringify({
    type: 'results', seq: 0,
    results: parsed.mutations.map((m) => ({ mid: m.mid, status: 'rejected', code, message })),
  });
}

function retryable(status: number | undefined): boolean {
  return !status || status >= 500 || status === 408 || status === 429;
}

export class SendLoop {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;

  constructor(private readonly deps: SendLoopDeps) {}

  /** Runs the loop after `delayMs` (a later call replaces an earlier one not yet started). */
  schedule(delayMs = 0): void {
    if (this.deps.isClosed()) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run().catch((e) => {
        if (!this.deps.isClosed()) throw e;
      });
    }, delayMs);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Sends batches until nothing is left, the route closes or the network refuses. */
  async run(): Promise<void> {
    if (this.running || this.deps.isClosed()) return;
    this.running = true;
    try {
      for (let round = 0; round < MAX_ROUNDS && !this.deps.isClosed(); round++) {
        if (!(await this.sendOne())) return;
      }
    } finally {
      this.running = false;
    }
  }

  /** One round; false when the loop stops here. */
  private async sendOne(): Promise<boolean> {
    const d = this.deps;
    const now = d.now ?? Date.now;
    const route = d.route();
    if (route === 'wait') return false;
    const engine = d.engine();
    if (route === 'http') engine.setTransportReady(true);
    await d.flush();
    if (d.blocked() || d.isClosed()) return false;
    // Frees a batch whose answer never came (lost WebSocket frame, dropped response).
    d.handleQuiet(engine.tick(now()));
    // A write made while that flush was in progress waits for the next flush (its own).
    const body = engine.takeBatch(now(), d.durableNextMid());
    if (!body) {
      if (engine.state().inFlight) this.schedule(IN_FLIGHT_RECHECK_MS);
      return false;
    }
    if (route === 'stream') {
      if (d.sendFrame('{"type":"mutate",' + body.slice(1))) {
        // Results arrive as a frame; the engine frees the slot then (or on timeout).
        this.schedule(d.streamAnswerMs);
      } else {
        engine.batchFailed();
      }
      return false;
    }
    let results: string;
    try {
      results = await d.post(body);
    } catch (e) {
      return this.failed(body, e as SyncError);
    }
    d.backoff.reset();
    d.auth.accepted();
    d.handle(engine.receiveFrames([results]));
    return true;
  }

  private failed(body: string, err: SyncError): boolean {
    const d = this.deps;
    const engine = d.engine();
    if (err.status === 401 && d.auth.refused()) {
      d.onError({ code: 'unauthorized', message: err.message });
      d.handle(engine.receiveFrames([rejectionFrame(body, 'unauthorized', err.message)]));
      return true;
    }
    if (err.status !== 401 && !retryable(err.status)) {
      d.handle(engine.receiveFrames([rejectionFrame(body, err.code, err.message)]));
      return true;
    }
    engine.batchFailed();
    d.onError({ code: err.code ?? 'network', message: err.message });
    this.schedule(d.backoff.nextDelayMs());
    return false;
  }
}
