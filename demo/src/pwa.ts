// Layer: demo. Progressive Web App glue: registers the service worker (production builds only),
// exposes "an update is waiting" and "the app can be installed" as tiny stores for the UI.
import { useSyncExternalStore } from 'react';

interface InstallPromptEvent extends Event {
  prompt(): Promise<void>;
  userChoice: Promise<{ outcome: 'accepted' | 'dismissed' }>;
}

const state = {
  waiting: null as ServiceWorker | null,
  install: null as InstallPromptEvent | null,
  ready: false,
};
let snapshot = { ...state };
const listeners = new Set<() => void>();
const emit = () => {
  snapshot = { ...state };
  listeners.forEach((l) => l());
};

export function usePwa() {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => snapshot,
  );
}

export function applyUpdate(): void {
  if (!state.waiting) return;
  navigator.serviceWorker.addEventListener('controllerchange', () => location.reload(), { once: true });
  state.waiting.postMessage({ type: 'SKIP_WAITING' });
}

export async function promptInstall(): Promise<void> {
  const e = state.install;
  if (!e) return;
  state.install = null;
  emit();
  await e.prompt();
}

export function registerPwa(): void {
  window.addEventListener('beforeinstallprompt', (e) => {
    e.preventDefault();
    state.install = e as InstallPromptEvent;
    emit();
  });
  window.addEventListener('appinstalled', () => {
    state.install = null;
    emit();
  });
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  const watch = (reg: ServiceWorkerRegistration) => {
    const track = (w: ServiceWorker | null) => {
      if (!w) return;
      const check = () => {
        // "installed" while another worker controls the page = a new version is waiting.
        if (w.state === 'installed' && navigator.serviceWorker.controller) {
          state.waiting = w;
          emit();
        }
      };
      check();
      w.addEventListener('statechange', check);
    };
    track(reg.waiting);
    track(reg.installing);
    reg.addEventListener('updatefound', () => track(reg.installing));
  };
  navigator.serviceWorker
    .register('/sw.js')
    .then((reg) => {
      watch(reg);
      // Look for a new deployment now and then while the app stays open.
      setInterval(() => reg.update().catch(() => {}), 60_000);
      return navigator.serviceWorker.ready;
    })
    .then(() => {
      state.ready = true;
      emit();
    })
    .catch(() => {});
}
