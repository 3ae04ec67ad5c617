// Layer: js-wrapper. Fills the replica from a snapshot (one request at a time; callers share it).
// Invariant: a snapshot never takes back what the stream delivered after it was fetched
// (docs/decisions/0002-a-late-snapshot-never-rolls-back-the-stream.md).
import type { EngineOutput, SyncDocument } from '../engine.js';

export interface SnapshotLoaderDeps {
  engine(): {
    cursor(): number;
    applySnapshot(s: { collections: string[]; docs: SyncDocument[]; seq: number }): EngineOutput;
  };
  fetch(): Promise<{ docs: SyncDocument[]; seq: number }>;
  collections: readonly string[];
  /** True while this tab's own stream moves the replica. */
  ownsConnection(): boolean;
  isClosed(): boolean;
  /** The snapshot was applied at the engine's new cursor. */
  applied(out: EngineOutput): void;
  note(type: string, data: Record<string, unknown>): void;
}

export class SnapshotLoader {
  private loading: Promise<void> | null = null;

  constructor(private readonly deps: SnapshotLoaderDeps) {}

  load(): Promise<void> {
    if (!this.loading) this.loading = this.run().finally(() => (this.loading = null));
    return this.loading;
  }

  private async run(): Promise<void> {
    const d = this.deps;
    const cursorAtFetch = d.engine().cursor();
    const snap = await d.fetch();
    if (d.isClosed()) return;
    if (d.ownsConnection() && d.engine().cursor() !== cursorAtFetch) {
      // Fetched as a follower, to fill its gap; meanwhile this tab took the stream, which
      // resumed from the replica's cursor and moved it on: the gap is filled, and this older
      // state would take back what the stream delivered since.
      d.note('snapshot_skipped', { seq: snap.seq, cursor: d.engine().cursor() });
      return;
    }
    d.applied(d.engine().applySnapshot({ collections: [...d.collections], docs: snap.docs, seq: snap.seq }));
  }
}
