// Layer: demo. Sign-in, then one SyncProvider per (user, branch, transport): changing the branch
// re-creates the client with a narrower server-side `where`, so the subscription itself changes.
import { useCallback, useMemo, useState } from 'react';
import type { ClientOptions, Transport } from 'syncline';
import { SyncProvider } from 'syncline/react';
import { AdminShell } from './AdminShell';
import { CustomerShell } from './CustomerShell';
import { branchWhere, DEMO_USERS } from './model';
import type { DemoUser } from './model';
import { loadPref, loadSession, savePref, signIn, signOut } from './session';
import type { Session } from './session';
import { ToastProvider } from './ui/Toasts';
import { ADMIN_COLLECTIONS, CUSTOMER_COLLECTIONS, WorkspaceContext } from './workspace';
import type { Workspace } from './workspace';
import { navigate } from './router';

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  return (
    <ToastProvider>
      {session ? (
        <WorkspaceRoot
          key={session.sub}
          session={session}
          onSignOut={() => {
            signOut();
            setSession(null);
            navigate('/');
          }}
        />
      ) : (
        <SignIn onSignedIn={setSession} />
      )}
    </ToastProvider>
  );
}

function WorkspaceRoot({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const admin = session.role === 'admin';
  const [branch, setBranchState] = useState<string>(() => (admin ? loadPref('branch', 'all') : 'all'));
  const [transport, setTransportState] = useState<Transport>(() => loadPref<Transport>('transport', 'sse'));
  const setBranch = useCallback((b: string) => {
    savePref('branch', b);
    setBranchState(b);
  }, []);
  const setTransport = useCallback((t: Transport) => {
    savePref('transport', t);
    setTransportState(t);
  }, []);
  const options = useMemo<ClientOptions>(
    () => ({
      url: location.origin,
      token: session.token,
      collections: admin ? ADMIN_COLLECTIONS : CUSTOMER_COLLECTIONS,
      where: branchWhere(branch),
      transport,
      // One replica per user and branch: a narrower subscription is a different dataset.
      name: `syncline-demo:${session.sub}:${branch}`,
      backoff: { baseMs: 250, capMs: 4000, heartbeatTimeoutMs: 40000 },
    }),
    [admin, branch, transport, session],
  );
  const ws = useMemo<Workspace>(
    () => ({ session, branch, setBranch, transport, setTransport, signOut: onSignOut }),
    [session, branch, setBranch, transport, setTransport, onSignOut],
  );
  return (
    <WorkspaceContext.Provider value={ws}>
      <SyncProvider options={options} fallback={(error) => <Loading error={error?.message ?? null} onSignOut={onSignOut} />}>
        {admin ? <AdminShell /> : <CustomerShell />}
      </SyncProvider>
    </WorkspaceContext.Provider>
  );
}

function Loading({ error, onSignOut }: { error: string | null; onSignOut: () => void }) {
  return (
    <div className="splash" aria-busy={!error}>
      <div className="brand brand-lg">
        <Logo /> syncline
      </div>
      {error ? (
        <div className="card splash-card" role="alert">
          <h2>Could not open your workspace</h2>
          <p className="muted">{error}</p>
          <button className="btn" onClick={onSignOut}>
            Back to sign-in
          </button>
        </div>
      ) : (
        <p className="muted">
          <span className="spinner" aria-hidden="true" /> Opening your workspace…
        </p>
      )}
    </div>
  );
}

export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="url(#lg)" />
      <defs>
        <linearGradient id="lg" x1="0" y1="0" x2="1" y2="1">
          <stop offset="0" stopColor="#6366f1" />
          <stop offset="1" stopColor="#0ea5e9" />
        </linearGradient>
      </defs>
      <path d="M9 12.5c0-2 1.6-3.5 3.6-3.5H23M23 9l-3-3M23 9l-3 3M23 19.5c0 2-1.6 3.5-3.6 3.5H9M9 23l3-3M9 23l3 3" fill="none" stroke="#fff" strokeWidth="2.4" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const go = async (u: DemoUser) => {
    setBusy(u.sub);
    setError(null);
    try {
      onSignedIn(await signIn(u));
    } catch (e) {
      setError(navigator.onLine ? (e as Error).message : 'You are offline. Sign in once while online; after that the app opens offline.');
    } finally {
      setBusy(null);
    }
  };
  return (
    <div className="signin">
      <section className="signin-hero">
        <div className="brand brand-lg">
          <Logo /> syncline
        </div>
        <h1>Realtime that survives the real world.</h1>
        <p>
          Bills, stock, bookings and orders that update live in every tab, keep working offline and sync exactly once when the
          network returns. This demo runs on the <code>syncline</code> package against <code>syncline-server</code>.
        </p>
        <ul className="signin-points">
          <li>Local replica in IndexedDB · optimistic writes · durable outbox</li>
          <li>One connection per browser, shared by all tabs</li>
          <li>Server-side scoping: customers only ever receive their own data</li>
        </ul>
      </section>
      <section className="signin-panel card" aria-labelledby="signin-title">
        <h2 id="signin-title">Sign in as a demo user</h2>
        <p className="muted">No password: the demo server issues a token for the role you pick.</p>
        <ul className="user-list">
          {DEMO_USERS.map((u) => (
            <li key={u.sub}>
              <button className="user-btn" data-user={u.sub} onClick={() => go(u)} disabled={busy !== null}>
                <span className={`avatar avatar-${u.role}`} aria-hidden="true">
                  {u.name
                    .split(' ')
                    .map((p) => p[0])
                    .join('')}
                </span>
                <span className="user-text">
                  <strong>{u.name}</strong>
                  <span>{u.title}</span>
                </span>
                <span className="user-go" aria-hidden="true">
                  {busy === u.sub ? <span className="spinner" /> : '→'}
                </span>
              </button>
            </li>
          ))}
        </ul>
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <p className="fineprint">Tip: sign in as the admin in one window and as Ana in another (or a private window) to watch bills arrive live.</p>
      </section>
    </div>
  );
}
