import { useMemo, useState } from 'react';
import type { DocumentChange, PublishedEvent, SyncDocument } from 'syncline';
import { SyncError } from 'syncline';
import { useCollection, useDocumentListener, useEventListener, useSql, useSyncClient, useSyncStatus } from 'syncline/react';
import { attachSql } from 'syncline/sqlite';

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

// SQL over the replica: SQLite's worker and wasm come from the installed package, through Vite.
function SqlCount() {
  const client = useSyncClient();
  const db = useMemo(() => attachSql(client, { schema: { todos: { title: 'text', done: 'boolean' } } }), [client]);
  const { rows, error } = useSql<{ n: number; open: number }>('SELECT count(*) AS n, sum(done = 0) AS open FROM todos');
  return <p id="sql-count" data-n={rows[0]?.n ?? ''} data-storage={db.info?.storage ?? ''}>{error ? error.code : ''}</p>;
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
      <SqlCount />
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
