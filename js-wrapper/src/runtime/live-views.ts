// Layer: js-wrapper. What the app observes: live queries, aggregates, single documents, and the
// document and event listeners. Each is an immutable snapshot that stays the same object until
// something it shows changes. The engine says what changed (an output); this routes it.
import type { EngineOutput, SyncDocument } from '../engine.js';
import type { SyncEngine } from '../engine.js';
import { deepFreeze, Subject } from '../observable.js';
import type {
  AggregateOptions, ChangedDocument, DocumentChange, LiveAggregate, LiveQuery, Observable, PublishedEvent, QueryOptions,
} from '../types.js';

export interface LiveViewsDeps {
  engine(): SyncEngine;
  /** The engine is gone (client closed): views stop asking it. */
  isClosed(): boolean;
}

interface QueryEntry {
  collection: string;
  /** A document of this collection changed: a refresh reads it again. */
  touch(id: string): void;
  refresh(): void;
}

export class LiveViews {
  private readonly queries = new Map<number, QueryEntry>();
  private readonly aggregates = new Map<number, { refresh(): void }>();
  private readonly docSubjects = new Map<string, Subject<SyncDocument | null>>();
  private readonly docListeners = new Set<(e: DocumentChange) => void>();
  private readonly changeListeners = new Set<(changes: readonly ChangedDocument[]) => void>();
  private readonly eventListeners = new Set<(e: PublishedEvent) => void>();

  constructor(private readonly deps: LiveViewsDeps) {}

  /** before/after of every change cross the wasm boundary only while a document listener needs
   * them; document subjects, queries and aggregates re-read what they show. */
  get wantsChangeDetail(): boolean {
    return this.docListeners.size > 0;
  }

  /** Routes an engine output to the views it touches. */
  apply(out: EngineOutput): void {
    for (const c of out.changes) {
      for (const q of this.queries.values()) if (q.collection === c.collection) q.touch(c.id);
      const subject = this.docSubjects.get(`${c.collection}/${c.id}`);
      if (subject) subject.set(this.frozenDoc(c.collection, c.id));
      // A listener added while this output is handled sees the next one: this one was made
      // without before/after.
      if (this.docListeners.size && c.before !== undefined && c.after !== undefined) {
        const type = c.before === null ? 'appear' : c.after === null ? 'disappear' : 'update';
        const ev: DocumentChange = deepFreeze({ type, collection: c.collection, id: c.id, before: c.before, after: c.after, pending: c.pending ?? false });
        for (const l of [...this.docListeners]) l(ev);
      }
    }
    // Which documents, not how: built from what every output carries, so it costs the engine
    // nothing more (no change detail) and a listener reads what it needs in one getMany.
    if (this.changeListeners.size && out.changes.length) {
      const changed = Object.freeze(out.changes.map((c) => Object.freeze({ collection: c.collection, id: c.id })));
      for (const l of [...this.changeListeners]) l(changed);
    }
    for (const id of out.queries) this.queries.get(id)?.refresh();
    for (const id of out.aggregates) this.aggregates.get(id)?.refresh();
    for (const e of out.events) for (const l of [...this.eventListeners]) l(deepFreeze(e as PublishedEvent));
  }

  frozenDoc<T>(collection: string, id: string): SyncDocument<T> | null {
    const d = this.deps.engine().get<T>(collection, id);
    return d ? deepFreeze(d) : null;
  }

  /** Several documents of one collection in one engine call, in the order asked. */
  frozenMany<T>(collection: string, ids: readonly string[]): readonly (SyncDocument<T> | null)[] {
    if (ids.length === 0) return Object.freeze([]);
    return deepFreeze(this.deps.engine().getMany<T>(collection, ids));
  }

  all<T>(collection: string): readonly SyncDocument<T>[] {
    return deepFreeze(this.deps.engine().documents<T>(collection));
  }

  /** Returns a function that removes the listener (true if it was there). */
  onDocumentChange(listener: (e: DocumentChange) => void): () => boolean {
    this.docListeners.add(listener);
    return () => this.docListeners.delete(listener);
  }

  /** Called once per engine output that changed documents, with their ids only. Unlike
   * onDocumentChange it does not make the engine produce before/after. */
  onChanges(listener: (changes: readonly ChangedDocument[]) => void): () => boolean {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onEvent(listener: (e: PublishedEvent) => void): () => boolean {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  document<T>(collection: string, id: string): Observable<SyncDocument<T> | null> {
    const key = `${collection}/${id}`;
    let s = this.docSubjects.get(key);
    if (!s) {
      s = new Subject<SyncDocument | null>(this.frozenDoc(collection, id));
      this.docSubjects.set(key, s);
    }
    const subject = s;
    return {
      getSnapshot: () => subject.getSnapshot() as SyncDocument<T> | null,
      subscribe: (l) => {
        // Re-register: the entry is dropped when the last listener leaves, and a later
        // subscriber to this same observable must get updates again.
        if (this.docSubjects.get(key) !== subject) {
          subject.set(this.frozenDoc(collection, id));
          this.docSubjects.set(key, subject);
        }
        const off = subject.subscribe(l);
        return () => {
          off();
          if (subject.listenerCount === 0) this.docSubjects.delete(key);
        };
      },
    };
  }

  query<T>(collection: string, options: QueryOptions): LiveQuery<T> {
    const engine = this.deps.engine();
    const spec: { collection: string; where?: string; orderBy?: string; limit?: number } = { collection };
    if (options.where) spec.where = options.where;
    if (options.orderBy) spec.orderBy = options.orderBy;
    if (options.limit !== undefined) spec.limit = options.limit;
    const id = engine.addQuery(spec);
    // The result keeps the documents it already has: a refresh reads the ordered ids and only
    // the documents that changed, so a large result costs little per change, and a document
    // that did not change keeps its (frozen) object from one snapshot to the next.
    let byId = new Map<string, SyncDocument<T>>();
    const changed = new Set<string>();
    const read = () => {
      const e = this.deps.engine();
      const r = e.queryIds(id);
      const need = r.ids.filter((x) => changed.has(x) || !byId.has(x));
      changed.clear();
      const fresh = need.length ? e.getMany<T>(collection, need) : [];
      const next = new Map<string, SyncDocument<T>>();
      fresh.forEach((d, i) => d && next.set(need[i]!, deepFreeze(d)));
      const docs: SyncDocument<T>[] = [];
      for (const x of r.ids) {
        const d = next.get(x) ?? byId.get(x);
        if (!d) continue;
        next.set(x, d);
        docs.push(d);
      }
      byId = next;
      return { docs: Object.freeze(docs) as readonly SyncDocument<T>[], total: r.total };
    };
    let current = read();
    const subject = new Subject<readonly SyncDocument<T>[]>(current.docs);
    let closed = false;
    this.queries.set(id, {
      collection,
      touch: (x) => {
        if (byId.has(x)) changed.add(x);
      },
      refresh: () => {
        current = read();
        subject.set(current.docs);
      },
    });
    return {
      getSnapshot: subject.getSnapshot,
      subscribe: subject.subscribe,
      get total() {
        return current.total;
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.queries.delete(id);
        if (!this.deps.isClosed()) this.deps.engine().removeQuery(id);
      },
    };
  }

  aggregate(collection: string, options: AggregateOptions): LiveAggregate {
    const spec: { collection: string; where?: string; groupBy?: string; sum?: string } = { collection };
    if (options.where) spec.where = options.where;
    if (options.groupBy) spec.groupBy = options.groupBy;
    if (options.sum) spec.sum = options.sum;
    const id = this.deps.engine().addAggregate(spec);
    const result = () => deepFreeze(this.deps.engine().aggregateResult(id));
    const subject = new Subject(result());
    let closed = false;
    this.aggregates.set(id, { refresh: () => subject.set(result()) });
    return {
      getSnapshot: subject.getSnapshot,
      subscribe: subject.subscribe,
      close: () => {
        if (closed) return;
        closed = true;
        this.aggregates.delete(id);
        if (!this.deps.isClosed()) this.deps.engine().removeAggregate(id);
      },
    };
  }
}
