// Peer for benchmark 3: a Node server doing the same fan-out as syncline-server, the way a
// Node team would write it: plain `http` for SSE and POST /v1/mutations, `ws` for WebSocket.
// Each committed change is serialised once per transport and the same bytes are written to
// every subscriber. No auth, no rules, no storage (in-memory seq only): this favours the peer.
// Usage: node node-fanout-server.mjs  -> prints {"msg":"listening","port":N}; SIGTERM stops it.
import http from 'node:http';
import { WebSocketServer } from 'ws';

let seq = 0;
const sse = new Set();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const sockets = new Set();

function broadcast(change) {
  const json = JSON.stringify(change);
  const sseBytes = Buffer.from(`id: ${change.seq}\nevent: change\ndata: ${json}\n\n`);
  const wsBytes = Buffer.from('{"type":"change",' + json.slice(1));
  for (const res of sse) res.write(sseBytes);
  for (const ws of sockets) ws.send(wsBytes, { binary: false });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/v1/mutations') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"invalid_json","message":"bad body"}}');
        return;
      }
      const results = [];
      for (const m of body.mutations ?? []) {
        seq += 1;
        broadcast({ seq, collection: m.collection, id: m.id, op: m.op, version: seq, fields: m.fields ?? {}, origin: { client: body.client, mid: m.mid } });
        results.push({ mid: m.mid, status: 'applied', seq });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ seq, results }));
    });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/v1/events') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(`event: hello\ndata: {"seq":${seq}}\n\n`);
    req.socket.setNoDelay(true);
    sse.add(res);
    const drop = () => sse.delete(res);
    req.on('close', drop);
    res.on('error', drop);
    return;
  }
  if (url.pathname === '/v1/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', seq }));
    return;
  }
  res.writeHead(404);
  res.end();
});
server.keepAliveTimeout = 60000;
server.on('upgrade', (req, socket, head) => {
  if (!req.url.startsWith('/v1/ws')) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    socket.setNoDelay(true);
    sockets.add(ws);
    ws.send(JSON.stringify({ type: 'hello', seq }));
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', () => sockets.delete(ws));
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'listening', port: server.address().port }));
});
const stop = () => {
  for (const ws of sockets) ws.terminate();
  for (const res of sse) res.destroy();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
