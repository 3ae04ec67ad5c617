// Layer: js-wrapper adapters (browser I/O). Tab coordination: one leader per origin + server +
// user owns the stream (Web Locks); the others follow over BroadcastChannel. A lock is
// released by the browser when its tab closes or crashes, which is what hands leadership over.
// Each tab also holds the lock of its own outbox slot, so a slot whose lock is free belongs
// to a tab that is gone: a reload reclaims it, or the leader drains it.

import type { Subscription, WireMutation } from '../engine.js';

// `sub` on frames: the subscription of the stream they come from (the leader's). A follower of
// another subscription (an older or newer version of the app in another tab) must not take them
// as its complete stream (absent: a leader that does not say, treated as unknown).
export type TabMessage =
  | { t: 'frames'; frames: string[]; from: string; sub?: Subscription }
  | { t: 'status'; status: Record<string, unknown>; from: string }
  | { t: 'resnapshot'; from: string }
  // A follower asks the leader for the frames after its cursor; frames null: not kept that far back.
  | { t: 'catchUp'; from: string; id: number; cursor: number }
  | { t: 'caughtUp'; from: string; to: string; id: number; frames: string[] | null; sub?: Subscription }
  | { t: 'hello'; from: string }
  | { t: 'leader'; from: string }
  // stored: the cursor of the leader's last completed write of documents and cursor.
  | { t: 'beat'; from: string; stored?: number }
  // A tab's pending writes: 'pending' adds (a write just made), 'pendingSet' is the whole set
  // (sent every few seconds, and for the slots of tabs that are gone), 'settled' drops mids.
  | { t: 'pending'; from: string; client: string; mutations: WireMutation[] }
  | { t: 'pendingSet'; from: string; client: string; mutations: WireMutation[] }
  | { t: 'settled'; from: string; client: string; mids: number[] }
  | { t: 'wiped'; from: string };

interface LockManagerLike {
  request(
    name: string,
    options: { ifAvailable?: boolean; steal?: boolean; mode?: 'exclusive'; signal?: AbortSignal },
    cb: (lock: unknown) => Promise<unknown> | unknown,
  ): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>;
}

function locks(): LockManagerLike | null {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks ?? null;
}

export function tabsSupported(): boolean {
  return !!locks() && typeof BroadcastChannel !== 'undefined';
}

type LockMode = 'try' | 'wait' | 'steal';

/** Holds a lock until release() is called (or the tab dies). A lock another tab steals (see
 * `steal`) calls `onLost`: the browser rejects the holder's request with an AbortError. */
export class HeldLock {
  private releaseFn: (() => void) | null = null;
  private readonly abort = typeof AbortController !== 'undefined' ? new AbortController() : null;
  private granted = false;
  private released = false;
  private acquired: Promise<boolean>;

  private constructor(name: string, mode: LockMode, onAcquired?: () => void, onLost?: () => void) {
    const lm = locks();
    if (!lm) {
      this.acquired = Promise.resolve(true);
      onAcquired?.();
      return;
    }
    const options = mode === 'try' ? { ifAvailable: true } : mode === 'steal' ? { steal: true } : { signal: this.abort?.signal };
    this.acquired = new Promise<boolean>((resolveAcquired) => {
      lm.request(name, { ...options, mode: 'exclusive' }, (lock) => {
        if (!lock || this.released) {
          resolveAcquired(false);
          return undefined;
        }
        this.granted = true;
        resolveAcquired(true);
        onAcquired?.();
        return new Promise<void>((release) => (this.releaseFn = release));
      }).catch(() => {
        resolveAcquired(false);
        // Rejected after it was granted: stolen. Before: aborted by release(), or refused.
        if (this.granted && !this.released) onLost?.();
      });
    });
  }

  /** Tries once; resolves to the lock or null if someone else holds it. */
  static async tryAcquire(name: string): Promise<HeldLock | null> {
    const l = new HeldLock(name, 'try');
    return (await l.acquired) ? l : null;
  }

  /** Waits in line; `onAcquired` runs when (and if) the lock is granted. */
  static wait(name: string, onAcquired: () => void, onLost?: () => void): HeldLock {
    return new HeldLock(name, 'wait', onAcquired, onLost);
  }

  /** Takes the lock from whoever holds it (a tab that stopped answering). */
  static steal(name: string, onAcquired: () => void, onLost?: () => void): HeldLock {
    return new HeldLock(name, 'steal', onAcquired, onLost);
  }

  get held(): boolean {
    return this.granted && !this.released;
  }

  /** Releases the lock, or leaves the line if it was not granted yet. */
  release(): void {
    this.released = true;
    if (!this.granted) this.abort?.abort();
    this.releaseFn?.();
    this.releaseFn = null;
  }
}

/** The client id (the browser's id of a document) holding a lock, or null. */
export async function lockHolder(name: string): Promise<string | null> {
  const lm = locks();
  if (!lm) return null;
  const q = (await lm.query()) as { held?: { name?: string; clientId?: string }[] };
  return q.held?.find((l) => l.name === name)?.clientId ?? null;
}

export async function heldLockNames(): Promise<Set<string>> {
  const lm = locks();
  if (!lm) return new Set();
  const q = await lm.query();
  return new Set((q.held ?? []).map((l) => l.name ?? ''));
}

export class TabChannel {
  private channel: BroadcastChannel | null;
  constructor(name: string, private readonly onMessage: (m: TabMessage) => void) {
    this.channel = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel(name) : null;
    if (this.channel) this.channel.onmessage = (ev: MessageEvent<TabMessage>) => this.onMessage(ev.data);
  }
  post(m: TabMessage): void {
    this.channel?.postMessage(m);
  }
  close(): void {
    this.channel?.close();
    this.channel = null;
  }
}
