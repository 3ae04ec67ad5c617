// options.ts: createClient's options checked up front; the token's subject; the token asked anew.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dist } from './helpers.mjs';

const { validateOptions, tokenSubject, currentToken } = await import(dist('runtime/options.js'));

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
