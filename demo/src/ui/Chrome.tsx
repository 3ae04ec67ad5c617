// Layer: demo/ui. The frame around every page: connection pill, install button, update banner,
// user menu. Shared by the admin and customer shells.
import { useClock } from './useClock';
import { useConnectionHealth } from 'syncline/react';
import { relTime } from '../model';
import { applyUpdate, promptInstall, usePwa } from '../pwa';
import { navigate } from '../router';
import { useClientStatus, useWorkspace } from '../workspace';

/** The connection as the user needs it: state and transport, the measured round trip, the
 * writes of this browser (all its tabs) still on their way, and when data last arrived. */
export function ConnectionPill() {
  const health = useConnectionHealth();
  const s = useClientStatus();
  const now = useClock(1000, 5000);
  const label =
    health.status === 'healthy'
      ? 'Live'
      : health.status === 'disconnected'
        ? 'Offline'
        : health.status === 'connecting'
          ? 'Connecting…'
          : 'Reconnecting…';
  const latency = health.status === 'healthy' && health.latencyMs != null ? `${Math.round(health.latencyMs)} ms` : null;
  const synced = s.lastSync ? relTime(Math.min(s.lastSync, now), now) : 'never';
  return (
    <div className="conn-group">
      <button
        className={`conn conn-${health.status}`}
        data-status={health.status}
        data-testid="connection"
        onClick={() => navigate('/realtime')}
        title={health.error ? `${health.error.code}: ${health.error.message}` : 'Open the realtime panel'}
      >
        <span className="conn-dot" aria-hidden="true" />
        <span>{label}</span>
        {health.status === 'healthy' && <span className="conn-transport hide-sm">{s.transport === 'websocket' ? 'WebSocket' : 'SSE'}</span>}
        {latency && (
          <span className="conn-latency" data-testid="latency" title="Measured round trip to the server">
            {latency}
          </span>
        )}
        {s.pendingOperations > 0 && (
          <span className="conn-pending" data-testid="pending-count" title="Changes made in this browser (any tab) that the server has not confirmed yet">
            {s.pendingOperations} pending
          </span>
        )}
      </button>
      <span className="conn-synced" data-testid="last-synced" title={s.lastSync ? new Date(s.lastSync).toLocaleString() : 'Nothing received from the server yet'}>
        <span className="hide-sm">Synced </span>
        {synced}
      </span>
    </div>
  );
}

export function InstallButton() {
  const { install } = usePwa();
  if (!install) return null;
  return (
    <button className="btn btn-ghost btn-sm" onClick={() => promptInstall()}>
      Install app
    </button>
  );
}

export function UpdateBanner() {
  const { waiting } = usePwa();
  if (!waiting) return null;
  return (
    <div className="banner" role="status" data-testid="update-banner">
      <span>A new version of the demo is available.</span>
      <button className="btn btn-sm" onClick={applyUpdate}>
        Reload to update
      </button>
    </div>
  );
}

export function OfflineBanner() {
  const health = useConnectionHealth();
  const s = useClientStatus();
  if (health.status !== 'disconnected' && health.status !== 'error') return null;
  return (
    <div className="banner banner-muted" role="status" data-testid="offline-banner">
      <span>
        {health.status === 'disconnected' ? 'You are offline.' : 'The server cannot be reached right now.'} You can keep working:
        {s.pendingOperations > 0 ? ` ${s.pendingOperations} change${s.pendingOperations === 1 ? '' : 's'} will be sent` : ' changes are sent'} when the
        connection returns.
      </span>
    </div>
  );
}

export function UserChip() {
  const { session, signOut } = useWorkspace();
  return (
    <div className="userchip">
      <span className={`avatar avatar-sm avatar-${session.role}`} aria-hidden="true">
        {session.name
          .split(' ')
          .map((p) => p[0])
          .join('')}
      </span>
      <span className="userchip-name">
        <strong>{session.name}</strong>
        <span>{session.role === 'admin' ? 'Admin' : 'Customer'}</span>
      </span>
      <button className="btn btn-ghost btn-sm" onClick={signOut} data-testid="sign-out">
        Sign out
      </button>
    </div>
  );
}
