// LatencyMeter and the probes (latency.ts): the measured round trip of the live connection, driven
// by a fake clock, fake timers and fake probes. Pure, no browser, no server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameProbe, httpProbe, LatencyMeter, ProbeUnsupported, streamProbe } from '../../js-wrapper/dist/latency.js';

/** A manual clock with timers: advance(ms) runs what falls due, in order. */
function fakeTime() {
  let now = 0;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimer: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    pending: () => timers.size,
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        await flush();
      }
      now = end;
      await flush();
    },
  };
}
const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** A probe the test answers by hand: answer() resolves the oldest open one. */
function manualProbe() {
  const open = [];
  const probe = () => new Promise((resolve, reject) => open.push({ resolve, reject }));
  return { probe, open, answer: () => open.shift().resolve(), fail: (e) => open.shift().reject(e) };
}

function meter(time, probe, extra = {}) {
  const seen = [];
  const m = new LatencyMeter({ probe, onChange: (f) => seen.push(f), now: time.now, setTimer: time.setTimer, clearTimer: time.clearTimer, ...extra });
  return { m, seen };
}

test('probes at start and then every interval, one at a time; last sample and smoothed value', async () => {
  const time = fakeTime();
  const p = manualProbe();
  const { m, seen } = meter(time, p.probe, { intervalMs: 15000, smoothing: 0.25 });
  assert.deepEqual(m.figures, { latencyMs: null, lastLatencyMs: null });
  m.start();
  assert.equal(p.open.length, 1, 'probed at once');
  await time.advance(40);
  p.answer();
  await flush();
  assert.deepEqual(m.figures, { latencyMs: 40, lastLatencyMs: 40 }, 'the first sample is the value');
  assert.equal(seen.length, 1);

  await time.advance(14999);
  assert.equal(p.open.length, 0, 'not before the interval');
  await time.advance(1);
  assert.equal(p.open.length, 1, 'next probe after 15 s');
  await time.advance(80);
  p.answer();
  await flush();
  assert.deepEqual(m.figures, { latencyMs: 50, lastLatencyMs: 80 }, '40 + 0.25 * (80 - 40)');

  // A slow answer: the next probe waits for it (never two at once), then the interval.
  await time.advance(15000);
  assert.equal(p.open.length, 1);
  await time.advance(5000);
  assert.equal(p.open.length, 1, 'no second probe while one is out');
  p.answer();
  await flush();
  assert.equal(m.figures.lastLatencyMs, 5000);
  assert.equal(m.figures.latencyMs, Math.round(50 + 0.25 * (5000 - 50)));
  m.stop();
});

test('a probe unanswered within timeoutMs gives no sample; probing goes on', async () => {
  const time = fakeTime();
  const p = manualProbe();
  const { m } = meter(time, p.probe, { intervalMs: 15000, timeoutMs: 10000 });
  m.start();
  await time.advance(10000);
  assert.deepEqual(m.figures, { latencyMs: null, lastLatencyMs: null });
  p.answer(); // too late
  await flush();
  assert.deepEqual(m.figures, { latencyMs: null, lastLatencyMs: null }, 'a late answer is not a sample');
  await time.advance(15000);
  assert.equal(p.open.length, 1, 'probed again');
  await time.advance(12);
  p.answer();
  await flush();
  assert.equal(m.figures.latencyMs, 12);
  m.stop();
});

test('a failed probe gives no sample and the next comes on schedule', async () => {
  const time = fakeTime();
  const p = manualProbe();
  const { m } = meter(time, p.probe);
  m.start();
  p.fail(new Error('network'));
  await flush();
  assert.equal(m.figures.latencyMs, null);
  await time.advance(15000);
  assert.equal(p.open.length, 1);
  m.stop();
});

test('stop() clears the figures (disconnected), drops the probe in flight and the timer; start() measures afresh', async () => {
  const time = fakeTime();
  const p = manualProbe();
  const { m, seen } = meter(time, p.probe);
  m.start();
  await time.advance(30);
  p.answer();
  await flush();
  assert.equal(m.figures.latencyMs, 30);
  await time.advance(15000);
  assert.equal(p.open.length, 1);
  m.stop();
  assert.deepEqual(m.figures, { latencyMs: null, lastLatencyMs: null });
  assert.deepEqual(seen.at(-1), { latencyMs: null, lastLatencyMs: null }, 'told');
  assert.equal(time.pending(), 0, 'no timer left');
  p.answer(); // the old probe's answer
  await flush();
  assert.equal(m.figures.latencyMs, null, 'an answer from before stop() is not a sample');
  await time.advance(60000);
  assert.equal(p.open.length, 0, 'no probes while stopped');

  m.start();
  await time.advance(7);
  p.answer();
  await flush();
  assert.deepEqual(m.figures, { latencyMs: 7, lastLatencyMs: 7 }, 'a new connection starts from its own sample');
  m.stop();
});

test('warmUp: the first answer after start() is not a sample (an HTTP probe may open a connection)', async () => {
  const time = fakeTime();
  const p = manualProbe();
  const { m } = meter(time, p.probe);
  m.start({ warmUp: true });
  await time.advance(300);
  p.answer();
  await flush();
  assert.equal(m.figures.latencyMs, null, 'the warm-up is discarded');
  assert.equal(p.open.length, 1, 'the measured probe follows at once');
  await time.advance(20);
  p.answer();
  await flush();
  assert.deepEqual(m.figures, { latencyMs: 20, lastLatencyMs: 20 });
  m.stop();
});

test('ProbeUnsupported stops probing until the next start()', async () => {
  const time = fakeTime();
  const p = manualProbe();
  const { m } = meter(time, p.probe);
  m.start();
  p.fail(new ProbeUnsupported('old server'));
  await flush();
  await time.advance(60000);
  assert.equal(p.open.length, 0);
  m.start();
  assert.equal(p.open.length, 1);
  m.stop();
});

test('FrameProbe: ping frames with ids, resolved by the matching pong; pongs never reach the engine', async () => {
  const sent = [];
  let open = true;
  const f = new FrameProbe((frame) => (open ? (sent.push(frame), true) : false));
  let done = false;
  const first = f.probe().then(() => (done = true));
  assert.deepEqual(sent, ['{"type":"ping","id":1}']);
  assert.equal(f.receive('{"type":"pong","id":99}'), true, 'a stray pong is consumed');
  await flush();
  assert.equal(done, false, 'not by another id');
  assert.equal(f.receive('{"type":"change","seq":3}'), false, 'other frames go on to the engine');
  assert.equal(f.receive('{"type":"pong","id":1}'), true);
  await first;
  assert.equal(done, true);

  // A new probe supersedes an unanswered one (the meter timed it out).
  const stale = f.probe();
  const fresh = f.probe();
  await assert.rejects(stale);
  f.receive('{"type":"pong","id":3}');
  await fresh;

  open = false;
  await assert.rejects(f.probe(), /not connected/);
});

test("FrameProbe: an older server's error answer marks pings unsupported (and is consumed); reset() on a new connection", async () => {
  const f = new FrameProbe(() => true);
  const p = f.probe();
  const oldAnswer = JSON.stringify({ error: { code: 'invalid_request', message: 'unknown message type "ping"', field: 'type' }, type: 'error' });
  assert.equal(f.receive(oldAnswer), true);
  await assert.rejects(p, ProbeUnsupported);
  assert.equal(f.supported, false);
  await assert.rejects(f.probe(), ProbeUnsupported);
  // Other errors are the engine's.
  const g = new FrameProbe(() => true);
  void g.probe().catch(() => {});
  assert.equal(g.receive(JSON.stringify({ error: { code: 'rate_limited', message: 'too many requests' }, type: 'error' })), false);
  f.reset();
  assert.equal(f.supported, true);
});

test('streamProbe: frames while supported, else HTTP; httpProbe maps 404/405 to ProbeUnsupported', async () => {
  const calls = [];
  const frames = new FrameProbe(() => true);
  const http = async () => calls.push('http');
  const probe = streamProbe(() => frames, http);
  const p1 = probe();
  await flush();
  frames.receive('{"type":"pong","id":1}');
  await p1;
  assert.deepEqual(calls, [], 'answered by a pong');
  const p2 = probe();
  await flush();
  frames.receive(JSON.stringify({ error: { code: 'invalid_request', message: 'unknown message type "ping"' }, type: 'error' }));
  await p2;
  assert.deepEqual(calls, ['http'], 'fell back to HTTP at once');
  await streamProbe(() => null, http)();
  assert.deepEqual(calls, ['http', 'http'], 'SSE: HTTP');

  const notFound = Object.assign(new Error('no such route'), { status: 404 });
  await assert.rejects(httpProbe(async () => { throw notFound; })(), ProbeUnsupported);
  const limited = Object.assign(new Error('rate'), { status: 429 });
  await assert.rejects(httpProbe(async () => { throw limited; })(), (e) => e === limited);
});
