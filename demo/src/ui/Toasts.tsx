// Layer: demo/ui. App-wide toasts. Lives outside the SyncProvider so a toast survives the client
// being re-created (branch or transport switch). Announced politely to screen readers.
import { createContext, useCallback, useContext, useMemo, useRef, useState } from 'react';
import type { ReactNode } from 'react';

export type ToastTone = 'info' | 'success' | 'warning' | 'danger';
export interface Toast {
  id: number;
  tone: ToastTone;
  title: string;
  body?: string;
  kind?: string;
}
type Push = (t: Omit<Toast, 'id'>, ms?: number) => void;

const ToastContext = createContext<Push>(() => {});
export const useToast = () => useContext(ToastContext);

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);
  const push = useCallback<Push>(
    (t, ms = 6000) => {
      const id = next.current++;
      setToasts((ts) => [...ts.slice(-4), { ...t, id }]);
      setTimeout(() => dismiss(id), ms);
    },
    [dismiss],
  );
  const value = useMemo(() => push, [push]);
  return (
    <ToastContext.Provider value={value}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.tone}`} data-kind={t.kind ?? t.tone}>
            <span className="toast-icon" aria-hidden="true">
              {t.tone === 'success' ? '✓' : t.tone === 'warning' ? '!' : t.tone === 'danger' ? '×' : 'i'}
            </span>
            <div className="toast-text">
              <strong>{t.title}</strong>
              {t.body && <span>{t.body}</span>}
            </div>
            <button className="toast-close" aria-label="Dismiss notification" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}
