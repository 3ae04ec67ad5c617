// Layer: tests/chaos. A minimal WHATWG EventSource for Node 20 (which has none), so Node chaos
// clients can run the runtime's SSE transport (and with it the HTTP POST /v1/mutations path).
// Only what the runtime uses: onopen, addEventListener(type) for named events, an `error`
// event (a plain Event on connection failure, a MessageEvent for a server-sent `event: error`),
// readyState and close(). It never reconnects by itself: the runtime closes it on error and
// opens a new one on the core's schedule.
import http from 'node:http';

export class NodeEventSource extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  constructor(url) {
    super();
    this.url = String(url);
    this.readyState = 0;
    this.onopen = null;
    this.onerror = null;
    this.onmessage = null;
    this.req = http.get(this.url, { headers: { accept: 'text/event-stream', 'cache-control': 'no-cache' } }, (res) => {
      if (this.readyState === 2) return res.destroy();
      if (res.statusCode !== 200 || !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        res.resume();
        return this.#fail();
      }
      this.readyState = 1;
      this.headers = res.headers; // not in the WHATWG API: for lib/stream-record.mjs
      const ev = new Event('open');
      this.onopen?.(ev);
      this.dispatchEvent(ev);
      res.setEncoding('utf8');
      let buf = '';
      let type = '';
      let data = [];
      let lastId = '';
      res.on('data', (chunk) => {
        if (this.readyState === 2) return;
        buf += chunk;
        let nl;
        while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (data.length) {
              const msg = new MessageEvent(type || 'message', { data: data.join('\n'), lastEventId: lastId });
              if (!type || type === 'message') this.onmessage?.(msg);
              if (type === 'error') this.onerror?.(msg);
              this.dispatchEvent(msg);
            }
            type = '';
            data = [];
            continue;
          }
          if (line.startsWith(':')) continue;
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let value = c < 0 ? '' : line.slice(c + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'event') type = value;
          else if (field === 'data') data.push(value);
          else if (field === 'id') lastId = value;
        }
      });
      res.on('end', () => this.#fail());
      res.on('error', () => this.#fail());
      res.on('close', () => this.#fail());
    });
    this.req.on('error', () => this.#fail());
  }

  #fail() {
    if (this.readyState === 2) return;
    this.readyState = 2;
    const ev = new Event('error');
    this.onerror?.(ev);
    this.dispatchEvent(ev);
    this.req.destroy();
  }

  close() {
    this.readyState = 2;
    this.req.destroy();
  }
}
