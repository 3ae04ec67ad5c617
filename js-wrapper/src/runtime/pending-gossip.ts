// Layer: js-wrapper. Every tab shows the other tabs' pending writes (the origin's optimistic
// view), offline too. A write is announced at once ('pending'); each tab re-sends its whole set
// every PENDING_SET_MS ('pendingSet', replacing the other tabs' copy, which the engine drops
// when not refreshed for 30 s: its tab is gone); verdicts are announced ('settled'): a rejected
// write leaves the other views at once, an applied one after SETTLED_DROP_DELAY_MS (its change
// normally reaches them first). The leader also keeps alive the sets stored in the slots of tabs
// that are gone, until it has drained them.
import type { EngineOutput, ForeignOp, WireMutation } from '../engine.js';
import type { TabMessage } from '../adapters/tabs.js';
import type { StoredOutbox } from '../adapters/persistence.js';
import { unsettledOf } from '../writes.js';

export const PENDING_SET_MS = 10000;
export const SETTLED_DROP_DELAY_MS = 3000;

export interface PendingGossipDeps {
  clientId: string;
  post(m: TabMessage): void;
  engine(): { foreign(ops: ForeignOp[]): EngineOutput; tick(now: number): EngineOutput } | null;
  ownPending(): WireMutation[];
  ownPendingCount(): number;
  /** True while this tab owns the stream (it speaks for the slots of tabs that are gone). */
  ownsConnection(): boolean;
  /** The slots of tabs that are gone (their slot lock is free). */
  orphanSlots(): Promise<StoredOutbox[]>;
  handle(out: EngineOutput): void;
  /** handle() without waking the send loop (periodic refreshes). */
  handleQuiet(out: EngineOutput): void;
  isClosed(): boolean;
  background(task: Promise<unknown>): void;
  now?: () => number;
}

export class PendingGossip {
  private inbox: ForeignOp[] = [];
  private wasEmpty = true;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly deps: PendingGossipDeps) {}

  start(): void {
    this.timer = setInterval(() => this.deps.background(this.refresh()), PENDING_SET_MS);
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A write this tab just made: the others show it before it is stored or sent. */
  announce(mutations: WireMutation[]): void {
    this.deps.post({ t: 'pending', from: this.deps.clientId, client: this.deps.clientId, mutations });
  }

  /** Verdicts on this tab's writes. */
  settled(applied: number[], rejected: number[]): void {
    const post = (mids: number[]) => this.deps.post({ t: 'settled', from: this.deps.clientId, client: this.deps.clientId, mids });
    if (rejected.length) post(rejected);
    if (applied.length) setTimeout(() => post(applied), SETTLED_DROP_DELAY_MS);
  }

  /** Another tab's pending/pendingSet/settled. Queued and applied in one crossing per task
   * turn: a tab that wakes up or loads with hundreds of these queued handles them once. */
  heard(m: Extract<TabMessage, { t: 'pending' | 'pendingSet' | 'settled' }>): void {
    this.inbox.push(m.t === 'settled' ? { op: 'drop', client: m.client, mids: m.mids }
      : { op: m.t === 'pending' ? 'add' : 'replace', client: m.client, mutations: m.mutations });
    if (this.inbox.length === 1) setTimeout(() => this.applyInbox(), 0);
  }

  /** This tab's whole pending set, for the other tabs (replaces their copy). */
  postSet(): void {
    const size = this.deps.ownPendingCount();
    if (size === 0 && this.wasEmpty) return;
    this.wasEmpty = size === 0;
    this.deps.post({ t: 'pendingSet', from: this.deps.clientId, client: this.deps.clientId, mutations: this.deps.ownPending() });
  }

  /** Stored slots' pending writes shown in this view (at start-up: alive or gone). */
  static opsForSlots(slots: StoredOutbox[], except: string): ForeignOp[] {
    return slots
      .filter((o) => o.clientId !== except)
      .map((o) => ({ op: 'replace' as const, client: o.clientId, mutations: unsettledOf(o.outbox.entries) }))
      .filter((op) => op.mutations.length > 0);
  }

  async refresh(): Promise<void> {
    const d = this.deps;
    if (d.isClosed()) return;
    this.postSet();
    if (d.ownsConnection()) {
      for (const o of await d.orphanSlots()) {
        const engine = d.engine();
        if (d.isClosed() || !engine) return;
        const mutations = unsettledOf(o.outbox.entries);
        if (!mutations.length) continue;
        d.handleQuiet(engine.foreign([{ op: 'replace', client: o.clientId, mutations }]));
        d.post({ t: 'pendingSet', from: d.clientId, client: o.clientId, mutations });
      }
    }
    // Sets not refreshed in time leave this view.
    const engine = d.engine();
    if (!d.isClosed() && engine) d.handleQuiet(engine.tick((d.now ?? Date.now)()));
  }

  private applyInbox(): void {
    const ops = this.inbox;
    this.inbox = [];
    const engine = this.deps.engine();
    if (this.deps.isClosed() || !engine || !ops.length) return;
    this.deps.handle(engine.foreign(ops));
  }
}
