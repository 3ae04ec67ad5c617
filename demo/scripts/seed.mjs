#!/usr/bin/env node
// Layer: demo tooling. Seeds a syncline-server started with server/config/demo.json with the
// demo's data, through the public protocol only: an admin token from POST /v1/demo/token, then
// POST /v1/mutations batches.
//
//   node demo/scripts/seed.mjs http://127.0.0.1:8080
//
// Idempotent: it skips a dataset that already has changes (health seq > 0), and even when forced
// (--force) it writes with a fixed client id and fixed mids 1..N, so the server answers
// `duplicate` to anything it already applied instead of applying it twice.
import { pathToFileURL } from 'node:url';

const CLIENT = 'demo-seed';
const DAY = 86400000;

const BRANCHES = ['north', 'harbour', 'oldtown'];
const HALLS = [
  { id: 'north-main', name: 'Main Hall', branch: 'north' },
  { id: 'north-loft', name: 'The Loft', branch: 'north' },
  { id: 'harbour-deck', name: 'Deck Room', branch: 'harbour' },
  { id: 'harbour-studio', name: 'Studio', branch: 'harbour' },
  { id: 'oldtown-vault', name: 'The Vault', branch: 'oldtown' },
];
export const CUSTOMERS = [
  { id: 'cust-ana', name: 'Ana Lima', company: 'Lima Catering', email: 'ana@lima-catering.example', tier: 'Gold', login: true },
  { id: 'cust-ben', name: 'Ben Okafor', company: 'Okafor Events', email: 'ben@okafor.example', tier: 'Silver', login: true },
  { id: 'cust-chloe', name: 'Chloé Martin', company: 'Martin & Fils', email: 'chloe@martin.example', tier: 'Silver' },
  { id: 'cust-dev', name: 'Dev Patel', company: 'Patel Studio', email: 'dev@patel.example', tier: 'Bronze' },
  { id: 'cust-emma', name: 'Emma Schulz', company: 'Schulz GmbH', email: 'emma@schulz.example', tier: 'Gold' },
  { id: 'cust-farid', name: 'Farid Haddad', company: 'Haddad Trading', email: 'farid@haddad.example', tier: 'Bronze' },
];
// [name, sku, category, unit, price cents, capacity]
const CATALOGUE = [
  ['Espresso beans 1 kg', 'COF-ESP', 'Coffee', 'bag', 2450, 80],
  ['Oat milk 1 L', 'MLK-OAT', 'Dairy-free', 'carton', 289, 200],
  ['Paper cups 12 oz (50)', 'CUP-12', 'Packaging', 'sleeve', 690, 120],
  ['Croissant (frozen, 24)', 'BAK-CRO', 'Bakery', 'box', 3190, 40],
  ['Sparkling water 0.5 L', 'DRK-SPK', 'Drinks', 'bottle', 140, 300],
  ['Chai syrup 750 ml', 'SYR-CHA', 'Syrups', 'bottle', 1290, 50],
  ['Compostable lids (100)', 'LID-100', 'Packaging', 'pack', 870, 90],
  ['Cold brew keg 20 L', 'COF-KEG', 'Coffee', 'keg', 11900, 12],
];

/** mulberry32: a tiny seeded RNG so every run generates the same data shape. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function isoDay(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** Builds the demo dataset as a list of insert mutations (without mids). */
export function buildDataset(now = Date.now()) {
  const r = rng(20250601);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const out = [];
  const ins = (collection, id, fields) => out.push({ op: 'insert', collection, id, fields });
  const today = new Date(now);
  today.setHours(0, 0, 0, 0);
  const t0 = today.getTime();

  for (const c of CUSTOMERS) {
    const { id, ...fields } = c;
    ins('customers', id, { ...fields, created_at: t0 - 90 * DAY });
  }

  // Products: the catalogue at each branch, with one or two items already close to threshold.
  const products = [];
  for (const branch of BRANCHES) {
    CATALOGUE.forEach(([name, sku, category, unit, price, capacity], i) => {
      const threshold = Math.max(3, Math.round(capacity * 0.2));
      let stock = int(Math.round(capacity * 0.35), capacity);
      if ((i + BRANCHES.indexOf(branch)) % 5 === 0) stock = threshold + int(1, 3); // near the line
      if (branch === 'harbour' && sku === 'BAK-CRO') stock = threshold - 2; // already low
      const p = { id: `p-${branch}-${sku.toLowerCase()}`, name, sku, branch, category, unit, price, stock, threshold, capacity };
      products.push(p);
      const { id, ...fields } = p;
      ins('products', id, fields);
    });
  }

  // Bills over the last 30 days, a few today, some unpaid and some overdue; each with line
  // items and the matching stock transactions.
  let billNo = 1040;
  const billCustomers = CUSTOMERS;
  const seededBills = [];
  for (let i = 0; i < 36; i++) {
    const c = i < 4 ? CUSTOMERS[i % 2] : pick(billCustomers);
    const branch = pick(BRANCHES);
    const age = i < 5 ? 0 : int(1, 30);
    const createdAt = age === 0
      ? Math.max(t0 + 60000, now - int(5, 300) * 60000)
      : t0 - age * DAY + int(8, 18) * 3600000;
    const items = [];
    const lines = int(1, 3);
    const used = new Set();
    for (let l = 0; l < lines; l++) {
      const p = pick(products.filter((x) => x.branch === branch && !used.has(x.id)));
      used.add(p.id);
      const qty = int(1, 4);
      items.push({ product_id: p.id, name: p.name, qty, price: p.price });
      ins('stock_transactions', `tx-seed-${i}-${l}`, {
        product_id: p.id, product_name: p.name, branch, kind: 'sale', qty: -qty,
        stock_after: p.stock, bill_id: `bill-seed-${i}`, at: createdAt, by: 'admin-maya',
      });
    }
    const total = items.reduce((s, it) => s + it.qty * it.price, 0);
    const paid = age > 16 ? r() < 0.85 : age === 0 ? r() < 0.3 : r() < 0.55;
    // Paid a few days after it was issued, and never in the future (a bill of today: minutes later).
    const paidAt = paid ? Math.min(createdAt + int(1, 5) * DAY, createdAt + Math.max(60000, Math.floor((now - createdAt) / 2))) : null;
    const number = `INV-${billNo++}`;
    ins('bills', `bill-seed-${i}`, {
      number, customer_id: c.id, customer_name: c.name, branch, items, total,
      status: paid ? 'paid' : 'unpaid', created_at: createdAt, due_at: createdAt + 14 * DAY,
      ...(paid ? { paid_at: paidAt } : {}),
    });
    seededBills.push({ id: `bill-seed-${i}`, number, customer: c, total, createdAt, paidAt });
  }

  // Purchases and adjustments for the stock history.
  products.forEach((p, i) => {
    if (i % 2 === 0) {
      ins('stock_transactions', `tx-seed-p-${i}`, {
        product_id: p.id, product_name: p.name, branch: p.branch, kind: 'purchase', qty: int(10, 30),
        stock_after: p.stock, note: 'Weekly delivery', at: t0 - int(1, 6) * DAY + 7 * 3600000, by: 'admin-maya',
      });
    }
    if (i % 7 === 3) {
      ins('stock_transactions', `tx-seed-a-${i}`, {
        product_id: p.id, product_name: p.name, branch: p.branch, kind: 'adjustment', qty: -int(1, 3),
        stock_after: p.stock, note: 'Damaged in storage', at: t0 - int(1, 10) * DAY + 16 * 3600000, by: 'admin-maya',
      });
    }
  });

  // Bookings over the next 14 days; Ana holds tomorrow evening in the Main Hall (the slot the
  // double-booking walkthrough tries to take).
  const titles = ['Team offsite', 'Product launch', 'Wedding tasting', 'Board meeting', 'Yoga class', 'Workshop', 'Birthday dinner'];
  const seen = new Set();
  const book = (hall, day, slot, c, title) => {
    const date = isoDay(t0 + day * DAY);
    const key = `${hall.id}|${date}|${slot}`;
    if (seen.has(key)) return;
    seen.add(key);
    ins('bookings', `bk-seed-${hall.id}-${date}-${slot}`, {
      hall: hall.id, hall_name: hall.name, branch: hall.branch, date, slot, customer_id: c.id,
      customer_name: c.name, title, created_at: t0 - int(1, 9) * DAY,
    });
  };
  book(HALLS[0], 1, 2, CUSTOMERS[0], 'Lima Catering tasting night');
  book(HALLS[0], 2, 0, CUSTOMERS[0], 'Menu planning');
  book(HALLS[0], 2, 1, CUSTOMERS[1], 'Okafor Events rehearsal');
  book(HALLS[0], 2, 2, CUSTOMERS[2], 'Gala dinner');
  for (let i = 0; i < 26; i++) book(pick(HALLS), int(0, 13), int(0, 2), pick(CUSTOMERS), pick(titles));

  // Orders across the pipeline.
  const stages = ['new', 'new', 'confirmed', 'confirmed', 'paid', 'shipped', 'delivered', 'delivered'];
  const summaries = ['2× Espresso beans, 1× Chai syrup', '12× Oat milk', 'Cold brew keg', '3× Croissant boxes', '6× Paper cups, 2× Lids', '24× Sparkling water'];
  for (let i = 0; i < 14; i++) {
    const c = i < 3 ? CUSTOMERS[i % 2] : pick(CUSTOMERS);
    const created = now - int(1, 96) * 3600000;
    ins('orders', `ord-seed-${i}`, {
      number: `ORD-${2210 + i}`, customer_id: c.id, customer_name: c.name, branch: pick(BRANCHES),
      stage: stages[i % stages.length], total: int(20, 400) * 100 + int(0, 99), summary: pick(summaries),
      created_at: created, updated_at: created + int(0, 3) * 3600000,
    });
  }

  // Ledger: it mirrors the bills, so every statement reconciles (balance = payments - bills) and
  // every line names its bill: each bill's debit when it was issued, and for a paid bill its
  // payment credit when it was paid, both with the bill's id. Nothing else (no opening balances,
  // no invoices that are not bills): a customer's outstanding amount is exactly -balance.
  for (const b of seededBills) {
    const who = { customer_id: b.customer.id, customer_name: b.customer.name };
    ins('ledger_entries', `led-seed-${b.id}-debit`, { ...who, kind: 'debit', amount: b.total, memo: `Bill ${b.number}`, bill_id: b.id, at: b.createdAt });
    if (b.paidAt !== null) {
      ins('ledger_entries', `led-seed-${b.id}-credit`, { ...who, kind: 'credit', amount: b.total, memo: `Payment for ${b.number}`, bill_id: b.id, at: b.paidAt });
    }
  }

  // Leads, appended after everything else so the mids of the data above stay put.
  // Fixed values (no rng draws), a pipeline per branch: new -> contacted -> quoted -> won / lost.
  // lead-seed-1 (north, new) and lead-seed-4 (north, quoted, asks for the Main Hall tomorrow
  // evening, which Ana holds) are the ones the e2e tests move and convert.
  const LEADS = [
    // [branch, stage, name, company, interest, value EUR, hall, extra]
    ['north', 'new', 'Grace Kim', 'Kim & Co', 'Team offsite for 30', 1800, 'north-loft'],
    ['north', 'new', 'Hugo Silva', 'Silva Design', 'Product launch, 80 guests', 4200, 'north-main'],
    ['north', 'contacted', 'Iris Novak', 'Novak Legal', 'Quarterly board meeting', 950, 'north-loft'],
    ['north', 'quoted', 'Jonas Berg', 'Berg Foods', 'Tasting evening for 60', 3600, 'north-main'],
    ['north', 'won', 'Ana Lima', 'Lima Catering', 'Tasting night (repeat)', 2900, 'north-main',
      { customer_id: 'cust-ana', booking_id: `bk-seed-north-main-${isoDay(t0 + DAY)}-2` }],
    ['harbour', 'new', 'Kofi Mensah', 'Mensah Media', 'Podcast recording day', 700, 'harbour-studio'],
    ['harbour', 'contacted', 'Lea Roth', 'Roth Architects', 'Summer party on the deck', 5200, 'harbour-deck'],
    ['harbour', 'quoted', 'Marco Rossi', 'Rossi Wines', 'Wine pairing dinner', 3100, 'harbour-deck'],
    ['harbour', 'lost', 'Nina Ivanova', 'Ivanova PR', 'Press breakfast', 1200, 'harbour-studio', { lost_reason: 'Over budget' }],
    ['oldtown', 'new', 'Omar Farouk', 'Farouk Books', 'Book signing, 50 guests', 1500, 'oldtown-vault'],
    ['oldtown', 'quoted', 'Paula Costa', 'Costa Yoga', 'Weekly yoga class (8 weeks)', 2400, 'oldtown-vault'],
    ['oldtown', 'lost', 'Quentin Blake', 'Blake Events', 'Wedding reception', 9800, 'oldtown-vault', { lost_reason: 'Date not available' }],
    ['oldtown', 'contacted', 'Dev Patel', 'Patel Studio', 'Studio open day', 1300, 'oldtown-vault', { customer_id: 'cust-dev' }],
  ];
  LEADS.forEach(([branch, stage, name, company, interest, value, hall, extra = {}], i) => {
    const created = t0 - (LEADS.length - i) * 3 * 3600000;
    ins('leads', `lead-seed-${i + 1}`, {
      name, company, contact: `${name.split(' ')[0].toLowerCase()}@${company.split(' ')[0].toLowerCase()}.example`, branch, stage,
      interest, value: value * 100, hall, created_at: created, updated_at: created + (stage === 'new' ? 0 : 2 * 3600000), ...extra,
    });
  });
  return out;
}

async function post(url, path, body, token) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Seeds `url`; returns { skipped, applied, duplicate, rejected }. */
export async function seed(url, { force = false, log = () => {} } = {}) {
  const health = await (await fetch(`${url}/v1/health`)).json();
  if (health.seq > 0 && !force) {
    log(`[seed] dataset already has data (seq ${health.seq}); skipping`);
    return { skipped: true, applied: 0, duplicate: 0, rejected: 0 };
  }
  const { token } = await post(url, '/v1/demo/token', { sub: 'admin-maya', role: 'admin' });
  const mutations = buildDataset().map((m, i) => ({ mid: i + 1, ...m }));
  const counts = { skipped: false, applied: 0, duplicate: 0, rejected: 0 };
  for (let i = 0; i < mutations.length; i += 200) {
    const res = await post(url, '/v1/mutations', { client: CLIENT, mutations: mutations.slice(i, i + 200) }, token);
    for (const r of res.results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  }
  log(`[seed] ${mutations.length} mutations: ${counts.applied} applied, ${counts.duplicate} duplicate, ${counts.rejected} rejected`);
  return counts;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const url = (process.argv.find((a, i) => i >= 2 && !a.startsWith('--')) ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  seed(url, { force: process.argv.includes('--force'), log: console.log }).catch((e) => {
    console.error(`[seed] failed: ${e.message}`);
    process.exit(1);
  });
}
