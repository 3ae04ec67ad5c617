// Layer: js-wrapper (TypeScript API). Field operations: markers an app puts in a patch where a
// value would go, applied by the server at commit (so concurrent ones all count) and replayed by
// the engine on the newest base in the optimistic view. Pure: no engine, no browser API.
//
//   import { increment, serverTime } from 'syncline';
//   products.update(id, { stock: increment(-1, { min: 0 }), sold_at: serverTime() });
//
// The write path (writes.ts) splits the markers out of `fields` into the wire's `ops` member
// (docs/protocol.md): { "stock": { "increment": -1, "min": 0 }, "sold_at": { "serverTime": true } }.
import { SyncError } from './errors.js';

// Symbol.for, not Symbol(): two copies of the package in one bundle still know each other's markers.
const FIELD_OP: unique symbol = Symbol.for('syncline.fieldOp');

/** Adds `by` to the field's committed value (absent or null counts as 0); see increment(). */
export interface Increment {
  readonly [FIELD_OP]: true;
  readonly kind: 'increment';
  readonly by: number;
  readonly min?: number;
  readonly max?: number;
}

/** Sets the field to the commit's time on the server (ms since epoch); see serverTime(). */
export interface ServerTime {
  readonly [FIELD_OP]: true;
  readonly kind: 'serverTime';
}

export type FieldOperation = Increment | ServerTime;

/** Bounds of an increment: a result outside them refuses the write with `constraint`. */
export interface IncrementBounds {
  min?: number;
  max?: number;
}

/** A field operation as the wire carries it. */
export interface WireFieldOp {
  increment?: number;
  min?: number;
  max?: number;
  serverTime?: true;
}

// A marker that reaches JSON.stringify was not split out: it sits inside a nested object or an
// array, where the protocol has no operations. Failing there keeps it from being sent as data.
function misplaced(this: FieldOperation, key: string): never {
  throw new SyncError('invalid_mutation', `${this.kind} applies to a top-level field of a patch, not inside a value`, {
    field: key ? `fields.${key}` : 'fields',
  });
}

function marker<T extends FieldOperation>(body: Omit<T, typeof FIELD_OP>): T {
  const m = { ...body, [FIELD_OP]: true } as T;
  Object.defineProperty(m, 'toJSON', { value: misplaced });
  return Object.freeze(m);
}

/**
 * Adds `by` (negative to subtract) to a number field when the server commits the write, to the
 * value it has then: two clients that each sell one item take stock down by two. With bounds, a
 * result below `min` or above `max` refuses the write with `constraint` (stock never goes below
 * 0). The local view shows the increment applied to the newest known value until the server
 * answers. Integers stay exact (64-bit); a fraction on either side makes a double.
 *
 *   products.update(id, { stock: increment(-qty, { min: 0 }) });
 */
export function increment(by: number, bounds: IncrementBounds = {}): Increment {
  const body: { kind: 'increment'; by: number; min?: number; max?: number } = { kind: 'increment', by };
  if (bounds && bounds.min !== undefined) body.min = bounds.min;
  if (bounds && bounds.max !== undefined) body.max = bounds.max;
  return marker<Increment>(body);
}

/**
 * The server's clock at commit, in ms since epoch: one time source for every client, in commit
 * order. The local view shows this device's time until the server's value arrives.
 *
 *   bills.update(id, { status: 'paid', paid_at: serverTime() });
 */
export function serverTime(): ServerTime {
  return marker<ServerTime>({ kind: 'serverTime' });
}

export function isFieldOperation(v: unknown): v is FieldOperation {
  return typeof v === 'object' && v !== null && (v as { [FIELD_OP]?: unknown })[FIELD_OP] === true;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function wireOp(name: string, m: FieldOperation): WireFieldOp {
  const field = `ops.${name}`;
  if (m.kind === 'serverTime') return { serverTime: true };
  if (m.kind !== 'increment') throw new SyncError('invalid_mutation', `unknown field operation on "${name}"`, { field });
  if (!finite(m.by)) throw new SyncError('invalid_mutation', `increment of "${name}" must be a finite number, not ${String(m.by)}`, { field });
  const op: WireFieldOp = { increment: m.by };
  for (const bound of ['min', 'max'] as const) {
    const b = m[bound];
    if (b === undefined) continue;
    if (!finite(b)) throw new SyncError('invalid_mutation', `${bound} of the increment of "${name}" must be a finite number, not ${String(b)}`, { field });
    op[bound] = b;
  }
  if (op.min !== undefined && op.max !== undefined && op.min > op.max) {
    throw new SyncError('invalid_mutation', `increment of "${name}": min ${op.min} is above max ${op.max}`, { field });
  }
  return op;
}

/**
 * Splits the field-operation markers out of an insert's fields or an update's patch. Returns the
 * input object itself when it holds none (the common case costs one pass over its keys).
 * Throws SyncError('invalid_mutation') naming the field for a malformed operation.
 */
export function splitFieldOps(fields: Record<string, unknown>): { fields: Record<string, unknown>; ops?: Record<string, WireFieldOp> } {
  let ops: Record<string, WireFieldOp> | undefined;
  let rest: Record<string, unknown> | undefined;
  for (const name of Object.keys(fields)) {
    const v = fields[name];
    if (!isFieldOperation(v)) continue;
    if (!ops) {
      ops = {};
      rest = { ...fields };
    }
    ops[name] = wireOp(name, v);
    delete rest![name];
  }
  return ops ? { fields: rest!, ops } : { fields };
}

/** A delete names no fields: an operation among its options is a mistake worth reporting. */
export function assertNoFieldOps(options: object | undefined): void {
  if (!options || typeof options !== 'object') return;
  for (const [k, v] of Object.entries(options)) {
    if (isFieldOperation(v)) throw new SyncError('invalid_mutation', `a delete takes no field operations ("${k}")`, { field: `ops.${k}` });
  }
}
