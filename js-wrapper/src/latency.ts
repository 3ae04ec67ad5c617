// Layer: js-wrapper. The measured round trip of the live connection (protocol revision 1.2):
// the tab that holds the stream probes the server when the stream opens and then every
// `intervalMs`, one probe at a time, and keeps the last sample and a smoothed value. Over
// WebSocket the probe is a `ping` frame answered by a `pong` with the same id (FrameProbe); over
// SSE, which cannot send on its stream, a `GET /v1/ping` to the same server (http.ts). Pure: the
// probe, the clock and the timers are handed in, so tests drive it with fakes.

export interface LatencyFigures {
  /** Smoothed round trip in whole ms (exponential moving average of the samples), or null. */
  readonly latencyMs: number | null;
  /** The last sample in whole ms, or null. */
  readonly lastLatencyMs: number | null;
}

/** A probe that cannot work against this server (an older one): the meter stops probing until
 * the next start(). */
export class ProbeUnsupported extends Error {}

export interface LatencyMeterOptions {
  /** Resolves when the server answered; rejects when it could not (no sample). */
  probe: () => Promise<void>;
  /** Called when the figures changed. */
  onChange: (figures: LatencyFigures) => void;
  /** Between two probes (default 15000 ms). */
  intervalMs?: number;
  /** A probe unanswered this long gives no sample (default 10000 ms). */
  timeoutMs?: number;
  /** Weight of a new sample in the smoothed value (default 0.25). */
  smoothing?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

const defaultNow = (): number => {
  const perf = (globalThis as { performance?: { now(): number } }).performance;
  return perf ? perf.now() : Date.now();
};

export class LatencyMeter {
  private smoothed: number | null = null;
  private last: number | null = null;
  private timer: unknown = null;
  // Bumped by start() and stop(): a probe of an older run settles into nothing.
  private run = 0;
  private running = false;
  private readonly o: Required<LatencyMeterOptions>;
  // Ends the probe in flight (as unanswered): its timeout, or stop().
  private inFlight: (() => void) | null = null;

  constructor(options: LatencyMeterOptions) {
    this.o = {
      intervalMs: 15000,
      timeoutMs: 10000,
      smoothing: 0.25,
      now: defaultNow,
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
      ...options,
    };
  }

  get figures(): LatencyFigures {
    return { latencyMs: this.round(this.smoothed), lastLatencyMs: this.round(this.last) };
  }

  get active(): boolean {
    return this.running;
  }

  /** The connection opened: forget the old figures, probe now and then every intervalMs.
   * `warmUp`: the first answer is not a sample (an HTTP probe's first request may open a
   * connection of its own, which is not the round trip). */
  start({ warmUp = false }: { warmUp?: boolean } = {}): void {
    this.stopTimer();
    const run = ++this.run;
    this.running = true;
    this.reset();
    void this.measure(run, warmUp);
  }

  /** The connection closed: no figures until the next start(). */
  stop(): void {
    this.run++;
    this.running = false;
    this.stopTimer();
    this.reset();
  }

  private reset(): void {
    if (this.smoothed === null && this.last === null) return;
    this.smoothed = this.last = null;
    this.o.onChange(this.figures);
  }

  private stopTimer(): void {
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
    this.inFlight?.();
  }

  private async measure(run: number, warmUp: boolean): Promise<void> {
    let unsupported = false;
    for (let i = warmUp ? 0 : 1; i < 2 && !unsupported; i++) {
      const started = this.o.now();
      const ok = await this.probeOnce().catch((e: unknown) => {
        unsupported = e instanceof ProbeUnsupported;
        return false;
      });
      if (run !== this.run) return;
      if (!ok) break;
      if (i === 1) this.sample(this.o.now() - started);
    }
    if (unsupported) return;
    this.timer = this.o.setTimer(() => {
      this.timer = null;
      if (run === this.run) void this.measure(run, false);
    }, this.o.intervalMs);
  }

  /** true: answered in time; false: timed out or stopped; rejects as the probe did. */
  private probeOnce(): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const settle = (ok: boolean, e?: unknown) => {
        if (this.inFlight !== end) return;
        this.inFlight = null;
        this.o.clearTimer(t);
        if (e === undefined) resolve(ok);
        else reject(e);
      };
      const end = () => settle(false);
      this.inFlight = end;
      const t = this.o.setTimer(end, this.o.timeoutMs);
      this.o.probe().then(
        () => settle(true),
        (e: unknown) => settle(false, e ?? new Error('probe failed')),
      );
    });
  }

  private sample(ms: number): void {
    const v = Math.max(0, ms);
    this.last = v;
    this.smoothed = this.smoothed === null ? v : this.smoothed + this.o.smoothing * (v - this.smoothed);
    this.o.onChange(this.figures);
  }

  private round(v: number | null): number | null {
    return v === null ? null : Math.round(v);
  }
}

/** An HTTP probe (GET /v1/ping): a server older than revision 1.2 answers 404 (or 405), which
 * stops the meter instead of asking again every interval. */
export function httpProbe(ping: () => Promise<void>): () => Promise<void> {
  return () =>
    ping().catch((e: unknown) => {
      const status = (e as { status?: number } | null)?.status;
      throw status === 404 || status === 405 ? new ProbeUnsupported('the server has no GET /v1/ping') : e;
    });
}

/** The probe of a live stream: ping frames while `frames()` gives a FrameProbe (a WebSocket
 * stream) whose server answers them, else `http` (SSE, or a server older than revision 1.2). */
export function streamProbe(frames: () => FrameProbe | null, http: () => Promise<void>): () => Promise<void> {
  return async () => {
    const f = frames();
    if (f?.supported) {
      try {
        return await f.probe();
      } catch (e) {
        if (!(e instanceof ProbeUnsupported)) throw e;
      }
    }
    return http();
  };
}

const PONG_PREFIX = '{"type":"pong"';
// What a server older than revision 1.2 answers to a ping frame.
const OLD_SERVER_ANSWER = 'unknown message type \\"ping\\"';

function isErrorFrame(frame: string): boolean {
  try {
    return (JSON.parse(frame) as { type?: unknown }).type === 'error';
  } catch {
    return false;
  }
}

/** The WebSocket probe: sends `{"type":"ping","id":N}` and resolves on the pong with that id.
 * One probe at a time (the meter never overlaps them). A server older than revision 1.2 answers
 * with an error frame naming the unknown type: the probe rejects with ProbeUnsupported and
 * `supported` turns false for this connection (call reset() when a new one opens). */
export class FrameProbe {
  private seq = 0;
  private waiting: { id: number; resolve: () => void; reject: (e: unknown) => void } | null = null;
  supported = true;

  constructor(private readonly send: (frame: string) => boolean) {}

  readonly probe = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (!this.supported) return reject(new ProbeUnsupported('the server does not answer ping frames'));
      const id = ++this.seq;
      this.waiting?.reject(new Error('superseded'));
      this.waiting = { id, resolve, reject };
      if (!this.send(`{"type":"ping","id":${id}}`)) {
        this.waiting = null;
        reject(new Error('not connected'));
      }
    });

  /** A frame from the server: true when it was the answer to a probe (not for the engine). */
  receive(frame: string): boolean {
    if (frame.startsWith(PONG_PREFIX)) {
      let id: unknown;
      try {
        id = (JSON.parse(frame) as { id?: unknown }).id;
      } catch {
        return true;
      }
      if (this.waiting && this.waiting.id === id) {
        const w = this.waiting;
        this.waiting = null;
        w.resolve();
      }
      return true;
    }
    if (this.waiting && frame.includes(OLD_SERVER_ANSWER) && isErrorFrame(frame)) {
      const w = this.waiting;
      this.waiting = null;
      this.supported = false;
      w.reject(new ProbeUnsupported('the server does not answer ping frames'));
      return true;
    }
    return false;
  }

  /** A new connection: the old one's probe is void, and the server may have changed. */
  reset(): void {
    this.waiting?.reject(new Error('connection replaced'));
    this.waiting = null;
    this.supported = true;
  }
}
