// Layer: demo. The admin workspace: navigation, branch selector, notifications that follow the
// whole dataset (low stock, order stage changes from other tabs), and the pages.
import { useState } from 'react';
import type { ReactNode } from 'react';
import { useDocumentListener, useEventListener } from 'syncline/react';
import { Logo } from './App';
import { BRANCHES, branchName, countOf } from './model';
import type { Product } from './model';
import { navigate, usePath } from './router';
import { TAB_ID } from './session';
import { ConnectionPill, InstallButton, OfflineBanner, UpdateBanner, UserChip } from './ui/Chrome';
import { useToast } from './ui/Toasts';
import { useClientStatus, useWorkspace } from './workspace';
import { Dashboard } from './pages/Dashboard';
import { Bills } from './pages/Bills';
import { Inventory } from './pages/Inventory';
import { StockHistory } from './pages/StockHistory';
import { Bookings } from './pages/Bookings';
import { Leads } from './pages/Leads';
import { Orders } from './pages/Orders';
import { Ledger } from './pages/Ledger';
import { Realtime } from './pages/Realtime';
import { Reports } from './pages/Reports';

const NAV: { path: string; label: string; icon: string; page: () => ReactNode }[] = [
  { path: '/', label: 'Dashboard', icon: '◧', page: () => <Dashboard /> },
  { path: '/bills', label: 'Bills', icon: '▤', page: () => <Bills /> },
  { path: '/inventory', label: 'Inventory', icon: '▦', page: () => <Inventory /> },
  { path: '/stock', label: 'Stock history', icon: '⇅', page: () => <StockHistory /> },
  { path: '/bookings', label: 'Bookings', icon: '▣', page: () => <Bookings /> },
  { path: '/leads', label: 'Leads', icon: '◎', page: () => <Leads /> },
  { path: '/orders', label: 'Orders', icon: '➜', page: () => <Orders /> },
  { path: '/ledger', label: 'Ledger', icon: '≡', page: () => <Ledger /> },
  { path: '/reports', label: 'Reports', icon: '▥', page: () => <Reports /> },
  { path: '/realtime', label: 'Realtime lab', icon: '⚡', page: () => <Realtime /> },
];

export function AdminShell() {
  const path = usePath();
  const current = NAV.find((n) => n.path === path) ?? NAV[0];
  return (
    <div className="app">
      <a href="#content" className="skip-link">
        Skip to content
      </a>
      <AdminWatchers />
      <aside className="sidebar" data-scroll-x>
        <div className="brand">
          <Logo /> <span>syncline</span>
          <span className="brand-tag">demo</span>
        </div>
        <nav aria-label="Main">
          <ul className="nav">
            {NAV.map((n) => (
              <li key={n.path}>
                <a
                  href={n.path}
                  className={n === current ? 'active' : ''}
                  aria-current={n === current ? 'page' : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(n.path);
                  }}
                >
                  <span className="nav-icon" aria-hidden="true">
                    {n.icon}
                  </span>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <TabRoleNote />
      </aside>
      <div className="main">
        <header className="topbar">
          <BranchSelect />
          <div className="topbar-right">
            <InstallButton />
            <ConnectionPill />
            <UserChip />
          </div>
        </header>
        <UpdateBanner />
        <OfflineBanner />
        <main id="content" tabIndex={-1}>
          {current.page()}
        </main>
      </div>
    </div>
  );
}

function TabRoleNote() {
  const s = useClientStatus();
  return (
    <div className="sidebar-foot">
      <span className={`role-dot role-${s.role}`} aria-hidden="true" />
      This tab is the <strong>{s.role === 'follower' ? 'follower' : 'leader'}</strong>
      <span className="muted"> · cursor {s.cursor}</span>
    </div>
  );
}

function BranchSelect() {
  const { branch, setBranch } = useWorkspace();
  const [id] = useState('branch-select');
  return (
    <div className="branch-select">
      <label htmlFor={id}>Branch</label>
      <select id={id} value={branch} onChange={(e) => setBranch(e.target.value)} data-testid="branch-select">
        <option value="all">All branches</option>
        {BRANCHES.map((b) => (
          <option key={b.id} value={b.id}>
            {b.name}
          </option>
        ))}
      </select>
    </div>
  );
}

/** Notifications for the whole admin workspace, whatever page is open. */
function AdminWatchers() {
  const toast = useToast();
  // The moment a product crosses its threshold (here or in any other tab or browser).
  useDocumentListener<Product>(
    'products',
    (e) => {
      const b = e.before;
      const a = e.after;
      if (!a || !b) return;
      if (b.stock >= b.threshold && a.stock < a.threshold) {
        toast(
          {
            tone: 'warning',
            kind: 'low-stock',
            title: `Low stock: ${a.name}`,
            body: `${branchName(a.branch)} has ${countOf(a.stock, a.unit)} left (threshold ${a.threshold}).`,
          },
          9000,
        );
      }
    },
    { types: ['update'] },
  );
  useEventListener('order:stage_change', (e) => {
    const d = e.data as { tab?: string; number?: string; to?: string; customer?: string; by?: string };
    if (d.tab === TAB_ID) return;
    toast({ tone: 'info', kind: 'order-stage', title: `${d.number} is now ${d.to}`, body: `${d.customer ?? ''} · changed by ${d.by ?? 'another tab'}` });
  });
  return null;
}
