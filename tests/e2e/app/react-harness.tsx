// React hook harness: components count their renders so tests can check that a remote
// change re-renders the components that show it, and only those. With ?shop=1 a ShopView logs
// what each of its renders showed (a product's stock, a bill's credits), for the increment and
// transaction tests.
import { createRoot } from 'react-dom/client';
import { createClient, increment, serverTime } from 'syncline';
import type { SyncClient } from 'syncline';
import { SyncProvider, useCollection, useDocument, useSyncStatus, useConnectionHealth, useEvents, useDocumentListener } from 'syncline/react';

const counts: Record<string, number> = {};
const transitions: string[] = [];
const bump = (name: string) => (counts[name] = (counts[name] ?? 0) + 1);

function BillList() {
  bump('BillList');
  const { data } = useCollection('bills', { orderBy: 'total.desc' });
  return <ul id="bills">{data.map((d) => <li key={d.id} data-id={d.id}>{String((d.fields as { total?: number }).total)}</li>)}</ul>;
}

function ProductList() {
  bump('ProductList');
  const { data } = useCollection('products');
  return <ul id="products">{data.map((d) => <li key={d.id}>{d.id}</li>)}</ul>;
}

function OneBill({ id }: { id: string }) {
  bump('OneBill');
  const doc = useDocument('bills', id);
  return <p id="one-bill">{doc ? String((doc.fields as { total?: number }).total) : 'none'}</p>;
}

function Status() {
  bump('Status');
  const s = useSyncStatus();
  const h = useConnectionHealth();
  return <p id="status" data-connected={String(s.isConnected)} data-pending={s.pendingOperations} data-health={h.status} />;
}

function Listener() {
  useDocumentListener('bills', (e) => transitions.push(`${e.type}:${e.id}`));
  const changes = useEvents({ collection: 'bills' });
  return <p id="event-count">{changes.length}</p>;
}

// Every render of ShopView: [stock, credits, pending], so a test can see that an increment shows
// at once and that a refused group leaves the view in one render, never half.
const shopLog: [number | null, number, boolean][] = [];
function ShopView({ product, bill }: { product: string; bill: string }) {
  const p = useDocument<{ stock: number }>('products', product);
  const { data } = useCollection<{ bill_id: string }>('ledger_entries', { where: `bill_id=eq.${bill}` });
  const stock = p ? p.fields.stock : null;
  shopLog.push([stock, data.length, !!p?.pending]);
  return <p id="shop" data-stock={String(stock)} data-credits={data.length} data-pending={String(!!p?.pending)} />;
}

async function main() {
  const params = new URLSearchParams(location.search);
  const options = JSON.parse(params.get('options') ?? '{}');
  const client: SyncClient = await createClient(options);
  (window as unknown as { client: SyncClient }).client = client;
  createRoot(document.getElementById('root')!).render(
    <SyncProvider client={client}>
      <Status />
      <BillList />
      <ProductList />
      <OneBill id="watched" />
      <Listener />
      {params.has('shop') && <ShopView product="rx-product" bill="rx-bill" />}
    </SyncProvider>,
  );
  (window as unknown as Record<string, unknown>).renderCounts = counts;
  (window as unknown as Record<string, unknown>).transitions = transitions;
  (window as unknown as Record<string, unknown>).shopLog = shopLog;
  (window as unknown as Record<string, unknown>).syncline = { increment, serverTime };
  (window as unknown as Record<string, unknown>).harnessReady = true;
}
void main();
