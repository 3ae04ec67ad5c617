// Layer: demo/ui. The frame around every page: connection pill, install button, update banner,
// user menu. Shared by the admin and customer shells.
import { useConnectionHealth } from 'syncline/react';
import { applyUpdate, promptInstall, usePwa } from '../pwa';
import { navigate } from '../router';
import { useClientStatus, useWorkspace } from '../workspace';

export function ConnectionPill() {
  const health = useConnectionHealth();
  const s = useClientStatus();
  const label =
    health.status === 'healthy'
      ? `Live · ${s.transport === 'websocket' ? 'WebSocket' : 'SSE'}`
      : health.status === 'disconnected'
        ? 'Offline'
        : health.status === 'connecting'
          ? 'Connecting…'
          : 'Reconnecting…';
  return (
    <button
      className={`conn conn-${health.status}`}
      data-status={health.status}
      data-testid="connection"
      onClick={() => navigate('/realtime')}
      title={health.error ? `${health.error.code}: ${health.error.message}` : 'Open the realtime panel'}
    >
      <span className="conn-dot" aria-hidden="true" />
      <span>{label}</span>
      {s.pendingOperations > 0 && (
        <span className="conn-pending" data-testid="pending-count">
          {s.pendingOperations} pending
        </span>
      )}
    </button>
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
