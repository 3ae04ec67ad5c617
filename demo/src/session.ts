// Layer: demo. The signed-in demo user, kept in localStorage so the app can start offline: the
// token is minted once by the demo-only route POST /v1/demo/token and reused until it expires.
import type { DemoUser, Role } from './model';

export interface Session {
  sub: string;
  role: Role;
  name: string;
  token: string;
  exp: number;
}

const KEY = 'syncline-demo:session';

function expiry(token: string): number {
  try {
    const body = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof body.exp === 'number' ? body.exp * 1000 : Date.now() + 3600_000;
  } catch {
    return Date.now() + 3600_000;
  }
}

export function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    if (!s || !s.token || s.exp < Date.now() + 60_000) return null;
    return s;
  } catch {
    return null;
  }
}

export async function signIn(user: DemoUser): Promise<Session> {
  const res = await fetch('/v1/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub: user.sub, role: user.role }),
  });
  if (res.status === 404) throw new Error('Demo sign-in is switched off on this server (demo_tokens is false).');
  if (!res.ok) throw new Error(`The server refused the sign-in (HTTP ${res.status}).`);
  const { token } = (await res.json()) as { token: string };
  const session: Session = { sub: user.sub, role: user.role, name: user.name, token, exp: expiry(token) };
  localStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function signOut(): void {
  localStorage.removeItem(KEY);
}

/** Per-browser preferences that shape the client (and so re-create it when they change). */
export function loadPref<T extends string>(key: string, fallback: T): T {
  return (localStorage.getItem(`syncline-demo:${key}`) as T | null) ?? fallback;
}
export function savePref(key: string, value: string): void {
  localStorage.setItem(`syncline-demo:${key}`, value);
}

/** Identifies this tab in published events, so a tab does not notify itself. */
export const TAB_ID = (() => {
  let id = sessionStorage.getItem('syncline-demo:tab');
  if (!id) {
    id = Math.random().toString(36).slice(2, 10);
    sessionStorage.setItem('syncline-demo:tab', id);
  }
  return id;
})();
