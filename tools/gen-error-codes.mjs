#!/usr/bin/env node
// Layer: tools (build-time, Node only). Reads the one registry of error codes,
// src/core/error_codes.def, and writes what is derived from it outside C++ (C++ includes the
// .def directly, see src/core/error_codes.hpp):
//   - js-wrapper/src/error-codes.ts: the `ErrorCode` union of SyncError.code, the runtime list
//     and each code's HTTP status;
//   - docs/api.md: the table of codes between the error-codes markers.
//
//   node tools/gen-error-codes.mjs          # rewrite both
//   node tools/gen-error-codes.mjs --check  # exit 1 naming the files that are stale
//
// tests/js-wrapper/error-codes.test.mjs runs the check, and imports readRegistry() to compare
// the registry with every code the sources use.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REGISTRY = 'src/core/error_codes.def';
export const TS_OUT = 'js-wrapper/src/error-codes.ts';
export const DOCS = 'docs/api.md';
export const DOCS_BEGIN = '<!-- error-codes:begin (generated from src/core/error_codes.def by tools/gen-error-codes.mjs; edit the .def) -->';
export const DOCS_END = '<!-- error-codes:end -->';
export const LAYERS = ['core', 'server', 'client'];

const MACRO = 'SYNCLINE_ERROR_CODE';

function pascal(wire) {
  return wire.split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');
}

/** Splits the .def text into macro calls, each a list of arguments (identifier, number, or string). */
function parseCalls(text) {
  const calls = [];
  let i = 0;
  const fail = (why) => {
    const line = text.slice(0, i).split('\n').length;
    throw new Error(`${REGISTRY}:${line}: ${why}`);
  };
  const skipSpace = () => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i])) i++;
      if (text.startsWith('//', i)) {
        while (i < text.length && text[i] !== '\n') i++;
      } else return;
    }
  };
  const readString = () => {
    let out = '';
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\n') fail('newline inside a string');
      if (text[i] === '\\') {
        const c = text[i + 1];
        if (c !== '"' && c !== '\\') fail(`unsupported escape \\${c}`);
        out += c;
        i += 2;
      } else out += text[i++];
    }
    if (text[i] !== '"') fail('unterminated string');
    i++;
    return out;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) break;
    if (!text.startsWith(MACRO + '(', i)) fail(`expected ${MACRO}(`);
    i += MACRO.length + 1;
    const args = [];
    for (;;) {
      skipSpace();
      if (text[i] === '"') {
        let s = readString();
        for (;;) { // adjacent literals concatenate, as in C
          skipSpace();
          if (text[i] !== '"') break;
          s += readString();
        }
        args.push({ kind: 'string', value: s });
      } else {
        const m = /^[A-Za-z_][A-Za-z0-9_]*|^\d+/.exec(text.slice(i));
        if (!m) fail('expected an identifier, a number or a string');
        args.push(/^\d/.test(m[0]) ? { kind: 'number', value: Number(m[0]) } : { kind: 'ident', value: m[0] });
        i += m[0].length;
      }
      skipSpace();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === ')') { i++; break; }
      fail('expected , or )');
    }
    calls.push(args);
  }
  return calls;
}

/**
 * The registry: [{ name, code, status (null: never an HTTP answer), raisedBy: string[], where, meaning }]
 * in file order. Throws on any malformed or inconsistent entry.
 */
export function readRegistry(root = ROOT) {
  const calls = parseCalls(readFileSync(join(root, REGISTRY), 'utf8'));
  const kinds = ['ident', 'string', 'number', 'string', 'string', 'string'];
  const seen = new Set();
  return calls.map((args, n) => {
    const at = `${REGISTRY}: entry ${n + 1}`;
    if (args.length !== kinds.length || args.some((a, k) => a.kind !== kinds[k])) {
      throw new Error(`${at}: expected (Enumerator, "code", status, "raised by", "where", "meaning")`);
    }
    const [name, code, status, raised, where, meaning] = args.map((a) => a.value);
    if (!/^[a-z]+(_[a-z]+)*$/.test(code)) throw new Error(`${at}: code "${code}" must be snake_case`);
    if (name !== pascal(code)) throw new Error(`${at}: enumerator ${name} must be ${pascal(code)} for "${code}"`);
    if (seen.has(code)) throw new Error(`${at}: "${code}" is listed twice`);
    seen.add(code);
    if (status !== 0 && (status < 400 || status > 599)) throw new Error(`${at}: status ${status} is not 0 or 4xx/5xx`);
    const raisedBy = raised.split(/\s+/).filter(Boolean);
    if (!raisedBy.length || raisedBy.some((l) => !LAYERS.includes(l))) {
      throw new Error(`${at}: raised by "${raised}" must name some of ${LAYERS.join(', ')}`);
    }
    for (const [what, text] of [['where', where], ['meaning', meaning]]) {
      if (!text.trim() || text.includes('|') || text.includes('\n')) throw new Error(`${at}: ${what} must be one line without |`);
    }
    return { name, code, status: status === 0 ? null : status, raisedBy, where, meaning };
  });
}

export function renderTs(registry) {
  const q = (s) => `'${s}'`;
  const lines = [
    '// Generated by tools/gen-error-codes.mjs from src/core/error_codes.def: edit the .def, then run',
    '// `node tools/gen-error-codes.mjs`. Layer: js-wrapper (data only, no imports).',
    '',
    '/**',
    ' * Every code a `SyncError` can carry: the core\'s, the server\'s and the browser runtime\'s.',
    ' * docs/api.md#errors says where each arises and what it means.',
    ' */',
    'export type ErrorCode =',
    ...registry.map((e, k) => `  | ${q(e.code)}${k === registry.length - 1 ? ';' : ''}`),
    '',
    '/** The same codes at run time, in registry order. */',
    'export const ERROR_CODES: readonly ErrorCode[] = Object.freeze([',
    ...registry.map((e) => `  ${q(e.code)},`),
    ']);',
    '',
    '/** The HTTP status of a server answer carrying the code; null when the code is never one. */',
    'export const ERROR_CODE_HTTP_STATUS: Readonly<Record<ErrorCode, number | null>> = Object.freeze({',
    ...registry.map((e) => `  ${e.code}: ${e.status === null ? 'null' : e.status},`),
    '});',
    '',
  ];
  return lines.join('\n');
}

export function renderDocsTable(registry) {
  const rows = registry.map(
    (e) => `| \`${e.code}\` | ${e.status ?? '—'} | ${e.raisedBy.join(', ')} | ${e.where} | ${e.meaning} |`,
  );
  return ['| code | HTTP | raised by | where you meet it | what it means |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** docs/api.md with the section between the markers replaced. */
export function renderDocs(current, registry) {
  const b = current.indexOf(DOCS_BEGIN);
  const e = current.indexOf(DOCS_END);
  if (b < 0 || e < b) throw new Error(`${DOCS}: markers ${DOCS_BEGIN} ... ${DOCS_END} not found`);
  return current.slice(0, b + DOCS_BEGIN.length) + '\n' + renderDocsTable(registry) + '\n' + current.slice(e);
}

/** [{ path, expected, actual }] for each generated file. */
export function outputs(root = ROOT) {
  const registry = readRegistry(root);
  const read = (p) => {
    try {
      return readFileSync(join(root, p), 'utf8');
    } catch {
      return '';
    }
  };
  const docs = read(DOCS);
  return [
    { path: TS_OUT, expected: renderTs(registry), actual: read(TS_OUT) },
    { path: DOCS, expected: renderDocs(docs, registry), actual: docs },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  const stale = outputs().filter((o) => o.expected !== o.actual);
  if (check) {
    for (const o of stale) console.error(`stale: ${o.path} (run node tools/gen-error-codes.mjs)`);
    process.exit(stale.length ? 1 : 0);
  }
  for (const o of stale) {
    writeFileSync(join(ROOT, o.path), o.expected);
    console.log(`wrote ${o.path}`);
  }
}
