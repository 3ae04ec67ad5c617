// roles.ts: what a tab does as StreamOwner (single/leader) or Follower. Fake host, stream,
// follower sync and writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { StreamOwner, Follower } = await import(dist('runtime/roles.js'));
const { AuthGate } = await import(dist('runtime/auth-gate.js'));

const SUB = { collections: ['bills'], where: '' };

function host({ sub = SUB, lastSync = null } = {}) {
  const h = {
    clientId: 'tab-1',
    auth: new AuthGate(),
    posts: [], calls: [], tasks: [], ready: [],
    lastSyncValue: lastSync,
    engine: () => ({ setTransportReady: (r) => h.ready.push(r) }),
    post: (m) => h.posts.push(m),
    writer: { leaderStoredThrough: (c) => h.calls.push(['leaderStoredThrough', c]) },
    follower: {
      frames: (frames, s) => h.calls.push(['frames', frames, s]),
      caughtUp: (m) => h.calls.push(['caughtUp', m]),
      catchUp: (snapshot) => {
        h.calls.push(['catchUp', snapshot]);
        return Promise.resolve();
      },
    },
    recent: { since: (cursor) => (cursor >= 5 ? ['f6', 'f7'] : null) },
    ownSubscription: () => sub,
    lastSync: () => h.lastSyncValue,
    broadcastStatus: () => h.calls.push(['broadcastStatus']),
    updateStatus: () => h.calls.push(['updateStatus']),
    background: (p) => h.tasks.push(p),
  };
  return h;
}

function stream(state, kind) {
  const s = {
    state, kind, attempt: 1, connectedSince: 50, latencyFigures: { latencyMs: 12, lastLatencyMs: 10 },
    node: state === 'connected' ? 'https://b.example' : null,
    calls: [],
    send: (f) => (s.calls.push(['send', f]), kind === 'websocket'),
    setOnline: (o) => s.calls.push(['setOnline', o]),
    retryNow: () => s.calls.push(['retryNow']),
    stop: () => s.calls.push(['stop']),
  };
  return s;
}

test('StreamOwner.sendRoute: stream over a connected WebSocket, http over connected SSE, wait when not connected', () => {
  assert.equal(new StreamOwner('leader', host(), stream('connected', 'websocket')).sendRoute(), 'stream');
  assert.equal(new StreamOwner('single', host(), stream('connected', 'sse')).sendRoute(), 'http');
  for (const state of ['connecting', 'backing_off', 'disconnected', 'error']) {
    assert.equal(new StreamOwner('leader', host(), stream(state, 'websocket')).sendRoute(), 'wait', state);
  }
});

test('StreamOwner.sendRoute: http when a final token refusal stopped the stream', () => {
  const h = host();
  const owner = new StreamOwner('leader', h, stream('error', 'websocket'));
  h.auth.refused();
  h.auth.refused();
  assert.equal(owner.sendRoute(), 'wait', 'not final yet');
  h.auth.refused();
  assert.equal(owner.sendRoute(), 'http');
});

test('StreamOwner answers a catch-up with its recent frames and subscription, and a hello with its status', () => {
  const h = host();
  const owner = new StreamOwner('leader', h, stream('connected', 'websocket'));
  owner.heard({ t: 'catchUp', from: 'tab-2', id: 4, cursor: 5 });
  owner.heard({ t: 'catchUp', from: 'tab-3', id: 1, cursor: 1 });
  assert.deepEqual(h.posts, [
    { t: 'caughtUp', from: 'tab-1', to: 'tab-2', id: 4, frames: ['f6', 'f7'], sub: SUB },
    { t: 'caughtUp', from: 'tab-1', to: 'tab-3', id: 1, frames: null, sub: SUB },
  ]);
  owner.heard({ t: 'hello', from: 'tab-4' });
  owner.heard({ t: 'beat', from: 'tab-5', stored: 3 });
  assert.deepEqual(h.calls, [['broadcastStatus']]);

  const noSub = host({ sub: null });
  new StreamOwner('leader', noSub, stream('connected', 'sse')).heard({ t: 'catchUp', from: 'tab-2', id: 4, cursor: 9 });
  assert.equal('sub' in noSub.posts[0], false);
});

test('StreamOwner: connection view from its stream; network, retry, frames and dispose go to the stream', () => {
  const h = host({ lastSync: 77 });
  const s = stream('connected', 'websocket');
  const owner = new StreamOwner('single', h, s);
  assert.equal(owner.ownsConnection, true);
  assert.equal(owner.kind, 'single');
  assert.deepEqual(owner.connectionView(), {
    connection: 'connected', isConnected: true, attempt: 1, connectedSince: 50, lastSync: 77, latencyMs: 12, lastLatencyMs: 10,
    node: 'https://b.example',
  });
  assert.equal(owner.sendFrame('{"type":"mutate"}'), true);
  owner.networkChanged(false);
  owner.retryNow();
  owner.forceSync();
  owner.dispose();
  assert.deepEqual(s.calls, [['send', '{"type":"mutate"}'], ['setOnline', false], ['retryNow'], ['retryNow'], ['stop']]);
  assert.equal(new StreamOwner('single', h, stream('backing_off', 'sse')).connectionView().isConnected, false);
});

test('Follower routes messages: frames, caughtUp, status, resnapshot, beats with a stored cursor', async () => {
  const h = host();
  const f = new Follower(h);
  f.heard({ t: 'frames', from: 'L', frames: ['a'], sub: SUB });
  const answer = { t: 'caughtUp', from: 'L', to: 'tab-1', id: 2, frames: ['b'] };
  f.heard(answer);
  f.heard({ t: 'beat', from: 'L', stored: 31 });
  f.heard({ t: 'beat', from: 'L' });
  f.heard({ t: 'beat', from: 'L', stored: 0 });
  f.heard({ t: 'resnapshot', from: 'L' });
  f.heard({ t: 'catchUp', from: 'tab-3', id: 1, cursor: 0 });
  assert.deepEqual(h.calls, [
    ['frames', ['a'], SUB],
    ['caughtUp', answer],
    ['leaderStoredThrough', 31],
    ['catchUp', true],
  ]);
  assert.equal(h.tasks.length, 1);
  assert.deepEqual(h.posts, [], 'a follower answers no catch-up');
});

test('Follower shows the leader\'s reported connection, read strictly, with its own lastSync when it has one', () => {
  const h = host();
  const f = new Follower(h);
  assert.equal(f.connectionView().connection, 'connecting', 'no leader heard yet');
  assert.equal(f.connectionView().isConnected, false);
  assert.equal(f.connectionView().node, null, 'no leader heard yet: the tab shows its own node');
  f.heard({ t: 'status', from: 'L', status: { connection: 'connected', isConnected: true, attempt: 'x', latencyMs: 20, lastSync: 5, node: 'https://b.example' } });
  assert.deepEqual(h.calls, [['updateStatus']]);
  const v = f.connectionView();
  assert.equal(v.connection, 'connected');
  assert.equal(v.isConnected, true);
  assert.equal(v.attempt, 0, 'mistyped: default');
  assert.equal(v.latencyMs, 20);
  assert.equal(v.lastSync, 5, 'the leader\'s when this tab applied nothing');
  assert.equal(v.node, 'https://b.example', 'the node of the leader\'s stream');
  h.lastSyncValue = 9;
  assert.equal(f.connectionView().lastSync, 9);
});

test('Follower sends over HTTP, has no stream, follows the network and catches up on forceSync', () => {
  const h = host();
  const f = new Follower(h);
  assert.equal(f.ownsConnection, false);
  assert.equal(f.kind, 'follower');
  assert.equal(f.sendRoute(), 'http');
  assert.equal(f.sendFrame('{}'), false);
  f.networkChanged(false);
  f.networkChanged(true);
  assert.deepEqual(h.ready, [false, true]);
  f.retryNow();
  assert.deepEqual(h.calls, []);
  f.forceSync();
  assert.deepEqual(h.calls, [['catchUp', undefined]]);
  assert.equal(h.tasks.length, 1);
});
