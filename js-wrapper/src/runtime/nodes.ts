// Layer: js-wrapper. The server nodes a client may talk to (createClient's `url`: one URL, or
// several nodes of one cluster sharing one database and one seq space) and the one in use.
// Invariants:
//  - every request and every stream attempt goes to one node, the current one when it starts
//    (or the node it is pinned to: a stream's latency probe goes to the stream's node);
//  - a node that fails (no answer the page may see, a timeout, a 5xx such as the 503 of a node
//    shutting down, a stream that failed to open or dropped) hands over to the next node in the
//    list, round robin: the node that just failed is tried again only after every other one;
//  - only a failure of the current node moves the ring: requests still in flight to a node the
//    ring already left fail too, and must not skip the next node without it being tried;
//  - nothing moves while the browser is offline, or for a request this client aborted itself.
// Nothing here is node-specific state of the replica: a cursor or a mid from one node is valid on
// any other (the protocol's guarantee for a cluster), so a resume or a retried write on the next
// node carries the same cursor and the same client id + mid.
//
//   const nodes = new NodeRing(nodeUrls(options.url), { online: () => navigator.onLine });
//   await nodes.run((url) => postMutations({ ...ctx, baseUrl: url }, body));  // moves on failure
//   nodes.failed(streamUrl, 'stream_closed');                                 // the stream's node

/** The node list of a `url` option (validated by validateOptions): as given, in order. */
export function nodeUrls(url: string | readonly string[]): string[] {
  return typeof url === 'string' ? [url] : [...url];
}

/** A node's URL compared without a trailing slash (`http://a/` and `http://a` are one node). */
export function sameNode(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

/** True when `error` says the node is unusable now, so the next attempt should go elsewhere:
 * no HTTP answer (network, cors, a timeout) or a 5xx. Not an abort this client caused (it went
 * offline or gave up on the stream's requests), and not a 4xx (the node answered). */
export function isNodeFailure(error: unknown): boolean {
  const e = error as { code?: unknown; status?: unknown; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.status === 'number') return e.status >= 500;
  if (e.code !== 'network' && e.code !== 'cors') return false;
  const cause = e.cause as { name?: unknown } | null | undefined;
  return cause?.name !== 'AbortError';
}

/** What a request's failure is called in the `node` history entry: `HTTP 503`, `network`, ... */
function failureReason(e: unknown): string {
  const { code: name, status } = e as { code?: string; status?: number };
  if (typeof status === 'number') return `HTTP ${status}`;
  return typeof name === 'string' ? name : 'request failed';
}

export interface NodeRingOptions {
  /** While false, failures move nothing (every node looks down offline). */
  online?: () => boolean;
  /** The current node changed (status.node follows). */
  onChange?: (to: string, from: string, reason: string) => void;
}

export class NodeRing {
  readonly urls: readonly string[];
  private index = 0;

  constructor(urls: readonly string[], private readonly options: NodeRingOptions = {}) {
    if (urls.length === 0) throw new Error('NodeRing needs at least one URL');
    this.urls = Object.freeze([...urls]);
  }

  /** Where the next request or stream attempt goes. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /** `url` failed for `reason`. When it is the current node, another one exists and the
   * browser is online, the next node becomes current; returns whether it moved. */
  failed(url: string, reason = 'failed'): boolean {
    if (this.urls.length < 2 || !sameNode(url, this.current)) return false;
    if (this.options.online && !this.options.online()) return false;
    const from = this.current;
    this.index = (this.index + 1) % this.urls.length;
    this.options.onChange?.(this.current, from, reason);
    return true;
  }

  /** Runs one request against a node (`pinned`, else the current one). A failure that says the
   * node is unusable (isNodeFailure) moves the ring on before the error is rethrown, so the
   * caller's retry (the send loop's, the stream's, a snapshot's) goes to the next node. */
  async run<T>(request: (url: string) => Promise<T>, pinned?: string): Promise<T> {
    const url = pinned ?? this.current;
    try {
      return await request(url);
    } catch (e) {
      if (isNodeFailure(e)) this.failed(url, failureReason(e));
      throw e;
    }
  }
}
