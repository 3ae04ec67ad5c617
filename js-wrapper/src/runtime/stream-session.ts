// Layer: js-wrapper. The live stream of the tab that owns the connection: the core's connection
// machine decides when to open, close and retry; this object carries out its steps with a
// transport, measures the round trip, and hands frames on. Invariants:
//  - one transport at a time, opened only while the machine is `connecting`;
//  - a replica without a cursor (or waiting for one) takes a snapshot before the stream opens,
//    and a stream that reports its cursor expired closes, snapshots and reopens;
//  - a refused token is retried with a fresh token() until the AuthGate calls it final; only
//    then does the machine stop retrying (state `error`, lastError `unauthorized`);
//  - each attempt goes to the node params() names (the current node of runtime/nodes.ts); an
//    attempt that fails or a stream that drops or goes silent (any failure but a refused token)
//    is reported with nodeFailed(node), so the next attempt goes to the next node, resuming
//    from the same cursor. The latency probe and the SSE failure diagnosis ask that same node.
import type { ConnectionStatus } from '../types.js';
import type { ConnectionStep } from '../connection-machine.js';
import type { ErrorCode } from '../errors.js';
import type { SyncError } from '../errors.js';
import { streamFailureCode } from '../cors.js';
import { FrameProbe, httpProbe, LatencyMeter, streamProbe, type LatencyFigures } from '../latency.js';
import type { StreamHandlers, StreamParams, StreamTransport } from '../adapters/transport.js';
import type { AuthGate } from './auth-gate.js';

/** The core's connection machine (connection-machine.ts), as this session drives it. */
export interface StreamMachine {
  start(now: number): ConnectionStep;
  stop(now: number): ConnectionStep;
  onOpen(now: number): ConnectionStep;
  onMessage(now: number): ConnectionStep;
  onFailure(reason: string, fatal: boolean, now: number): ConnectionStep;
  setOnline(online: boolean, now: number): ConnectionStep;
  retryNow(now: number): ConnectionStep;
  tick(now: number): ConnectionStep;
  dispose(): void;
}

export interface StreamSessionDeps {
  machine: StreamMachine;
  makeTransport(handlers: StreamHandlers): StreamTransport;
  /** Where the stream resumes (the replica's cursor) with a fresh token. */
  params(): Promise<StreamParams>;
  /** True when the replica has no usable cursor: a snapshot goes first. */
  needsSnapshot(): boolean;
  loadSnapshot(): Promise<void>;
  /** An authenticated request (GET /v1/ping) to `node` (the stream's): tells a refused token
   * from a server that is down when an SSE stream fails to open (EventSource hides the status),
   * and measures the round trip over SSE. */
  ping(node?: string): Promise<void>;
  /** The stream's node failed (it did not open, dropped or went silent): the next attempt
   * should go to another node. */
  nodeFailed?(node: string, reason: string): void;
  auth: AuthGate;
  isOnline(): boolean;
  /** Frames from the server, in order; returns true when the replica's cursor expired. */
  onFrames(frames: string[]): boolean;
  onOpen(): void;
  onClosed(): void;
  onFailure(error: { code: ErrorCode; message: string }): void;
  /** The machine moved to another state (history, status). */
  onState(step: ConnectionStep): void;
  onLatency(): void;
  /** The cursor expired: the other tabs take a snapshot too. */
  onReset(): void;
  isClosed(): boolean;
  now?: () => number;
}

export class StreamSession {
  private transport: StreamTransport | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private step: ConnectionStep = { action: 'none', state: 'disconnected', attempt: 0, lastError: '', deadlineMs: null, online: true, backoffMs: 0 };
  private since: number | null = null;
  private readonly probe = new FrameProbe((f) => this.transport?.send(f) ?? false);
  private readonly latency: LatencyMeter;
  private stopped = false;
  // The node of the transport's current attempt (null: none open or opening).
  private attemptNode: string | null = null;

  constructor(private readonly deps: StreamSessionDeps) {
    this.latency = new LatencyMeter({
      probe: streamProbe(() => (this.transport?.kind === 'websocket' ? this.probe : null), httpProbe(() => deps.ping(this.node ?? undefined))),
      onChange: () => deps.onLatency(),
    });
  }

  get state(): ConnectionStatus {
    return this.step.state;
  }

  get attempt(): number {
    return this.step.attempt;
  }

  get connectedSince(): number | null {
    return this.since;
  }

  get latencyFigures(): LatencyFigures {
    return this.latency.figures;
  }

  /** The node the stream is connected to, or null when it is not connected. */
  get node(): string | null {
    return this.since !== null ? this.attemptNode : null;
  }

  get kind(): StreamTransport['kind'] | null {
    return this.transport?.kind ?? null;
  }

  /** Sends a frame on the stream (WebSocket only); false when it cannot. */
  send(frame: string): boolean {
    return this.transport?.send(frame) ?? false;
  }

  start(): void {
    const d = this.deps;
    this.transport = d.makeTransport({
      onOpen: () => this.opened(),
      onFrames: (frames) => this.frames(frames),
      onActivity: () => {
        if (!this.stopped) this.apply(d.machine.onMessage(this.now()));
      },
      onFailure: (reason, fatal) => this.failed(reason, fatal),
      intercept: (frame) => this.probe.receive(frame),
    });
    if (!d.isOnline()) d.machine.setOnline(false, this.now());
    this.apply(d.machine.start(this.now()));
  }

  /** Starts again after a final refusal ended (a request with credentials went through). */
  restart(): void {
    if (this.step.state === 'error') this.apply(this.deps.machine.start(this.now()));
  }

  setOnline(online: boolean): void {
    this.apply(this.deps.machine.setOnline(online, this.now()));
  }

  retryNow(): void {
    if (this.step.state === 'error') this.restart();
    else this.apply(this.deps.machine.retryNow(this.now()));
  }

  /** Hands the stream over (lost leadership, close): no further steps are carried out. */
  stop(): void {
    if (this.stopped) return;
    this.apply(this.deps.machine.stop(this.now()));
    this.stopped = true;
    this.transport?.close();
    this.transport = null;
    this.since = null;
    this.attemptNode = null;
    this.latency.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.deps.machine.dispose();
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private apply(step: ConnectionStep): void {
    if (this.stopped) return;
    const prev = this.step.state;
    this.step = step;
    if (step.action === 'close') {
      this.transport?.close();
      this.since = null;
      this.attemptNode = null;
      this.latency.stop();
      this.deps.onClosed();
    }
    if (step.action === 'open') void this.open();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (step.deadlineMs !== null && !this.deps.isClosed()) {
      const delay = Math.max(0, step.deadlineMs - this.now());
      this.timer = setTimeout(() => {
        if (this.deps.isClosed()) return;
        const next = this.deps.machine.tick(this.now());
        // A timeout (connecting too long, a silent stream) is a failure of the stream's node.
        if (next.action === 'close' && next.state === 'backing_off') this.leaveNode(next.lastError || 'timeout');
        this.apply(next);
      }, Math.min(delay, 2 ** 31 - 1));
    }
    if (prev !== step.state) this.deps.onState(step);
  }

  private async open(): Promise<void> {
    const d = this.deps;
    if (d.isClosed() || !this.transport) return;
    this.attemptNode = null;
    try {
      if (d.needsSnapshot()) await d.loadSnapshot();
    } catch (e) {
      const err = e as SyncError;
      this.failed(`snapshot: ${err.message}`, err.status === 401 || err.status === 403, err.code);
      return;
    }
    if (d.isClosed() || this.stopped || this.step.state !== 'connecting') return;
    const params = await d.params();
    if (d.isClosed() || this.stopped || this.step.state !== 'connecting') return;
    this.openOn(params);
  }

  private openOn(params: StreamParams): void {
    if (!this.transport) return;
    this.attemptNode = params.baseUrl;
    this.transport.open(params);
  }

  /** The attempt on the current node failed: the next one goes elsewhere (nodes.ts). */
  private leaveNode(reason: string): void {
    const node = this.attemptNode;
    this.attemptNode = null;
    if (node !== null) this.deps.nodeFailed?.(node, reason);
  }

  private opened(): void {
    // A transport that opens after stop() belongs to no one (the machine is disposed).
    if (this.deps.isClosed() || this.stopped) return;
    this.since = this.now();
    this.deps.auth.accepted();
    this.apply(this.deps.machine.onOpen(this.now()));
    this.probe.reset();
    this.latency.start({ warmUp: this.transport?.kind !== 'websocket' });
    this.deps.onOpen();
  }

  private frames(frames: string[]): void {
    if (this.deps.isClosed() || this.stopped) return;
    if (!this.deps.onFrames(frames)) return;
    // The cursor is older than the server's log: take a fresh snapshot, then resume.
    this.deps.onReset();
    this.transport?.close();
    // Not a failure of this node: a snapshot that fails now reports its own (nodes.ts).
    this.attemptNode = null;
    this.deps.loadSnapshot().then(
      () => {
        if (this.step.state === 'connected') void this.reopen();
      },
      (e: SyncError) => this.failed(`snapshot: ${e.message}`, false, e.code),
    );
  }

  private async reopen(): Promise<void> {
    const params = await this.deps.params();
    if (!this.stopped) this.openOn(params);
  }

  /** `code` when the failure already has one (a snapshot request's SyncError); else derived
   * from the transport's reason. `refused`: the server refused the credentials. */
  private failed(reason: string, refused: boolean, code?: ErrorCode): void {
    if (this.deps.isClosed() || this.stopped) return;
    if (!refused && reason === 'connect_failed' && this.transport?.kind === 'sse') {
      // EventSource does not say why it failed: ask once with the same token.
      this.deps.ping(this.attemptNode ?? undefined).then(
        () => {
          this.deps.auth.accepted(); // the token went through: the stream failed for another reason
          this.report(reason, false, code);
        },
        (e: SyncError) => this.report(reason, e.status === 401 || e.status === 403, code),
      );
      return;
    }
    this.report(reason, refused, code);
  }

  private report(reason: string, refused: boolean, code?: ErrorCode): void {
    if (this.deps.isClosed() || this.stopped) return;
    this.since = null;
    this.latency.stop();
    // A refused token is an answer: the node works, and every node checks the same token.
    if (refused) this.attemptNode = null;
    else this.leaveNode(reason);
    const final = refused && this.deps.auth.refused();
    const errorCode: ErrorCode = refused ? 'unauthorized' : (code ?? streamFailureCode(reason, false));
    this.deps.onFailure({ code: errorCode, message: refused ? `the server refused the token (${reason})` : reason });
    this.apply(this.deps.machine.onFailure(reason, final, this.now()));
  }
}
