// Layer: js-wrapper. How a follower tab keeps its replica on the leader's stream: the frames the
// leader forwards, and a catch-up that fills the gap between this tab's cursor and those live
// frames, from the leader's recent frames when they reach back far enough, else from a
// snapshot. Invariants:
//  - frames that arrive while a catch-up runs are buffered and applied after it, in order;
//  - one catch-up at a time; a reset heard meanwhile adds one more round, by snapshot;
//  - the core decides what a stream of another subscription means (followSubscription): such
//    frames never count as this replica's complete stream, and it takes a snapshot of its own.
import type { EngineOutput, Subscription } from '../engine.js';
import type { TabMessage } from '../adapters/tabs.js';
import type { ErrorCode } from '../errors.js';

/** How long a follower waits for the leader's recent frames before it takes a snapshot. */
export const CATCH_UP_WAIT_MS = 1000;

export interface FollowerSyncDeps {
  engine(): {
    cursor(): number;
    state(): { needSnapshot: boolean };
    followSubscription(sub: Subscription | null): EngineOutput;
  } | null;
  clientId: string;
  /** null: no tab channel (a single tab). */
  post: ((m: TabMessage) => void) | null;
  isClosed(): boolean;
  /** True while this tab owns the stream: a catch-up in flight stops. */
  ownsConnection(): boolean;
  isOnline(): boolean;
  loadSnapshot(): Promise<void>;
  /** Applies frames of the leader's stream (and keeps them for when this tab leads). */
  apply(frames: string[]): void;
  handle(out: EngineOutput): void;
  note(type: string, data: Record<string, unknown>): void;
  onError(error: { code: ErrorCode; message: string }): void;
  /** The catch-up finished (status). */
  onSettled(): void;
  background(task: Promise<unknown>): void;
}

export class FollowerSync {
  private buffer: string[][] | null = null;
  private running: Promise<void> | null = null;
  private wantsSnapshot = false;
  private seq = 0;
  private readonly waiters = new Map<number, (frames: string[] | null) => void>();
  private upstreamKey: string;

  /** `own`: this tab's subscription, whose stream the stored replica follows at start. */
  constructor(private readonly deps: FollowerSyncDeps, own: Subscription | null) {
    this.upstreamKey = own ? JSON.stringify(own) : 'unknown';
  }

  /** Live frames the leader forwarded. */
  frames(frames: string[], sub: Subscription | undefined): void {
    this.follow(sub);
    if (this.buffer) this.buffer.push(frames);
    else this.deps.apply(frames);
  }

  /** The leader's answer to a catch-up request. */
  caughtUp(m: Extract<TabMessage, { t: 'caughtUp' }>): void {
    if (m.to !== this.deps.clientId || !this.waiters.has(m.id)) return;
    this.follow(m.sub);
    this.waiters.get(m.id)?.(m.frames);
  }

  /** This tab took the stream: nothing more is buffered for it. */
  stopBuffering(): void {
    this.buffer = null;
  }

  /** `snapshot`: the leader's cursor expired (reset), so this tab's did too. */
  catchUp(snapshot = false): Promise<void> {
    this.wantsSnapshot ||= snapshot;
    if (!this.running) this.running = this.run().finally(() => (this.running = null));
    return this.running;
  }

  /** The frames this tab applies come from a stream of `sub` (undefined: a leader that does not
   * say). The stored replica stays the leader's. */
  follow(sub: Subscription | undefined): void {
    const key = sub ? JSON.stringify(sub) : 'unknown';
    const engine = this.deps.engine();
    if (key === this.upstreamKey || !engine) return;
    this.upstreamKey = key;
    this.deps.handle(engine.followSubscription(sub ?? null));
    if (!this.deps.ownsConnection() && engine.state().needSnapshot) {
      // After the catch-up running now (if any) has finished: a flag set during its last
      // steps would not start another round.
      setTimeout(() => {
        if (!this.deps.isClosed() && !this.deps.ownsConnection()) this.deps.background(this.catchUp(true));
      }, 0);
    }
  }

  private async run(): Promise<void> {
    const d = this.deps;
    this.buffer = this.buffer ?? [];
    try {
      for (let round = 0; round < 3; round++) {
        const engine = d.engine();
        if (!engine) return;
        // needSnapshot: the replica was re-based for a new subscription, or follows a leader of
        // another one: the leader's frames cannot fill what it lacks.
        const wantSnapshot = this.wantsSnapshot || engine.state().needSnapshot;
        this.wantsSnapshot = false;
        const frames = wantSnapshot ? null : await this.askLeader(engine.cursor());
        // A tab that leads now resumes its own stream from its cursor.
        if (d.isClosed() || d.ownsConnection()) return;
        if (frames) {
          d.apply(frames);
          d.note('caught_up', { from: 'leader', frames: frames.length });
        } else if (d.isOnline()) {
          await d.loadSnapshot();
          d.note('caught_up', { from: 'snapshot' });
        }
        if (!this.wantsSnapshot) break;
      }
    } catch (e) {
      d.onError({ code: (e as { code?: ErrorCode }).code ?? 'network', message: (e as Error).message });
    } finally {
      const buffered = this.buffer ?? [];
      this.buffer = null;
      if (!d.isClosed()) for (const frames of buffered) d.apply(frames);
      d.onSettled();
    }
  }

  /** The leader's frames after `cursor`, or null (no answer in time, or it does not keep
   * frames that old). */
  private askLeader(cursor: number): Promise<string[] | null> {
    const post = this.deps.post;
    if (!post) return Promise.resolve(null);
    const id = ++this.seq;
    return new Promise((resolve) => {
      const done = (frames: string[] | null) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(frames);
      };
      const timer = setTimeout(() => done(null), CATCH_UP_WAIT_MS);
      this.waiters.set(id, done);
      post({ t: 'catchUp', from: this.deps.clientId, id, cursor });
    });
  }
}
