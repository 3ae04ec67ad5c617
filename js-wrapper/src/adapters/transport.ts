// Layer: js-wrapper adapters (browser I/O). One stream per client carries every subscribed
// collection. Transports only move bytes: reconnect timing belongs to the core's
// ConnectionMachine, message handling to the engine. Frames are handed on in batches (all the
// messages that arrived before the next task runs) so the engine is called once per burst.
import { corsProbeFor, corsError, CORS_REASON_PREFIX } from '../cors.js';
import { sseToFrame } from '../frames.js';
import type { Transport } from '../types.js';

export interface StreamHandlers {
  onOpen(): void;
  /** Server messages as JSON texts with a "type" member (WebSocket frame form). */
  onFrames(frames: string[]): void;
  /** Any sign of life, including heartbeats. */
  onActivity(): void;
  onFailure(reason: string, fatal: boolean): void;
  /** Sees each WebSocket frame first; true keeps it from the engine (a pong, see latency.ts). */
  intercept?(frame: string): boolean;
}

export interface StreamParams {
  baseUrl: string;
  token: string | null;
  collections: string[];
  where?: string;
  cursor: number;
}

export interface StreamTransport {
  readonly kind: Transport;
  open(params: StreamParams): void;
  close(): void;
  /** Sends a client frame (WebSocket only); false when it cannot be sent now. */
  send(frame: string): boolean;
}

function streamQuery(p: StreamParams): URLSearchParams {
  const q = new URLSearchParams();
  q.set('cursor', String(p.cursor));
  q.set('collections', p.collections.join(','));
  if (p.where) q.set('where', p.where);
  if (p.token) q.set('access_token', p.token);
  // EventSource hides comment lines, so ask for heartbeats as events the client can see.
  q.set('heartbeat', 'event');
  return q;
}

class FrameBatcher {
  private frames: string[] = [];
  private scheduled = false;
  constructor(private readonly flush: (frames: string[]) => void) {}
  push(frame: string): void {
    this.frames.push(frame);
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        const batch = this.frames;
        this.frames = [];
        if (batch.length) this.flush(batch);
      }, 0);
    }
  }
  clear(): void {
    this.frames = [];
  }
}

export class SseTransport implements StreamTransport {
  readonly kind = 'sse' as const;
  private source: EventSource | null = null;
  private batcher: FrameBatcher;
  private generation = 0;

  constructor(private readonly h: StreamHandlers) {
    this.batcher = new FrameBatcher((f) => h.onFrames(f));
  }

  open(p: StreamParams): void {
    this.close();
    const gen = ++this.generation;
    const url = `${p.baseUrl.replace(/\/$/, '')}/v1/events?${streamQuery(p)}`;
    const es = new EventSource(url);
    this.source = es;
    let opened = false;
    const live = () => gen === this.generation;
    es.onopen = () => {
      if (!live()) return;
      opened = true;
      this.h.onOpen();
    };
    const forward = (type: string) => (ev: Event) => {
      if (!live()) return;
      this.h.onActivity();
      this.batcher.push(sseToFrame(type, (ev as MessageEvent<string>).data));
    };
    for (const type of ['hello', 'change', 'event', 'reset']) es.addEventListener(type, forward(type));
    es.addEventListener('heartbeat', () => live() && this.h.onActivity());
    es.addEventListener('error', (ev) => {
      if (!live()) return;
      if (ev instanceof MessageEvent && typeof ev.data === 'string' && ev.data) {
        // A server-sent `event: error` (e.g. slow_consumer): hand it to the engine, then
        // treat the stream as failed.
        this.batcher.push(sseToFrame('error', ev.data));
        return;
      }
      // Connection failure. EventSource would retry on its own with its own timing; the core
      // decides instead, so close it and report.
      es.close();
      this.source = null;
      this.generation++;
      if (opened) this.h.onFailure('stream_closed', false);
      else reportConnectFailure(this.h, p.baseUrl, 'connect_failed', () => this.generation === gen + 1);
    });
  }

  close(): void {
    this.generation++;
    this.batcher.clear();
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  send(): boolean {
    return false;
  }
}

/** A stream that failed before it opened: reports `cors: ...` when the server is up but
 * refuses this page's origin (see cors.ts), else `reason`. `current` is false once the
 * transport was closed or reopened meanwhile: then nothing is reported. */
function reportConnectFailure(h: StreamHandlers, baseUrl: string, reason: string, current: () => boolean): void {
  corsProbeFor(baseUrl)
    .refused()
    .then(
      (refused) => {
        if (current()) h.onFailure(refused ? `${CORS_REASON_PREFIX}${corsError(baseUrl).message}` : reason, false);
      },
      () => current() && h.onFailure(reason, false),
    );
}

// Close codes the server uses for refusals that a retry will not fix.
const FATAL_CLOSE_CODES = new Set([4401, 4403]);

export class WebSocketTransport implements StreamTransport {
  readonly kind = 'websocket' as const;
  private ws: WebSocket | null = null;
  private batcher: FrameBatcher;
  private generation = 0;

  constructor(private readonly h: StreamHandlers) {
    this.batcher = new FrameBatcher((f) => h.onFrames(f));
  }

  open(p: StreamParams): void {
    this.close();
    const gen = ++this.generation;
    const base = p.baseUrl.replace(/\/$/, '').replace(/^http/, 'ws');
    const ws = new WebSocket(`${base}/v1/ws?${streamQuery(p)}`);
    this.ws = ws;
    const live = () => gen === this.generation;
    let opened = false;
    ws.onopen = () => {
      if (!live()) return;
      opened = true;
      this.h.onOpen();
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (!live() || typeof ev.data !== 'string') return;
      this.h.onActivity();
      if (ev.data.startsWith('{"type":"heartbeat"')) return;
      if (this.h.intercept?.(ev.data)) return;
      this.batcher.push(ev.data);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (!live()) return;
      this.ws = null;
      this.generation++;
      const reason = ev.reason || `closed (${ev.code})`;
      // 1006 before the upgrade: no answer the page may see (down, or the Origin refused).
      if (!opened && ev.code === 1006) reportConnectFailure(this.h, p.baseUrl, reason, () => this.generation === gen + 1);
      else this.h.onFailure(reason, FATAL_CLOSE_CODES.has(ev.code));
    };
    ws.onerror = () => {
      /* onclose follows and reports */
    };
  }

  close(): void {
    this.generation++;
    this.batcher.clear();
    if (this.ws) {
      try {
        this.ws.close(1000, 'client closing');
      } catch {
        /* already closing */
      }
      this.ws = null;
    }
  }

  send(frame: string): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(frame);
    return true;
  }
}
