// Layer: js-wrapper. What a tab does depends on its role, held as one object instead of checks
// spread through the runtime:
//  - StreamOwner (a single tab, or the leader): holds the stream, writes the shared replica,
//    answers followers' catch-up requests, tells them its status;
//  - Follower: applies the leader's frames, sends its own writes over HTTP, shows the leader's
//    connection status, catches up when it falls behind.
// A tab changes role by replacing the object (Client.becomeLeader / loseLeadership).
import type { Subscription, SyncEngine } from '../engine.js';
import type { TabMessage } from '../adapters/tabs.js';
import type { TabRole } from '../types.js';
import type { RecentFrames } from '../recent-frames.js';
import type { AuthGate } from './auth-gate.js';
import type { FollowerSync } from './follower-sync.js';
import type { PersistenceWriter } from './persistence-writer.js';
import type { SendRoute } from './send-loop.js';
import { readConnectionView, type ConnectionView } from './status.js';
import type { StreamSession } from './stream-session.js';

export interface RoleHost {
  readonly clientId: string;
  engine(): SyncEngine;
  post(m: TabMessage): void;
  readonly auth: AuthGate;
  readonly writer: PersistenceWriter;
  readonly follower: FollowerSync;
  readonly recent: RecentFrames;
  ownSubscription(): Subscription | null;
  /** When this tab last applied a server message (its own stream's, or forwarded). */
  lastSync(): number | null;
  broadcastStatus(): void;
  updateStatus(): void;
  background(task: Promise<unknown>): void;
}

export interface Role {
  readonly kind: TabRole;
  readonly ownsConnection: boolean;
  networkChanged(online: boolean): void;
  /** The page became visible, or the app asked to sync now. */
  retryNow(): void;
  forceSync(): void;
  sendRoute(): SendRoute;
  connectionView(): ConnectionView;
  /** A message from another tab that concerns this role. */
  heard(m: TabMessage): void;
  /** Sends a frame on this tab's stream (false: it has none open). */
  sendFrame(frame: string): boolean;
  dispose(): void;
}

export class StreamOwner implements Role {
  readonly ownsConnection = true;

  constructor(
    readonly kind: 'single' | 'leader',
    private readonly host: RoleHost,
    readonly stream: StreamSession,
  ) {}

  networkChanged(online: boolean): void {
    this.stream.setOnline(online);
  }

  retryNow(): void {
    this.stream.retryNow();
  }

  forceSync(): void {
    this.stream.retryNow();
  }

  sendRoute(): SendRoute {
    if (this.stream.state === 'connected') return this.stream.kind === 'websocket' ? 'stream' : 'http';
    // A final token refusal stopped the stream: writes still go, one by one, so each either
    // passes with a refreshed token or settles as `unauthorized`.
    return this.host.auth.isFinal ? 'http' : 'wait';
  }

  sendFrame(frame: string): boolean {
    return this.stream.send(frame);
  }

  connectionView(): ConnectionView {
    return {
      connection: this.stream.state,
      isConnected: this.stream.state === 'connected',
      attempt: this.stream.attempt,
      connectedSince: this.stream.connectedSince,
      lastSync: this.host.lastSync(),
      ...this.stream.latencyFigures,
      node: this.stream.node,
    };
  }

  heard(m: TabMessage): void {
    const h = this.host;
    if (m.t === 'catchUp') {
      const sub = h.ownSubscription();
      h.post({ t: 'caughtUp', from: h.clientId, to: m.from, id: m.id, frames: h.recent.since(m.cursor), ...(sub ? { sub } : {}) });
    } else if (m.t === 'hello') {
      h.broadcastStatus();
    }
  }

  dispose(): void {
    this.stream.stop();
  }
}

export class Follower implements Role {
  readonly kind = 'follower' as const;
  readonly ownsConnection = false;
  private leaderView: Record<string, unknown> | null = null;

  constructor(private readonly host: RoleHost) {}

  networkChanged(online: boolean): void {
    this.host.engine().setTransportReady(online);
  }

  retryNow(): void {
    /* the leader holds the stream */
  }

  forceSync(): void {
    this.host.background(this.host.follower.catchUp());
  }

  sendRoute(): SendRoute {
    return 'http';
  }

  sendFrame(): boolean {
    return false;
  }

  connectionView(): ConnectionView {
    const v = readConnectionView(this.leaderView);
    return { ...v, lastSync: this.host.lastSync() ?? v.lastSync };
  }

  heard(m: TabMessage): void {
    const h = this.host;
    if (m.t === 'frames') {
      h.follower.frames(m.frames, m.sub);
    } else if (m.t === 'caughtUp') {
      h.follower.caughtUp(m);
    } else if (m.t === 'status') {
      this.leaderView = m.status;
      h.updateStatus();
    } else if (m.t === 'resnapshot') {
      h.background(h.follower.catchUp(true));
    } else if (m.t === 'beat' && m.stored) {
      h.writer.leaderStoredThrough(m.stored);
    }
  }

  dispose(): void {
    /* nothing held */
  }
}
