// Layer: demo. The "stock after" of each stock movement, as the server committed it.
//
// Stock moves are `increment(±qty, { min: 0 })` applied by the server at commit (writes.ts), so
// no client knows the resulting number when it writes: a value computed from the local copy
// ("55 − 1 = 54") is wrong as soon as another window sells at the same time, which is exactly
// the bug this replaces (two sales, both recorded "stock after 54"). The write's result carries
// only its seq, not the committed value, and reading the product when the promise resolves is
// not right either: by then the view may already include later commits from others, or still
// lack earlier ones that the stream has not delivered yet.
//
// What is exact under concurrency: every change of `products.stock` is an increment committed in
// one group with its movement record (same qty), and the server applies groups in commit order,
// each member getting its own seq. A committed document's `version` is the seq of its last
// change, so for movements (inserted once, never updated) `version` is their commit order. Hence,
// for a product whose committed stock is S, the stock right after movement m was
//
//     S − Σ qty of the movements of that product committed after m (version > m.version).
//
// The view shows the committed stock plus this browser's pending writes (and other tabs'), each
// of which is also a pending movement with the same qty (groups show whole), so the committed S
// is the visible stock minus the pending movements' qty. A pending movement has no committed
// stock-after yet: it gets none (the page shows "…"). Two cases where the numbers are not final
// yet, shown as "…" or corrected within a frame:
// - The movement of a group is committed before its product update (writes.ts orders them so):
//   when the replica has a movement newer than the product's committed version, the product's
//   increment has not reached this replica yet, and that product's rows wait for it.
// - A pending sale that the local copy already cannot cover is not applied to the visible stock
//   (the engine hides an increment that breaks its bound locally) while its movement shows; the
//   server refuses it and it disappears. Until then that product's numbers are off by its qty.
// Movements recorded before increments existed carry a stored `stock_after`; it is shown as is.
import type { SyncClient, SyncDocument } from 'syncline';
import type { Product, StockTx } from './model';

type Moves = readonly SyncDocument<StockTx>[];

/** Committed stock after each movement (by movement id). Pending movements, and those of a
 * product whose committed update has not arrived yet, are absent. */
export function stockAfterByMove(moves: Moves, productOf: (id: string) => SyncDocument<Product> | null | undefined): Map<string, number> {
  const out = new Map<string, number>();
  const byProduct = new Map<string, SyncDocument<StockTx>[]>();
  for (const m of moves) {
    const list = byProduct.get(m.fields.product_id);
    if (list) list.push(m);
    else byProduct.set(m.fields.product_id, [m]);
  }
  for (const [pid, list] of byProduct) {
    const p = productOf(pid);
    let pendingQty = 0;
    const committed: SyncDocument<StockTx>[] = [];
    for (const m of list) {
      if (m.pending || !m.version) pendingQty += m.fields.qty;
      else committed.push(m);
    }
    committed.sort((a, b) => b.version - a.version);
    // The product's own increment lags its movement (or the product is not replicated here).
    const known = !!p && (committed.length === 0 || committed[0]!.version < p.version);
    let run = known ? p!.fields.stock - pendingQty : NaN;
    for (const m of committed) {
      if (typeof m.fields.stock_after === 'number') out.set(m.id, m.fields.stock_after);
      else if (known) out.set(m.id, run);
      run -= m.fields.qty;
    }
  }
  return out;
}

/** The committed stock after one movement, once the server has applied it and this replica has
 * its change (call it after the write's promise resolved). null if it is not known in time. */
export function committedStockAfter(client: SyncClient, moveId: string, timeoutMs = 20000): Promise<number | null> {
  const moves = client.collection<StockTx>('stock_transactions');
  const products = client.collection<Product>('products');
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: number | null) => {
      if (done) return;
      done = true;
      off();
      clearInterval(poll);
      clearTimeout(timer);
      resolve(v);
    };
    const check = () => {
      const m = moves.get(moveId);
      if (!m) return finish(null); // refused and rolled back: no stock after
      if (m.pending) return;
      const pid = m.fields.product_id;
      const v = stockAfterByMove(
        moves.all().filter((x) => x.fields.product_id === pid),
        (id) => products.get(id),
      ).get(moveId);
      if (v !== undefined) finish(v);
    };
    const off = client.onDocumentChange((e) => {
      if (e.collection === 'stock_transactions' || e.collection === 'products') check();
    });
    // The pending flag clearing is also a change, but a poll costs little and cannot miss it.
    const poll = setInterval(check, 500);
    const timer = setTimeout(() => finish(null), timeoutMs);
    check();
  });
}
