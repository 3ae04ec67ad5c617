// Layer: demo/ui. Small presentational pieces shared by the pages.
import type { ReactNode } from 'react';
import { AnimatedNumber } from './AnimatedNumber';

export function PageHeader({ title, subtitle, actions }: { title: string; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-head">
      <div>
        <h1>{title}</h1>
        {subtitle && <p className="muted">{subtitle}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}

export function Stat({
  label,
  value,
  format,
  hint,
  tone = 'default',
  testId,
}: {
  label: string;
  value: number;
  format?: (n: number) => string;
  hint?: ReactNode;
  tone?: 'default' | 'good' | 'warn' | 'bad' | 'brand';
  testId?: string;
}) {
  return (
    <div className={`card stat stat-${tone}`} data-testid={testId}>
      <span className="stat-label">{label}</span>
      <strong className="stat-value">
        <AnimatedNumber value={value} format={format} />
      </strong>
      {hint && <span className="stat-hint">{hint}</span>}
    </div>
  );
}

export function Pill({ tone, children }: { tone: 'good' | 'warn' | 'bad' | 'info' | 'neutral' | 'brand'; children: ReactNode }) {
  return <span className={`pill pill-${tone}`}>{children}</span>;
}

export function StockBar({ stock, threshold, capacity }: { stock: number; threshold: number; capacity: number }) {
  const cap = Math.max(capacity, stock, 1);
  const pct = Math.max(0, Math.min(100, (stock / cap) * 100));
  const tpct = Math.min(100, (threshold / cap) * 100);
  const tone = stock <= 0 ? 'bad' : stock < threshold ? 'warn' : 'good';
  return (
    <div className="stockbar" role="meter" aria-valuemin={0} aria-valuemax={cap} aria-valuenow={stock} aria-label={`Stock ${stock} of ${cap}, threshold ${threshold}`}>
      <div className={`stockbar-fill stockbar-${tone}`} style={{ width: `${pct}%` }} />
      <div className="stockbar-threshold" style={{ left: `${tpct}%` }} title={`Threshold ${threshold}`} />
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}
