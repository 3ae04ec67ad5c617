// Layer: js-wrapper (browser I/O diagnosis). Tells "the server refused this page's origin"
// (CORS, or the WebSocket Origin check: the server's `allowed_origins`) apart from "the server
// is down". The browser reports both as the same opaque failure (a fetch TypeError, an
// EventSource error, a WebSocket closed with 1006), so after such a failure, while the browser
// says it is online, ask the server twice:
//   1. GET /v1/health in `cors` mode: answered  -> this origin is allowed; the failure was
//      something else (the server closed the connection, a proxy, ...): not CORS.
//   2. GET /v1/health in `no-cors` mode: an opaque answer -> the server is up and answering,
//      and only CORS refused step 1: CORS. A failure here too -> unreachable.
// Both are simple GETs without credentials or custom headers (no preflight). Depends on
// nothing but `fetch`, injected so Node tests can drive it.
//
//   const cors = new CorsProbe('https://sync.example.com');
//   if (await cors.refused()) status.lastError = corsError('https://sync.example.com');

import { SyncError, type ErrorCode } from './errors.js';

/** The error code of a refused origin (status.lastError.code, SyncError.code). */
export const CORS_CODE = 'cors';

export type Diagnosis = 'cors' | 'reachable' | 'unreachable';

export interface CorsProbeOptions {
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** navigator.onLine by default: offline, there is nothing to tell apart. */
  online?: () => boolean;
  /** Each probe request gives up after this long (default 3000 ms). */
  timeoutMs?: number;
  /** A diagnosis is reused for this long, so a reconnect loop probes at most this often
   * (default 10000 ms). */
  cacheMs?: number;
  now?: () => number;
}

function defaultOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine ?? true;
}

export class CorsProbe {
  private last: { at: number; result: Diagnosis } | null = null;
  private running: Promise<Diagnosis> | null = null;
  private readonly healthUrl: string;

  constructor(
    baseUrl: string,
    private readonly options: CorsProbeOptions = {},
  ) {
    this.healthUrl = `${baseUrl.replace(/\/$/, '')}/v1/health`;
  }

  /** Why requests to the server fail: 'cors', 'reachable' (not CORS) or 'unreachable'. Call it
   * only after a request failed without an HTTP answer; null while the browser is offline. */
  async diagnose(): Promise<Diagnosis | null> {
    if (!(this.options.online ?? defaultOnline)()) return null;
    const now = (this.options.now ?? Date.now)();
    if (this.last && now - this.last.at < (this.options.cacheMs ?? 10000)) return this.last.result;
    if (!this.running) {
      this.running = this.probe().finally(() => {
        this.running = null;
      });
    }
    const result = await this.running;
    this.last = { at: (this.options.now ?? Date.now)(), result };
    return result;
  }

  /** True when the server is up but refuses this page's origin. */
  async refused(): Promise<boolean> {
    return (await this.diagnose()) === 'cors';
  }

  /** Forget the cached diagnosis (after a success: the next failure probes again). */
  reset(): void {
    this.last = null;
  }

  private async probe(): Promise<Diagnosis> {
    if (await this.answers('cors')) return 'reachable';
    return (await this.answers('no-cors')) ? 'cors' : 'unreachable';
  }

  private async answers(mode: RequestMode): Promise<boolean> {
    const f = this.options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.options.timeoutMs ?? 3000);
    try {
      // Any answer counts, even an error status: the point is whether the browser let the page
      // see one (cors) or whether the server answered at all (no-cors gives an opaque 0).
      await f(this.healthUrl, { method: 'GET', mode, cache: 'no-store', credentials: 'omit', signal: ctrl.signal });
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** How a stream transport marks a failure diagnosed as a refused origin (StreamHandlers.onFailure). */
export const CORS_REASON_PREFIX = 'cors: ';

/** The status.lastError code of a stream failure: `unauthorized` for a fatal refusal, `cors`
 * for a refused origin, else `network`. */
export function streamFailureCode(reason: string, fatal: boolean): ErrorCode {
  if (fatal) return 'unauthorized';
  return reason.startsWith(CORS_REASON_PREFIX) ? CORS_CODE : 'network';
}

/** The error a refused origin is reported with. */
export function corsError(baseUrl: string, cause?: unknown): SyncError {
  const origin = (globalThis as { location?: { origin?: string } }).location?.origin ?? 'this page';
  return new SyncError(
    CORS_CODE,
    `${baseUrl} is up but refuses requests from ${origin}: add the origin to the server's allowed_origins`,
    cause === undefined ? {} : { cause },
  );
}

/** One probe per server URL, shared by the HTTP requests and the stream of a page. */
const probes = new Map<string, CorsProbe>();
export function corsProbeFor(baseUrl: string): CorsProbe {
  let p = probes.get(baseUrl);
  if (!p) {
    p = new CorsProbe(baseUrl);
    probes.set(baseUrl, p);
  }
  return p;
}
