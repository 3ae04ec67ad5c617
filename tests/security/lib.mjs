// Shared helpers for the security suites (tests/security): seeded PRNG, token forgery, raw
// WebSocket handshakes that keep the close code / refusal status, percentiles, raw HTTP over
// net.connect (the request target sent byte for byte), requests on a fresh TCP connection,
// stalled SSE readers, and the server process's memory / CPU from /proc.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
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

// Splits a raw HTTP/1.1 response (status line, headers, body by Content-Length when given).
export function parseRawResponse(buf, error) {
  const out = { status: 0, headers: {}, body: '', json: undefined, error, bytes: buf.length };
  const sep = buf.indexOf('\r\n\r\n');
  if (sep < 0) {
    out.body = buf.toString('utf8');
    return out;
  }
  const lines = buf.subarray(0, sep).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  out.status = m ? Number(m[1]) : 0;
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) out.headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  let body = buf.subarray(sep + 4);
  const len = Number(out.headers['content-length']);
  if (Number.isFinite(len) && body.length > len) body = body.subarray(0, len);
  out.body = body.toString('utf8');
  try {
    out.json = JSON.parse(out.body);
  } catch {
    /* not JSON */
  }
  return out;
}

// One request over a new TCP connection, the target sent exactly as given (no normalisation
// of `//`, `..` or percent escapes, unlike fetch / http.request). Reads until the server closes
// (Connection: close) or `timeout` ms; `error` names a reset or the timeout.
export function rawHttp(server, target, { method = 'GET', headers = {}, body, timeout = 5000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(server.port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(parseRawResponse(Buffer.concat(chunks), error));
    };
    const timer = setTimeout(() => finish('timeout'), timeout);
    sock.on('connect', () => {
      let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\n`;
      for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
      if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
      sock.write(head + '\r\n' + (body ?? ''));
    });
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', (e) => finish(e.code || e.message));
  });
}

// A request on its own TCP connection (agent: false), so every call comes from a new source
// port. Resolves { status, headers, text, json, ms }.
export function freshRequest(server, method, path, { headers = {}, body, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const h = { ...headers };
    if (body !== undefined) {
      h['content-type'] ??= 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request(`${server.url}${path}`, { method, headers: h, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms: performance.now() - t0 });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`timeout after ${timeout} ms: ${method} ${path}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// GET /v1/health on a fresh connection; { ms, status } (status 0 and the error on failure).
export async function timedHealth(server, timeout = 10000) {
  const t0 = performance.now();
  try {
    const r = await freshRequest(server, 'GET', '/v1/health', { timeout });
    return { ms: r.ms, status: r.status };
  } catch (e) {
    return { ms: performance.now() - t0, status: 0, error: e.message };
  }
}

// Polls /v1/health every `everyMs` until stop(); returns the samples.
export function healthProbe(server, everyMs = 200) {
  const samples = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      samples.push(await timedHealth(server));
      if (!stopped) await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

// An SSE stream that never reads: the request goes out over a raw socket, the first chunk (the
// response head) is looked at, then the socket is paused, so the kernel's receive buffer fills
// and the server's queue has to hold the rest. Resolves { sock, status, head }.
export function stalledSse(server, path, { timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, '127.0.0.1');
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`stalled SSE: no response head within ${timeout} ms`));
    }, timeout);
    sock.on('error', () => {});
    sock.on('connect', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    sock.once('data', (chunk) => {
      sock.pause();
      clearTimeout(timer);
      const head = chunk.toString('latin1', 0, Math.min(chunk.length, 512));
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({ sock, status: m ? Number(m[1]) : 0, head });
    });
    sock.on('close', () => {
      clearTimeout(timer);
      reject(new Error('stalled SSE: closed before any response'));
    });
  });
}

// The process's resident memory now and its peak (VmRSS / VmHWM from /proc/<pid>/status), MiB.
export function procMemory(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s) || [])[1] || 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

let clkTck;
// CPU time (user + system) the process has used so far, ms (/proc/<pid>/stat utime + stime).
export function procCpuMs(pid) {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": f[0] is field 3 (state); utime and stime are fields 14 and 15.
  return ((Number(f[11]) + Number(f[12])) * 1000) / clkTck;
}

// Number of open file descriptors of the process.
export function procFdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

// Samples procMemory every `everyMs` until stop(); returns { peakRss, last, samples }.
export function memorySampler(pid, everyMs = 100) {
  let peakRss = 0;
  let last;
  let n = 0;
  const tick = () => {
    try {
      last = procMemory(pid);
      peakRss = Math.max(peakRss, last.rss);
      n++;
    } catch {
      /* exited */
    }
  };
  tick();
  const t = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(t);
      tick();
      return { peakRss, last, samples: n };
    },
  };
}

// Counts the server's log lines with the given "msg".
export function countLog(server, msg) {
  const needle = `"msg":${JSON.stringify(msg)}`;
  let n = 0;
  for (const l of server.logs) if (l.includes(needle)) n++;
  return n;
}
