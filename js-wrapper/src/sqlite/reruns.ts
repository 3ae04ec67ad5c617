// Layer: js-wrapper/sqlite, worker side (no browser globals: Node tests run it over an in-memory
// mirror). Applies a change batch and re-runs, in the same request, the page's live statements
// the batch can have changed, so their new answers travel back with the batch's reply: one
// round trip from a write to a refreshed statement.
//
// When more batches already wait in the worker's queue (a burst of server frames), the re-runs
// are left to the last of them, which re-runs for all the changes since the last re-run: a
// statement runs once per burst, not once per batch.
import type { SqlMirror } from './mirror.js';
import { SqlStatementError } from './mirror.js';
import type { ApplyOutput, ChangeSummary, LiveStatement, MirrorRow, QueryOutput, RunFailure } from './protocol.js';

/** `into` and `more` together: rows came or went if they did in either, and every column. */
export function mergeChanges(into: ChangeSummary, more: ChangeSummary): ChangeSummary {
  const out: ChangeSummary = { ...into };
  for (const [table, c] of Object.entries(more)) {
    const had = out[table];
    out[table] = had ? { rows: had.rows || c.rows, columns: [...new Set([...had.columns, ...c.columns])] } : c;
  }
  return out;
}

function failureOf(e: unknown): RunFailure {
  if (e instanceof SqlStatementError) return { code: 'sql_error', message: e.message };
  return { code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

export class BatchApplier {
  /** What batches changed since the live statements last re-ran. */
  private unrun: ChangeSummary = {};

  constructor(private readonly mirror: SqlMirror) {}

  /** `moreWaiting`: another batch is queued behind this one. */
  apply(rows: readonly MirrorRow[], reset: boolean, live: readonly LiveStatement[], moreWaiting: boolean): ApplyOutput {
    const changes = this.mirror.apply(rows, reset);
    this.unrun = mergeChanges(this.unrun, changes);
    const results: Record<number, QueryOutput | RunFailure> = {};
    if (moreWaiting) return { changes, results };
    const since = this.unrun;
    this.unrun = {};
    if (Object.keys(since).length === 0) return { changes, results };
    for (const s of live) {
      try {
        if (this.mirror.mayChange(s.sql, since)) results[s.id] = this.mirror.query(s.sql, s.params);
      } catch (e) {
        results[s.id] = failureOf(e);
      }
    }
    return { changes, results };
  }
}
