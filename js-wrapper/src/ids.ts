// Layer: js-wrapper. Sortable ids (UUIDv7 layout: 48-bit millisecond time, then randomness),
// created on the client so there is never a temporary-id swap (clients create ids:
// docs/protocol.md, Data model).

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.getRandomValues) c.getRandomValues(out);
  else for (let i = 0; i < n; i++) out[i] = Math.floor(Math.random() * 256);
  return out;
}

let lastMs = 0;
let seq = 0;

export function newId(now = Date.now()): string {
  // Monotonic within one millisecond: the 12 bits after the version carry a counter.
  if (now === lastMs) seq = (seq + 1) & 0xfff;
  else {
    lastMs = now;
    seq = randomBytes(2)[0] & 0x7ff;
  }
  const r = randomBytes(8);
  const hex = (v: number, w: number) => v.toString(16).padStart(w, '0');
  const time = hex(now, 12);
  const variant = (r[0] & 0x3f) | 0x80;
  const tail = Array.from(r.slice(1, 7), (b) => hex(b, 2)).join('');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${hex(seq, 3)}-${hex(variant, 2)}${hex(r[7], 2)}-${tail}`;
}

/** A random 64-bit seed as a double (for the core's jitter). */
export function randomSeed(): number {
  const b = randomBytes(6);
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}
