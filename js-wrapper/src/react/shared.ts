// Layer: js-wrapper/react (internal). Small pure helpers shared by the hooks. No React state,
// no browser globals: importing this module has no side effects.
import { SyncError } from '../errors.js';
import type { AggregateResult, SyncDocument } from '../engine.js';

/** Normalises anything thrown by the client into a SyncError, so hooks can expose it as state. */
export function toSyncError(error: unknown): SyncError {
  if (error instanceof SyncError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new SyncError('internal', message, { cause: error });
}

export const EMPTY_DOCS: readonly SyncDocument<never>[] = Object.freeze([]);

export const EMPTY_AGGREGATE: AggregateResult = Object.freeze({
  groups: Object.freeze({}) as AggregateResult['groups'],
  total: Object.freeze({ count: 0, sum: 0 }),
}) as AggregateResult;

export const noopUnsubscribe = (): void => {};

/** A stable key for an optional list option, so inline arrays don't look like a new value. */
export function listKey(list: readonly string[] | string | undefined): string | undefined {
  if (list === undefined) return undefined;
  return typeof list === 'string' ? list : list.join('\u0000');
}

export function keyToList(key: string | undefined): readonly string[] | undefined {
  return key === undefined ? undefined : key.split('\u0000');
}

export function shallowEqualRecords(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean {
  if (a === b) return true;
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !Object.is(a[k], b[k])) return false;
  }
  return true;
}

export function sameErrorInfo(
  a: { code: string; message: string } | null,
  b: { code: string; message: string } | null,
): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return a.code === b.code && a.message === b.message;
}
