// Layer: js-wrapper. Which tab leads: the holder of the origin's leader lock (Web Locks). The
// browser hands the lock on when its tab closes or crashes; a tab that hangs or freezes keeps it,
// so a follower that has not heard the leader for leaderTimeoutMs steals it (one at a time: the
// `steal` lock, and only while the leader lock is really held). A leader that hears another
// leader (it was frozen and its lock stolen) asks the lock manager and steps down. Invariant:
// at most one tab acts as leader for longer than it takes a stolen tab to run one task.
import type { TabMessage } from '../adapters/tabs.js';

/** The leader's heartbeat on the tab channel, and how often followers check for it. */
export const LEADER_BEAT_MS = 1000;

export interface Lock {
  release(): void;
}

/** The lock manager (adapters/tabs.ts in the browser; fakes in tests). */
export interface LockManager {
  wait(name: string, onAcquired: () => void, onLost: () => void): Lock;
  steal(name: string, onAcquired: () => void, onLost: () => void): Lock;
  tryAcquire(name: string): Promise<Lock | null>;
  heldNames(): Promise<Set<string>>;
  /** The browser's id of the document holding `name`, or null. */
  holder(name: string): Promise<string | null>;
}

export interface LeadershipDeps {
  locks: LockManager;
  lockName(kind: 'leader' | 'steal'): string;
  clientId: string;
  post(m: TabMessage): void;
  /** The leader's last completed store of documents (sent with each beat). */
  storedCursor(): number;
  leaderTimeoutMs: number;
  isHidden(): boolean;
  isClosed(): boolean;
  onLead(): void;
  onLose(): void;
  note(type: string, data: Record<string, unknown>): void;
  background(task: Promise<unknown>): void;
  now?: () => number;
}

export class Leadership {
  private lock: Lock | null = null;
  private leading = false;
  private lockClientId: string | null = null;
  private heardAt: number;
  private beatTimer: ReturnType<typeof setInterval> | null = null;
  private watchTimer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly deps: LeadershipDeps) {
    this.heardAt = this.now();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Joins the line for the leader lock and starts watching the leader. */
  start(): void {
    this.heardAt = this.now();
    this.queue();
    this.watchTimer = setInterval(() => this.deps.background(this.checkLeaderAlive()), LEADER_BEAT_MS);
  }

  /** A message from another tab. */
  heard(m: TabMessage): void {
    if (m.t === 'beat' || m.t === 'leader' || m.t === 'frames' || m.t === 'status' || m.t === 'caughtUp') this.heardAt = this.now();
    if ((m.t === 'beat' || m.t === 'leader') && this.leading) this.deps.background(this.verify());
  }

  dispose(): void {
    this.stopBeating();
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
    this.lock?.release();
    this.lock = null;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private queue(): void {
    // A lock that is no longer this tab's current one (replaced after a loss) changes nothing.
    const lock: Lock = this.deps.locks.wait(this.deps.lockName('leader'), () => this.acquired(), () => {
      if (this.lock === lock) this.lost();
    });
    this.lock = lock;
  }

  private acquired(): void {
    if (this.deps.isClosed()) {
      this.lock?.release();
      return;
    }
    this.leading = true;
    this.deps.post({ t: 'leader', from: this.deps.clientId });
    this.beatTimer = setInterval(() => this.deps.post({ t: 'beat', from: this.deps.clientId, stored: this.deps.storedCursor() }), LEADER_BEAT_MS);
    this.deps.background(this.deps.locks.holder(this.deps.lockName('leader')).then((id) => (this.lockClientId = id)));
    this.deps.onLead();
  }

  /** Another tab stole the lock while this one did not answer: follow from now on. */
  private lost(): void {
    if (this.deps.isClosed() || !this.leading) return;
    this.leading = false;
    this.lockClientId = null;
    this.lock?.release(); // stolen already; this only stops it from reporting the loss again
    this.stopBeating();
    this.heardAt = this.now();
    this.deps.onLose();
    this.queue();
  }

  private stopBeating(): void {
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.beatTimer = null;
  }

  /** The browser also rejects a stolen holder's request, but a tab that just woke may take
   * seconds to get to that task; the lock manager answers at once. */
  private async verify(): Promise<void> {
    if (!this.leading || !this.lockClientId) return;
    const holder = await this.deps.locks.holder(this.deps.lockName('leader'));
    if (this.leading && holder !== this.lockClientId) this.lost();
  }

  private async checkLeaderAlive(): Promise<void> {
    const d = this.deps;
    if (d.isClosed() || this.leading) return;
    const timeout = d.leaderTimeoutMs * (d.isHidden() ? 15 : 1);
    if (this.now() - this.heardAt < timeout) return;
    const guard = await d.locks.tryAcquire(d.lockName('steal'));
    if (!guard) return;
    try {
      const leaderName = d.lockName('leader');
      if (d.isClosed() || this.leading || this.now() - this.heardAt < timeout) return;
      if (!(await d.locks.heldNames()).has(leaderName)) return; // nobody leads: the line moves by itself
      const silentMs = this.now() - this.heardAt;
      this.lock?.release(); // leave the line: the stolen lock replaces that request
      const lock: Lock = d.locks.steal(leaderName, () => this.acquired(), () => {
        if (this.lock === lock) this.lost();
      });
      this.lock = lock;
      d.note('leader_stolen', { clientId: d.clientId, silentMs });
    } finally {
      // Hold the guard a moment so that the others hear the new leader before they look.
      setTimeout(() => guard.release(), LEADER_BEAT_MS);
    }
  }
}
