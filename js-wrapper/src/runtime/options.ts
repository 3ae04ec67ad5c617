// Layer: js-wrapper. What createClient accepts, checked before anything is loaded, and the
// small facts about the page the runtime reads (the token's subject, whether the browser is online).
import { SyncError } from '../errors.js';
import { COLLECTION_RE } from '../writes.js';
import type { ClientOptions } from '../types.js';
import { sameNode } from './nodes.js';

export function validateOptions(o: ClientOptions): void {
  if (!o || typeof o !== 'object') throw new SyncError('invalid_options', 'options must be an object');
  validateUrl(o.url);
  if (!Array.isArray(o.collections) || o.collections.length === 0) {
    throw new SyncError('invalid_options', 'collections must list at least one collection', { field: 'collections' });
  }
  o.collections.forEach((c, i) => {
    if (typeof c !== 'string' || !COLLECTION_RE.test(c)) {
      throw new SyncError('invalid_options', `collection name "${c}" is not valid`, { field: `collections[${i}]` });
    }
  });
  if (o.where !== undefined && o.where !== null && typeof o.where !== 'string') {
    throw new SyncError('invalid_options', 'where must be a filter string', { field: 'where' });
  }
  if (o.transport && o.transport !== 'sse' && o.transport !== 'websocket') {
    throw new SyncError('invalid_options', 'transport must be "sse" or "websocket"', { field: 'transport' });
  }
  if (o.persistence && !['indexeddb', 'localstorage', 'memory'].includes(o.persistence)) {
    throw new SyncError('invalid_options', 'persistence must be indexeddb, localstorage or memory', { field: 'persistence' });
  }
  if (o.token !== undefined && o.token !== null && typeof o.token !== 'string' && typeof o.token !== 'function') {
    throw new SyncError('invalid_options', 'token must be a string or a function returning one', { field: 'token' });
  }
}

function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string' || !/^https?:\/\/[^/?#]/i.test(v)) return false;
  try {
    new URL(v);
    return true;
  } catch {
    return false;
  }
}

/** `url`: one http(s) URL, or a non-empty list of them (nodes of one cluster), each distinct. */
function validateUrl(url: unknown): void {
  if (typeof url === 'string') {
    if (!isHttpUrl(url)) throw new SyncError('invalid_options', 'url must be an http(s) URL', { field: 'url' });
    return;
  }
  if (!Array.isArray(url)) {
    throw new SyncError('invalid_options', 'url must be an http(s) URL or a list of them', { field: 'url' });
  }
  if (url.length === 0) throw new SyncError('invalid_options', 'url must list at least one server URL', { field: 'url' });
  url.forEach((u: unknown, i) => {
    if (!isHttpUrl(u)) throw new SyncError('invalid_options', `url[${i}] must be an http(s) URL`, { field: `url[${i}]` });
    const first = url.findIndex((v: string) => sameNode(v, u));
    if (first !== i) throw new SyncError('invalid_options', `url[${i}] repeats url[${first}]`, { field: `url[${i}]` });
  });
}

/** The `sub` claim of a JWT, without verifying it: it only names this user's local database. */
export function tokenSubject(token: string | undefined): string {
  if (!token) return 'anonymous';
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: string };
    return json.sub ?? 'anonymous';
  } catch {
    return 'anonymous';
  }
}

export function isBrowserOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine ?? true;
}

/** The token for the next request: a function is asked every time, so it can refresh. */
export async function currentToken(token: ClientOptions['token']): Promise<string | null> {
  if (!token) return null;
  return typeof token === 'string' ? token : await token();
}
