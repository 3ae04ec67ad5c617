// Layer: js-wrapper adapters. What earlier versions of this package wrote to storage, read in
// the current shape. Outbox records and history entries were stored with snake_case members
// (`next_mid`, `applied_seq`, `queued_ms`, `at_ms`) before the engine used one casing for what
// it hands to JS; users' IndexedDB and localStorage still hold them. The adapters pass every
// record they read through here, so the runtime only ever sees the current spelling, and the
// next write stores it. Only the spelling changes here: the core checks everything else when
// the record is restored (Engine::restore_json), and reads both spellings itself as well.
import type { HistoryEntry, HistoryState, OutboxEntry, OutboxRecord } from '../engine.js';
import type { StoredOutbox } from './persistence.js';

type Loose = Record<string, unknown>;

/** `value` with each `old` member renamed to `name` (the current one wins when both are there);
 * `value` itself when there is nothing to rename. */
function renamed<T>(value: T, pairs: readonly (readonly [old: string, name: string])[]): T {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  let out: Loose | null = null;
  for (const [old, name] of pairs) {
    const v = value as Loose;
    if (!(old in v)) continue;
    out ??= { ...v };
    if (!(name in v)) out[name] = v[old];
    delete out[old];
  }
  return (out ?? value) as T;
}

/** An outbox record as stored by this or the previous version, in the current spelling. */
export function outboxFromStored(record: OutboxRecord): OutboxRecord {
  const r = renamed(record, [['next_mid', 'nextMid']]);
  if (!r || typeof r !== 'object' || !Array.isArray(r.entries)) return r;
  return { ...r, entries: r.entries.map((e) => renamed<OutboxEntry>(e, [['applied_seq', 'appliedSeq'], ['queued_ms', 'queuedMs']])) };
}

/** A stored tab slot (clientId, outbox record, when it was written) in the current spelling. */
export function slotFromStored(slot: StoredOutbox): StoredOutbox {
  if (!slot || typeof slot !== 'object') return slot;
  return { ...slot, outbox: outboxFromStored(slot.outbox) };
}

/** A stored history in the current spelling (null stays null). */
export function historyFromStored(history: HistoryState | null): HistoryState | null {
  if (!history || typeof history !== 'object' || !Array.isArray(history.entries)) return history;
  return { ...history, entries: history.entries.map((e) => renamed<HistoryEntry>(e, [['at_ms', 'atMs']])) };
}
