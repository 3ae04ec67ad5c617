// Layer: js-wrapper/sqlite (pure, no imports but types). Whether a change batch can change a
// statement's answer, from what SQLite's authorizer said the statement reads. Used by the
// worker (mirror.ts, reruns.ts) to re-run only the live statements a batch can change.
//
// Sound because the statements are read-only and deterministic: if no row of a table it reads
// appeared or went, and no column it reads changed value in any row, it would read exactly the
// same values and give the same answer. The exceptions are functions whose answer changes by
// itself (random()); such a statement re-runs on any change of its tables. Time is not one of
// the inputs: a statement using 'now' follows changes of its tables, not the clock.
import type { ChangeSummary } from './protocol.js';

export interface StatementReads {
  readonly reads: Readonly<Record<string, readonly string[]>>;
  readonly volatile: boolean;
}

/** Functions that answer differently on each call (SQLite's own non-deterministic ones that a
 * read-only statement can call). */
export const VOLATILE_FUNCTIONS: ReadonlySet<string> = new Set(['random', 'randomblob', 'changes', 'total_changes', 'last_insert_rowid']);

export function mayChange(statement: StatementReads, batch: ChangeSummary): boolean {
  for (const [table, columns] of Object.entries(statement.reads)) {
    const change = batch[table];
    if (!change) continue;
    if (change.rows || statement.volatile) return true;
    for (const c of change.columns) if (columns.includes(c)) return true;
  }
  return false;
}
