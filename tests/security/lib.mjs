// Shared helpers for the security suites (tests/security): seeded PRNG, token forgery, raw
// WebSocket handshakes that keep the close code / refusal status, percentiles.
import { createHmac } from 'node:crypto';
import { SECRET, WebSocket, query } from '../server/helpers.mjs';

export const LONG = process.env.SECURITY_LONG === '1';

// mulberry32: small, fast, good enough for test-case generation; same seed -> same run.
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
  };
}

export const b64url = (buf) =>
  Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

// Signs an arbitrary header/payload pair (to forge tokens the helpers' makeToken cannot make).
export function signRaw(header, payload, secret = SECRET) {
  const head = b64url(typeof header === 'string' ? header : JSON.stringify(header));
  const body = b64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const sig = b64url(createHmac('sha256', secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

export const nowS = () => Math.floor(Date.now() / 1000);

export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// Opens GET /v1/ws and reports everything observable: the HTTP refusal (status + body) if the
// upgrade is refused, else every JSON frame and the close code/reason.
export function rawWs(server, { params = {}, origin, headers = {} } = {}) {
  const url = `ws://127.0.0.1:${server.port}/v1/ws${query(params)}`;
  const ws = new WebSocket(url, { headers, ...(origin !== undefined ? { origin } : {}) });
  const out = { ws, messages: [], opened: false, status: 0, body: '', close: null };
  const waiters = new Set();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  out.done = new Promise((res) => {
    ws.on('open', () => {
      out.opened = true;
      wake();
    });
    ws.on('message', (d) => {
      try {
        out.messages.push(JSON.parse(d.toString()));
      } catch {
        out.messages.push({ type: '<unparsable>', raw: d.toString() });
      }
      wake();
    });
    ws.on('unexpected-response', (req, resp) => {
      out.status = resp.statusCode;
      resp.on('data', (c) => (out.body += c));
      resp.on('end', () => {
        try {
          out.json = JSON.parse(out.body);
        } catch {
          /* not json */
        }
        res(out);
        wake();
      });
      resp.on('error', () => res(out));
    });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      out.close = { code, reason: reason.toString(), at: Date.now() };
      res(out);
      wake();
    });
  });
  out.waitFor = (pred, timeout = 5000, what = 'condition') =>
    new Promise((res, rej) => {
      const check = () => {
        if (pred(out)) {
          waiters.delete(check);
          clearTimeout(t);
          res(out);
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        rej(new Error(`ws timeout waiting for ${what}; messages=${JSON.stringify(out.messages).slice(0, 500)} close=${JSON.stringify(out.close)}`));
      }, timeout);
      waiters.add(check);
      check();
    });
  out.send = (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  out.terminate = () => {
    try {
      ws.terminate();
    } catch {
      /* closed */
    }
  };
  return out;
}

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}
