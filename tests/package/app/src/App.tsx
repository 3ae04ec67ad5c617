import { useState } from 'react';
import type { DocumentChange, PublishedEvent, SyncDocument } from 'syncline';
import { SyncError } from 'syncline';
import { useCollection, useDocumentListener, useEventListener, useSyncStatus } from 'syncline/react';

export interface Todo {
  title: string;
  done: boolean;
}

function Row({ doc }: { doc: SyncDocument<Todo> }) {
  return (
    <li data-id={doc.id} data-pending={doc.pending ? 'true' : 'false'}>
      {doc.fields.title}
    </li>
  );
}

export function App() {
  const { data, insert, error } = useCollection<Todo>('todos', { orderBy: 'title' });
  const status = useSyncStatus();
  const [last, setLast] = useState<string>('');
  const [writeError, setWriteError] = useState<string>('');
  useDocumentListener<Todo>('todos', (e: DocumentChange<Todo>) => setLast(`${e.type}:${e.id}`));
  useEventListener('*', (e: PublishedEvent) => setLast(`event:${e.name}`));
  const add = () => {
    const title = `todo ${Date.now()}`;
    insert({ title, done: false }).catch((e: unknown) => setWriteError(e instanceof SyncError ? e.code : String(e)));
  };
  return (
    <main>
      <p id="status" data-connected={String(status.isConnected)} data-pending={String(status.pendingOperations)}>
        {status.isOnline ? "online" : "offline"}
      </p>
      {error && <p id="error">{error.code}</p>}
      {writeError && <p id="write-error">{writeError}</p>}
      <p id="last">{last}</p>
      <button id="add" onClick={add}>
        Add
      </button>
      <ul id="todos">
        {data.map((d) => (
          <Row key={d.id} doc={d} />
        ))}
      </ul>
    </main>
  );
}
