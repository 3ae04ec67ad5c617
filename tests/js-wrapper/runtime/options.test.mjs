// options.ts: createClient's options checked up front (url: one URL or a list of nodes); the
// token's subject; the token asked anew.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { validateOptions, tokenSubject, currentToken } = await import(dist('runtime/options.js'));
const { SyncError } = await import(dist('errors.js'));

const ok = { url: 'https://sync.example', collections: ['bills'] };

test('valid options pass; each invalid field is named', () => {
  validateOptions(ok);
  validateOptions({ ...ok, where: 'n > 1', transport: 'sse', persistence: 'memory', token: () => 't' });
  const cases = [
    [{ ...ok, url: 'ftp://x' }, 'url'],
    [{ ...ok, collections: [] }, 'collections'],
    [{ ...ok, collections: ['bills', 'no spaces'] }, 'collections[1]'],
    [{ ...ok, where: 5 }, 'where'],
    [{ ...ok, transport: 'carrier-pigeon' }, 'transport'],
    [{ ...ok, persistence: 'cookies' }, 'persistence'],
    [{ ...ok, token: 42 }, 'token'],
  ];
  for (const [o, field] of cases) {
    assert.throws(() => validateOptions(o), (e) => e.code === 'invalid_options' && e.field === field, field);
  }
  assert.throws(() => validateOptions(null), (e) => e.code === 'invalid_options');
});

test('url: one http(s) URL or a non-empty list of distinct ones; a bad entry is named url[i]', () => {
  validateOptions({ ...ok, url: ['https://a.example'] });
  validateOptions({ ...ok, url: ['https://a.example', 'http://b.example:8080', 'https://lb.example/sync/'] });
  validateOptions({ ...ok, url: 'HTTPS://Sync.Example' });
  const cases = [
    [{ ...ok, url: undefined }, 'url'],
    [{ ...ok, url: 42 }, 'url'],
    [{ ...ok, url: 'sync.example' }, 'url'],
    [{ ...ok, url: 'http://' }, 'url'],
    [{ ...ok, url: [] }, 'url'],
    [{ ...ok, url: { 0: 'https://a.example', length: 1 } }, 'url'],
    [{ ...ok, url: ['https://a.example', 'ws://b.example'] }, 'url[1]'],
    [{ ...ok, url: ['https://a.example', 'https://b.example', 7] }, 'url[2]'],
    [{ ...ok, url: ['https://a.example', 'https://b.example', ''] }, 'url[2]'],
    [{ ...ok, url: [null] }, 'url[0]'],
    [{ ...ok, url: ['https://a.example', 'https://b.example', 'https://a.example/'] }, 'url[2]'],
  ];
  for (const [o, field] of cases) {
    assert.throws(
      () => validateOptions(o),
      (e) => e instanceof SyncError && e.code === 'invalid_options' && e.field === field && e.message.startsWith(field),
      `${JSON.stringify(o.url)} -> ${field}`,
    );
  }
});

test('tokenSubject reads the sub claim (base64url), anonymous otherwise', () => {
  const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const urlSafe = b64url({ sub: '>>>??>' });
  assert.match(urlSafe, /[-_]/, 'the payload uses the URL-safe alphabet');
  assert.equal(tokenSubject(`h.${urlSafe}.s`), '>>>??>');
  assert.equal(tokenSubject(`h.${b64url({ sub: 'alice' })}.s`), 'alice');
  assert.equal(tokenSubject(`h.${b64url({ name: 'x' })}.s`), 'anonymous');
  assert.equal(tokenSubject('garbage'), 'anonymous');
  assert.equal(tokenSubject(undefined), 'anonymous');
});

test('currentToken asks a function every time', async () => {
  let n = 0;
  const f = async () => `t${++n}`;
  assert.equal(await currentToken(f), 't1');
  assert.equal(await currentToken(f), 't2');
  assert.equal(await currentToken('fixed'), 'fixed');
  assert.equal(await currentToken(undefined), null);
});
