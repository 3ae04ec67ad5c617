// Layer: demo/ui. The one rule for notifications: toast only what changed while the user watches.
//
// A client that starts shows what it already has (the replica restored from local storage) and
// then catches up with the server: a snapshot on first sign-in, or the changes it missed since
// its cursor. All of that reaches the app as document changes too (`appear` for every bill of a
// snapshot, `update` for a bill paid yesterday), and none of it is news. What is news is a change
// the server commits after this client started watching.
//
// So: when the client starts, we ask the server for its head seq (GET /v1/health) once. Every
// change has a seq (a document's `version` is the seq of its last change; a delete's seq is in the
// event history; a custom event carries its own): a change at or below that head was committed
// before this session began and is catch-up; above it, it happened while the user was here. The
// decision waits until the head is known (offline at start: until the first connection), so a
// catch-up that arrives first is never mistaken for live. Nothing here depends on timing: a user
// who signs in one second after a bill was created gets no toast for it; a bill created one second
// after the page loaded does toast. Changes missed while the connection was down later in the
// session (a network blip, *Work offline*) arrive after the head and do toast: the user was here.
import { useEffect, useRef } from 'react';
import type { PublishedEvent, DocumentChange, SyncClient } from 'syncline';
import { useDocumentListener, useEventListener, useSyncClient } from 'syncline/react';

type Waiting = { seq: number; fire: () => void };

/** The session's starting point for one client: the server head when it started watching. */
class LiveGate {
  head: number | null = null;
  private waiting: Waiting[] = [];
  private asking = false;
  private off: (() => void) | null = null;

  constructor(private client: SyncClient) {
    this.ask();
    // Offline at start: ask again once the client reaches the server.
    this.off = client.statusStore.subscribe(() => {
      if (this.head === null && client.status.isConnected) this.ask();
    });
  }

  private ask(): void {
    if (this.asking || this.head !== null) return;
    this.asking = true;
    fetch(new URL('/v1/health', this.client.status.node))
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
      .then((h: { seq?: number }) => {
        if (typeof h.seq !== 'number') throw new Error('no seq');
        this.head = h.seq;
        this.off?.();
        this.off = null;
        const due = this.waiting;
        this.waiting = [];
        for (const w of due) if (w.seq > h.seq) w.fire();
      })
      .catch(() => {})
      .finally(() => (this.asking = false));
  }

  /** Calls `fire` if the change at `seq` happened after the session started. */
  decide(seq: number, fire: () => void): void {
    if (this.head !== null) {
      if (seq > this.head) fire();
    } else if (this.waiting.length < 500) this.waiting.push({ seq, fire });
  }
}

const gates = new WeakMap<SyncClient, LiveGate>();
export function gateOf(client: SyncClient): LiveGate {
  let g = gates.get(client);
  if (!g) gates.set(client, (g = new LiveGate(client)));
  return g;
}

/** The server's head seq when this client's session began, or null while it is not known yet:
 * changes at or below it are the initial load and catch-up, not news. */
export function sessionHead(client: SyncClient): number | null {
  return gateOf(client).head;
}

/** The seq of the change behind a document event: the document's version, or for a delete the
 * history entry the engine recorded for it (read once the change has been handled). */
function seqOf(client: SyncClient, e: DocumentChange, then: (seq: number) => void): void {
  const doc = e.type === 'disappear' ? null : client.collection(e.collection).get(e.id);
  if (doc && doc.version > 0) return then(doc.version);
  queueMicrotask(() => {
    const entries = client.events.getSnapshot().entries;
    for (let i = entries.length - 1; i >= 0; i--) {
      const h = entries[i];
      if (h.collection === e.collection && h.id === e.id && h.seq > 0) return then(h.seq);
    }
    then(client.status.cursor);
  });
}

/** useDocumentListener for notifications: only changes that other clients (or the server)
 * made while this session watches; the initial load and catch-up never reach `handler`. */
export function useLiveDocumentListener<T>(collection: string, handler: (e: DocumentChange<T>) => void, options: { types?: DocumentChange['type'][] } = {}): void {
  const client = useSyncClient();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => void gateOf(client), [client]);
  useDocumentListener<T>(
    collection,
    (e) => {
      const gate = gateOf(client);
      seqOf(client, e as DocumentChange, (seq) => gate.decide(seq, () => latest.current(e)));
    },
    { ...options, includePending: false },
  );
}

/** useEventListener for notifications: only custom events published while this session watches. */
export function useLiveEventListener(name: string | string[], handler: (e: PublishedEvent) => void): void {
  const client = useSyncClient();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => void gateOf(client), [client]);
  useEventListener(name, (e) => gateOf(client).decide(e.seq, () => latest.current(e)));
}
