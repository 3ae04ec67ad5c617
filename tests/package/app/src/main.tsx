import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { SyncProvider } from 'syncline/react';
import { App } from './App';

// The offline app shell (docs/api.md): production builds only, so the dev server stays plain.
if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch(() => {});
}

const token = localStorage.getItem('token') ?? '';
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SyncProvider
      options={{ url: location.origin, token, collections: ['todos'] }}
      fallback={(error) => <p id="fallback">{error ? `failed: ${error.code}` : 'Loading…'}</p>}
    >
      <App />
    </SyncProvider>
  </StrictMode>,
);
