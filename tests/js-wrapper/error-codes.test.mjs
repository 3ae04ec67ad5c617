// One registry of error codes (src/core/error_codes.def): the generated TypeScript and docs table
// are current, every code a source file uses is registered (and registered for the layer that
// uses it), no registered code is dead, docs/protocol.md's status table agrees, and the built
// package and wasm module carry the same list. Needs the js-wrapper build (dist/) and the wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { outputs, readRegistry, ROOT, TS_OUT } from '../../tools/gen-error-codes.mjs';
import { ERROR_CODES, isErrorCode, SyncError } from '../../js-wrapper/dist/index.js';
import { ERROR_CODE_HTTP_STATUS } from '../../js-wrapper/dist/error-codes.js';
import { fromWire } from '../../js-wrapper/dist/errors.js';
import { loadSyncline } from '../../js-wrapper/dist/internal.js';

const registry = readRegistry();
const byCode = new Map(registry.map((e) => [e.code, e]));
const byName = new Map(registry.map((e) => [e.name, e]));

function files(dir, exts) {
  const out = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const p = join(dir, name);
    if (statSync(join(ROOT, p)).isDirectory()) out.push(...files(p, exts));
    else if (exts.some((x) => name.endsWith(x))) out.push(p);
  }
  return out;
}

// Where a code is used, by layer. web/ is the engine's wasm face: the core's layer.
const SOURCES = [
  { layer: 'core', dirs: ['src/core', 'web'], exts: ['.cpp', '.hpp'] },
  { layer: 'server', dirs: ['server'], exts: ['.cpp', '.hpp'] },
  { layer: 'client', dirs: ['js-wrapper/src'], exts: ['.ts', '.tsx'] },
];
const SKIP = new Set(['src/core/error_codes.hpp', TS_OUT]);

// The forms a code takes in the sources. C++: codes::kName, or a literal handed to make_error,
// api_error, err, RegisteredCode, Error{...} or compared with a .code. TypeScript: a literal
// handed to SyncError/fromWire, given to or compared with a `code`, a ternary or `??` fallback
// on a line about a code, or a *_CODE constant.
const CPP = [
  [/codes::k([A-Za-z]+)/g, (m) => byName.get(m[1])?.code ?? `codes::k${m[1]}`],
  [/\b(?:make_error|api_error|err|RegisteredCode)\(\s*"([^"]*)"/g, (m) => m[1]],
  [/\bError\{\s*"([^"]*)"/g, (m) => m[1]],
  [/\.code\s*(?:==|!=|=)\s*"([^"]*)"/g, (m) => m[1]],
];
const TS = [
  [/\b(?:SyncError|fromWire)\(\s*'([^']*)'/g, (m) => m[1]],
  [/(?<!typeof )\bcode\??(?::|\s*(?:===|!==|=))\s*'([^']*)'/g, (m) => m[1]],
  [/\b[A-Z_]*CODE\s*=\s*'([^']*)'/g, (m) => m[1]],
];
const TS_LINE = [/\?\s*'([a-z_]+)'\s*:\s*'([a-z_]+)'/g, /\?\?\s*'([a-z_]+)'/g];

function usedCodes() {
  const uses = []; // { code, layer, at }
  for (const { layer, dirs, exts } of SOURCES) {
    for (const dir of dirs) {
      for (const file of files(dir, exts)) {
        if (SKIP.has(file)) continue;
        // Comments name codes in prose: blank them, keeping the line numbers.
        const text = readFileSync(join(ROOT, file), 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
          .replace(/^\s*\/\/.*$/gm, '');
        const at = (index) => `${file}:${text.slice(0, index).split('\n').length}`;
        // Over the whole text, so a call spread over lines is seen.
        for (const [re, pick] of layer === 'client' ? TS : CPP) {
          for (const m of text.matchAll(re)) uses.push({ code: pick(m), layer, at: at(m.index) });
        }
        if (layer !== 'client') continue;
        text.split('\n').forEach((line, i) => {
          if (!/\bcode\b/i.test(line)) return;
          for (const re of TS_LINE) for (const m of line.matchAll(re)) for (const c of m.slice(1)) uses.push({ code: c, layer, at: `${file}:${i + 1}` });
        });
      }
    }
  }
  return uses;
}

test('the generated TypeScript and the docs/api.md table are current (node tools/gen-error-codes.mjs)', () => {
  for (const o of outputs()) assert.equal(o.actual, o.expected, `${o.path} is stale: run node tools/gen-error-codes.mjs`);
});

test('every code a source uses is registered, for the layer that uses it', () => {
  const uses = usedCodes();
  assert.ok(uses.length > 100, `the scan found only ${uses.length} uses: its patterns no longer match the sources`);
  const unknown = uses.filter((u) => !byCode.has(u.code)).map((u) => `${u.at}: "${u.code}"`);
  assert.deepEqual(unknown, [], 'codes not in src/core/error_codes.def');
  const wrongLayer = uses
    .filter((u) => byCode.has(u.code) && !byCode.get(u.code).raisedBy.includes(u.layer))
    .map((u) => `${u.at}: "${u.code}" is used by the ${u.layer} but registered as raised by ${byCode.get(u.code).raisedBy.join(' ')}`);
  assert.deepEqual(wrongLayer, []);
  const used = new Set(uses.map((u) => u.code));
  const dead = registry.filter((e) => !used.has(e.code)).map((e) => e.code);
  assert.deepEqual(dead, [], 'registered codes no source uses');
});

test('the scan sees the forms the sources use (a planted unknown code is found)', () => {
  // Guards the patterns above: each form, with a code that is not registered, is reported.
  const probe = (layer, text) => {
    const found = [];
    for (const [re, pick] of layer === 'client' ? TS : CPP) for (const m of text.matchAll(re)) found.push(pick(m));
    if (layer === 'client') for (const re of TS_LINE) for (const m of text.matchAll(re)) found.push(...m.slice(1));
    return found;
  };
  assert.deepEqual(probe('core', 'return make_error("zz_new", "m");'), ['zz_new']);
  assert.deepEqual(probe('server', 'return api_error(codes::kZzNew, "m");'), ['codes::kZzNew']);
  assert.deepEqual(probe('server', 'if (e.code == "zz_new") {}'), ['zz_new']);
  assert.deepEqual(probe('client', "throw new SyncError('zz_new', 'm');"), ['zz_new']);
  assert.deepEqual(probe('client', "this.lastError = { code: fatal ? 'zz_a' : 'zz_b', message };"), ['zz_a', 'zz_b']);
  assert.deepEqual(probe('client', "const code = e.code ?? 'zz_new';"), ['zz_new']);
  assert.deepEqual(probe('client', "if (r.code === 'zz_new') return;"), ['zz_new']);
  assert.deepEqual(probe('client', "return typeof code === 'string' ? code : 'x y';"), []);
});

test('docs/protocol.md: every status row names a registered code with its registered status', () => {
  const text = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
  const rows = [...text.matchAll(/^\| (\d{3}) \| `([a-z_]+)` \|/gm)].map((m) => [Number(m[1]), m[2]]);
  assert.ok(rows.length >= 10, 'the status table of docs/protocol.md#errors was not found');
  for (const [status, code] of rows) {
    assert.ok(byCode.has(code), `docs/protocol.md lists ${code}, which is not registered`);
    assert.equal(byCode.get(code).status, status, `docs/protocol.md gives ${code} status ${status}`);
  }
  // ... and every code with an HTTP status is in that table.
  const listed = new Set(rows.map(([, c]) => c));
  const missing = registry.filter((e) => e.status !== null && !listed.has(e.code)).map((e) => e.code);
  assert.deepEqual(missing, [], 'codes with an HTTP status missing from docs/protocol.md#errors');
});

test('the built package and the wasm module carry the registry', async () => {
  assert.deepEqual([...ERROR_CODES], registry.map((e) => e.code));
  for (const e of registry) assert.equal(ERROR_CODE_HTTP_STATUS[e.code], e.status, e.code);
  const mod = await loadSyncline();
  const compiled = JSON.parse(mod._errorCodes());
  assert.deepEqual(compiled, registry.map((e) => ({ code: e.code, status: e.status })), 'syncline.wasm was built from another registry');
});

test('SyncError.code is always a registered code; an unknown one from the wire becomes internal', () => {
  assert.ok(isErrorCode('conflict'));
  assert.ok(!isErrorCode('server'));
  const known = fromWire('rate_limited', 'slow down', { status: 429 });
  assert.equal(known.code, 'rate_limited');
  assert.equal(known.message, 'slow down');
  assert.equal(known.status, 429);
  const unknown = fromWire('teapot', 'short and stout', { status: 418 });
  assert.ok(unknown instanceof SyncError);
  assert.equal(unknown.code, 'internal');
  assert.equal(unknown.message, 'teapot: short and stout');
  assert.equal(unknown.status, 418);
  assert.equal(fromWire(undefined, 'no code').code, 'internal');
  // An untyped caller cannot break the invariant either.
  assert.equal(new SyncError('bogus', 'x').code, 'internal');
});
