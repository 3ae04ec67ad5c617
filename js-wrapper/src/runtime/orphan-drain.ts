// Layer: js-wrapper. The leader sends the pending writes of tabs that are gone (their slot lock
// is free), each under its own client id, so the server's per-client dedupe keeps them exactly
// once. A slot is read again once its lock is held (the copy listed before may be stale), and
// its outbox is rewritten after every answered batch, so a crash mid-drain resends nothing twice.
import type { Persistence, StoredOutbox } from '../adapters/persistence.js';
import type { Lock } from './leadership.js';

/** A throwaway engine over one slot's outbox (a wasm engine in the browser). */
export interface DrainEngine {
  setTransportReady(ready: boolean): void;
  takeBatch(): string | null;
  receiveFrames(frames: string[]): unknown;
  takePersistence(): { outbox?: StoredOutbox['outbox'] };
  dispose(): void;
}

export interface OrphanDrainDeps {
  persistence: Persistence;
  clientId: string;
  slotLockName(clientId: string): string;
  heldNames(): Promise<Set<string>>;
  tryAcquire(name: string): Promise<Lock | null>;
  engineFor(slot: StoredOutbox): DrainEngine;
  post(body: string): Promise<string>;
  /** True while this tab may drain (it owns the stream and is online). */
  mayDrain(): boolean;
  note(type: string, data: Record<string, unknown>): void;
}

const MAX_BATCHES_PER_SLOT = 1000;

/** The slots whose tab is gone (lock free), this tab's excepted. */
export async function orphanSlots(d: Pick<OrphanDrainDeps, 'persistence' | 'clientId' | 'slotLockName' | 'heldNames'>): Promise<StoredOutbox[]> {
  const held = await d.heldNames();
  const slots = await d.persistence.listOutboxes();
  return slots.filter((s) => s.clientId !== d.clientId && !held.has(d.slotLockName(s.clientId)));
}

export async function drainOrphans(d: OrphanDrainDeps): Promise<void> {
  if (!d.mayDrain()) return;
  let slots: StoredOutbox[];
  try {
    slots = await orphanSlots(d);
  } catch {
    return;
  }
  for (const s of slots) {
    if (s.outbox.entries.length === 0 || !d.mayDrain()) continue;
    const lock = await d.tryAcquire(d.slotLockName(s.clientId));
    if (!lock) continue;
    try {
      const fresh = await d.persistence.readOutbox(s.clientId);
      if (!fresh || fresh.outbox.entries.length === 0) continue;
      const temp = d.engineFor(fresh);
      try {
        temp.setTransportReady(true);
        for (let round = 0; round < MAX_BATCHES_PER_SLOT; round++) {
          const body = temp.takeBatch();
          if (!body) break;
          temp.receiveFrames([await d.post(body)]);
          const p = temp.takePersistence();
          if (p.outbox) await d.persistence.writeOutbox(s.clientId, p.outbox);
        }
        d.note('adopted_outbox', { clientId: s.clientId });
      } finally {
        temp.dispose();
      }
    } catch {
      /* tried again on the next round */
    } finally {
      lock.release();
    }
  }
}
