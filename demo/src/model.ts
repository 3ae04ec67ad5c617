// Layer: demo. The demo's data model: document shapes, reference data (branches, halls, slots,
// demo users) and formatting helpers. Shared by every page; depends on nothing but the types.

export type Role = 'admin' | 'customer';

export interface DemoUser {
  sub: string;
  role: Role;
  name: string;
  title: string;
}

/** The people on the sign-in screen. Customer subs are the ids of their `customers` documents. */
export const DEMO_USERS: DemoUser[] = [
  { sub: 'admin-maya', role: 'admin', name: 'Maya Chen', title: 'Operations lead · admin' },
  { sub: 'cust-ana', role: 'customer', name: 'Ana Lima', title: 'Lima Catering · customer' },
  { sub: 'cust-ben', role: 'customer', name: 'Ben Okafor', title: 'Okafor Events · customer' },
];

export const BRANCHES = [
  { id: 'north', name: 'Northside' },
  { id: 'harbour', name: 'Harbour' },
  { id: 'oldtown', name: 'Old Town' },
] as const;
export type BranchId = (typeof BRANCHES)[number]['id'];

export const branchName = (id: string | undefined) => BRANCHES.find((b) => b.id === id)?.name ?? id ?? '—';

/**
 * The subscription filter for a branch. Documents that belong to a branch carry `branch`;
 * customers and ledger entries do not. `neq` also matches a missing field, so "not any other
 * branch" keeps the branch's own documents plus the branch-less ones, in one server-side filter.
 */
export function branchWhere(branch: string): string | undefined {
  if (branch === 'all') return undefined;
  return BRANCHES.filter((b) => b.id !== branch)
    .map((b) => `branch=neq.${b.id}`)
    .join(',');
}

export const HALLS = [
  { id: 'north-main', name: 'Main Hall', branch: 'north', seats: 120 },
  { id: 'north-loft', name: 'The Loft', branch: 'north', seats: 40 },
  { id: 'harbour-deck', name: 'Deck Room', branch: 'harbour', seats: 80 },
  { id: 'harbour-studio', name: 'Studio', branch: 'harbour', seats: 24 },
  { id: 'oldtown-vault', name: 'The Vault', branch: 'oldtown', seats: 60 },
] as const;

export const SLOTS = ['Morning', 'Afternoon', 'Evening'] as const;

export const ORDER_STAGES = ['new', 'confirmed', 'paid', 'shipped', 'delivered'] as const;
export type OrderStage = (typeof ORDER_STAGES)[number];

export interface LineItem {
  product_id: string;
  name: string;
  qty: number;
  price: number;
}

export interface Customer {
  name: string;
  company: string;
  email: string;
  tier: string;
  login?: boolean;
}

export interface Bill {
  number: string;
  customer_id: string;
  customer_name: string;
  branch: string;
  items: LineItem[];
  total: number;
  status: 'unpaid' | 'paid';
  created_at: number;
  due_at: number;
  paid_at?: number | null;
}

export interface Product {
  name: string;
  sku: string;
  branch: string;
  category: string;
  unit: string;
  price: number;
  stock: number;
  threshold: number;
  capacity: number;
}

export interface StockTx {
  product_id: string;
  product_name: string;
  branch: string;
  kind: 'purchase' | 'sale' | 'adjustment';
  /** Signed change: + purchase, − sale. */
  qty: number;
  /** Only on movements recorded before stock moved by increments; the committed stock after a
   * movement is derived from committed data (stock.ts). */
  stock_after?: number;
  bill_id?: string;
  note?: string;
  at: number;
  by: string;
}

export interface Booking {
  hall: string;
  branch: string;
  date: string;
  slot: number;
  customer_id: string;
  customer_name: string;
  title: string;
  /** The lead this booking was converted from. */
  lead_id?: string;
  created_at: number;
}

export interface Order {
  number: string;
  customer_id: string;
  customer_name: string;
  branch: string;
  stage: OrderStage;
  total: number;
  summary: string;
  created_at: number;
  updated_at: number;
}

/** A sales lead for a hall booking, per branch: new → contacted → quoted → won / lost. */
export const LEAD_STAGES = ['new', 'contacted', 'quoted', 'won', 'lost'] as const;
export type LeadStage = (typeof LEAD_STAGES)[number];
export const LEAD_STAGE_LABEL: Record<LeadStage, string> = { new: 'New', contacted: 'Contacted', quoted: 'Quoted', won: 'Won', lost: 'Lost' };
export const LOST_REASONS = ['Chose another venue', 'Over budget', 'Date not available', 'No reply', 'Event cancelled'] as const;

export interface Lead {
  name: string;
  company?: string;
  contact: string;
  branch: string;
  stage: LeadStage;
  /** What they asked for, e.g. "Wedding tasting for 60". */
  interest: string;
  /** Estimated value in cents. */
  value: number;
  /** The hall they asked about, if any (a convert suggestion). */
  hall?: string;
  /** An existing customer this lead belongs to, if any. */
  customer_id?: string;
  lost_reason?: string;
  /** The booking a won lead converted into. */
  booking_id?: string;
  /** Who made the last move, and from which tab (other tabs announce it). */
  moved_by?: string;
  moved_tab?: string;
  created_at: number;
  updated_at: number;
}

export interface LedgerEntry {
  customer_id: string;
  customer_name: string;
  kind: 'credit' | 'debit';
  amount: number;
  memo: string;
  /** The bill a debit or a payment credit belongs to. */
  bill_id?: string;
  at: number;
}

const money = new Intl.NumberFormat('en-GB', { style: 'currency', currency: 'EUR' });
/** Amounts are integer cents, so sums are exact. */
export const fmtMoney = (cents: number) => money.format((cents || 0) / 100);
export const fmtDate = (ms: number) => new Date(ms).toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
export const fmtTime = (ms: number) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
export const fmtDateTime = (ms: number) =>
  new Date(ms).toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

export function isoDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export function startOfToday(): number {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function relTime(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export const billNumber = () => `INV-${String(Date.now()).slice(-6)}${Math.floor(Math.random() * 10)}`;
export const orderNumber = () => `ORD-${String(Date.now()).slice(-5)}${Math.floor(Math.random() * 10)}`;

/** The plural of a unit name: box → boxes, bottle → bottles, battery → batteries. */
export function plural(word: string): string {
  if (/(s|x|z|ch|sh)$/i.test(word)) return `${word}es`;
  if (/[^aeiou]y$/i.test(word)) return `${word.slice(0, -1)}ies`;
  return `${word}s`;
}

/** "1 box", "7 boxes", "0 bottles". */
export const countOf = (n: number, unit: string) => `${n} ${n === 1 || n === -1 ? unit : plural(unit)}`;

/** What a customer sees of a product's stock: a level, never the count or the cost. */
export type StockLevel = 'in' | 'low' | 'out';
export const stockLevel = (p: Pick<Product, 'stock' | 'threshold'>): StockLevel => (p.stock <= 0 ? 'out' : p.stock < p.threshold ? 'low' : 'in');
export const STOCK_LEVEL_LABEL: Record<StockLevel, string> = { in: 'In stock', low: 'Low stock', out: 'Out of stock' };
