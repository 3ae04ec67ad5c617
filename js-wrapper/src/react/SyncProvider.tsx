// Layer: js-wrapper/react. Puts a SyncClient in React context: either one the app created
// (`client`), or one this component creates from `options` and closes on unmount. Creating
// happens in an effect, so server rendering shows `fallback` and touches no browser API.
import { useEffect, useRef, useState } from 'react';
import type { ReactElement, ReactNode } from 'react';
import { createClient } from '../client.js';
import type { SyncError } from '../errors.js';
import type { ClientOptions, SyncClient } from '../types.js';
import { toSyncError } from './shared.js';
import { useLatest } from './useLatest.js';
import { SyncClientContext } from './useSyncClient.js';

export interface SyncProviderWithClientProps {
  /** A client from `await createClient(...)`; the app owns it and closes it. */
  client: SyncClient;
  options?: undefined;
  fallback?: undefined;
  onError?: undefined;
  children?: ReactNode;
}

export interface SyncProviderWithOptionsProps {
  /**
   * Options for `createClient`. The client is re-created only when a value in them changes
   * (compared by content, so an inline object is fine); a `token` function is always called
   * through its latest version.
   */
  options: ClientOptions;
  client?: undefined;
  /** Rendered until the client is ready; as a function it also receives a creation error. */
  fallback?: ReactNode | ((error: SyncError | null) => ReactNode);
  /** Called when creating the client fails (e.g. `storage`, wasm load failure). */
  onError?: (error: SyncError) => void;
  children?: ReactNode;
}

export type SyncProviderProps = SyncProviderWithClientProps | SyncProviderWithOptionsProps;

/**
 * ```tsx
 * // Either create the client yourself (top-level await, a loader, ...):
 * const client = await createClient({ url: 'http://localhost:8080', token, collections: ['todos'] });
 * createRoot(el).render(<SyncProvider client={client}><App /></SyncProvider>);
 *
 * // or let the provider create it and close it on unmount:
 * createRoot(el).render(
 *   <SyncProvider options={{ url: 'http://localhost:8080', token, collections: ['todos'] }} fallback={<p>Loading…</p>}>
 *     <App />
 *   </SyncProvider>,
 * );
 * ```
 */
export function SyncProvider(props: SyncProviderProps): ReactElement {
  if (props.client !== undefined) {
    return <SyncClientContext.Provider value={props.client}>{props.children}</SyncClientContext.Provider>;
  }
  return <OwnedClientProvider {...props} />;
}

/** One createClient call, shared by the StrictMode unmount/remount cycle of one provider. */
interface Creation {
  readonly key: string;
  readonly client: Promise<SyncClient>;
  closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settles once the client is closed (or failed to be created); set by dispose(). */
  closed: Promise<void> | undefined;
}

function dispose(c: Creation): Promise<void> {
  if (c.closeTimer !== undefined) clearTimeout(c.closeTimer);
  c.closeTimer = undefined;
  c.closed ??= c.client.then(
    (client) => client.close().catch(() => undefined),
    () => undefined,
  );
  return c.closed;
}

/** Options compared by content; functions (the token getter) do not count. */
function optionsKey(options: ClientOptions): string {
  return JSON.stringify(options, (_key, value: unknown) => (typeof value === 'function' ? '[function]' : value));
}

type State = { key: string; client: SyncClient | null; error: SyncError | null };

function OwnedClientProvider({ options, fallback, onError, children }: SyncProviderWithOptionsProps): ReactElement {
  const key = optionsKey(options);
  const latestOptions = useLatest(options);
  const latestOnError = useLatest(onError);
  const creation = useRef<Creation | null>(null);
  const [state, setState] = useState<State>({ key, client: null, error: null });

  useEffect(() => {
    let c = creation.current;
    if (c !== null && c.key === key && c.closed === undefined) {
      // StrictMode (or a fast remount) ran our cleanup and then this effect again: keep the
      // client instead of opening a second connection and IndexedDB handle.
      if (c.closeTimer !== undefined) clearTimeout(c.closeTimer);
      c.closeTimer = undefined;
    } else {
      // A previous client with other options closes first, so two clients never share the
      // storage namespace or the tab's leadership lock at once.
      const previous = c === null ? Promise.resolve() : dispose(c);
      const opts = withLatestToken(latestOptions.current, () => latestOptions.current.token);
      c = { key, client: previous.then(() => createClient(opts)), closeTimer: undefined, closed: undefined };
      creation.current = c;
    }
    const current = c;
    let active = true;
    current.client.then(
      (client) => {
        if (active) setState({ key, client, error: null });
      },
      (e: unknown) => {
        if (!active) return;
        const error = toSyncError(e);
        setState({ key, client: null, error });
        latestOnError.current?.(error);
      },
    );
    return () => {
      active = false;
      // Deferred by one macrotask: a StrictMode remount in the same commit cancels it.
      current.closeTimer = setTimeout(() => {
        current.closeTimer = undefined;
        void dispose(current);
        if (creation.current === current) creation.current = null;
      }, 0);
    };
  }, [key, latestOptions, latestOnError]);

  const ready = state.key === key ? state : { key, client: null, error: null };
  if (ready.client !== null) {
    return <SyncClientContext.Provider value={ready.client}>{children}</SyncClientContext.Provider>;
  }
  return <>{typeof fallback === 'function' ? fallback(ready.error) : fallback}</>;
}

// The client keeps the token getter it was created with; route it to the latest prop so an
// inline arrow function does not force a reconnect on every render.
function withLatestToken(options: ClientOptions, currentToken: () => ClientOptions['token']): ClientOptions {
  if (typeof options.token !== 'function') return options;
  return {
    ...options,
    token: () => {
      const t = currentToken();
      return typeof t === 'function' ? t() : (t ?? '');
    },
  };
}
