// Layer: js-wrapper. The request/response side of the protocol (docs/protocol.md): snapshots,
// mutation batches, custom events. Server errors become SyncError with the server's code.
import type { SyncDocument } from './engine.js';
import { corsError, corsProbeFor } from './cors.js';
import { ERROR_CODE_HTTP_STATUS, ERROR_CODES, type ErrorCode } from './error-codes.js';
import { fromWire, SyncError } from './errors.js';

export interface HttpContext {
  baseUrl: string;
  token: () => Promise<string | null>;
  signal?: AbortSignal;
}

/** No request may hang the send loop: each one gives up after this long. */
export const REQUEST_TIMEOUT_MS = 15000;

function timeoutSignal(ms: number, outer?: AbortSignal): AbortSignal {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new DOMException('request timed out', 'TimeoutError')), ms);
  const stop = () => clearTimeout(timer);
  ctrl.signal.addEventListener('abort', stop, { once: true });
  if (outer) {
    if (outer.aborted) ctrl.abort(outer.reason);
    else outer.addEventListener('abort', () => ctrl.abort(outer.reason), { once: true });
  }
  return ctrl.signal;
}

async function request(ctx: HttpContext, method: string, path: string, body?: string): Promise<unknown> {
  const headers: Record<string, string> = {};
  const token = await ctx.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  const signal = timeoutSignal(REQUEST_TIMEOUT_MS, ctx.signal);
  try {
    const init: RequestInit = { method, headers, cache: 'no-store', signal };
    if (body !== undefined) init.body = body;
    res = await fetch(ctx.baseUrl.replace(/\/$/, '') + path, init);
  } catch (e) {
    // No HTTP answer the page may see: the server is down, or it refused this origin (CORS).
    if (e instanceof TypeError && !signal.aborted && (await corsProbeFor(ctx.baseUrl).refused())) throw corsError(ctx.baseUrl, e);
    throw new SyncError('network', `${method} ${path} failed: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  const text = await res.text().catch(() => '');
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
    const opts: { status: number; field?: string } = { status: res.status };
    if (err?.field) opts.field = err.field;
    const message = err?.message ?? `${method} ${path}: HTTP ${res.status}`;
    throw err?.code ? fromWire(err.code, message, opts) : new SyncError(codeForStatus(res.status), message, opts);
  }
  return json;
}

/** The code of an error answer without a body (a proxy's, say): the one registered code with
 * that status, else `invalid_request` for a 4xx, `unavailable` for a gateway's 502/504, `internal`. */
function codeForStatus(status: number): ErrorCode {
  const only = ERROR_CODES.filter((c) => ERROR_CODE_HTTP_STATUS[c] === status);
  if (only.length === 1) return only[0]!;
  if (status < 500) return 'invalid_request';
  return status === 502 || status === 504 ? 'unavailable' : 'internal';
}

export interface SnapshotResult {
  seq: number;
  docs: SyncDocument[];
}

/** Reads every page of the snapshot. The first page's seq is the resume point: later pages
 * may be newer, which is harmless because replaying older changes is a no-op. */
export async function fetchSnapshot(ctx: HttpContext, collections: string[], where?: string): Promise<SnapshotResult> {
  const docs: SyncDocument[] = [];
  let seq: number | null = null;
  let after: string | null = null;
  for (let page = 0; page < 100000; page++) {
    // The largest page the protocol allows (docs/protocol.md): a replica of 50,000 documents
    // is 10 round trips, not 50.
    const q = new URLSearchParams({ collections: collections.join(','), limit: '5000' });
    if (where) q.set('where', where);
    if (after) q.set('after', after);
    const r = (await request(ctx, 'GET', `/v1/snapshot?${q}`)) as { seq: number; docs: SyncDocument[]; next: string | null };
    if (seq === null) seq = r.seq;
    docs.push(...r.docs);
    if (!r.next) break;
    after = r.next;
  }
  return { seq: seq ?? 0, docs };
}

export async function postMutations(ctx: HttpContext, body: string): Promise<string> {
  const r = await request(ctx, 'POST', '/v1/mutations', body);
  return JSON.stringify({ type: 'results', ...(r as object) });
}

export async function postEvent(ctx: HttpContext, body: object): Promise<{ seq: number }> {
  return (await request(ctx, 'POST', '/v1/events', JSON.stringify(body))) as { seq: number };
}

/** The round-trip probe of a client whose stream cannot carry it (SSE): protocol revision 1.2. */
export async function pingServer(ctx: HttpContext): Promise<void> {
  await request(ctx, 'GET', '/v1/ping');
}
