// Values loaded from the database, each used only while the database's change generation is current
// (the hot-reload bound lives in ChangeFeed). One handle's caches are shared by everything using it.
import type { Database } from './database';

interface Entry<V> {
  generation: number;
  value: Promise<V>;
}

export class GenerationCache<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    private readonly db: Database,
    private readonly load: (key: string) => Promise<V>,
    private readonly maxEntries = Infinity,
  ) {}

  async get(key: string): Promise<V> {
    const generation = await this.db.changes.current();
    const entry = this.entries.get(key);
    if (entry && entry.generation === generation) return entry.value;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    const fresh = { generation, value: this.load(key).then(remember) };
    this.entries.set(key, fresh);
    // A failed load is not cached: the next lookup tries again.
    fresh.value.catch(() => {
      if (this.entries.get(key) === fresh) this.entries.delete(key);
    });
    return fresh.value;
  }
}

/** Every object a generation cache loaded. They are shared by all its callers, so none is ever changed. */
const loaded = new WeakSet<object>();

function remember<V>(value: V): V {
  if (typeof value === 'object' && value !== null) loaded.add(value);
  return value;
}

/** Whether `value` was loaded by a generation cache: it stays as it is, and a newer generation makes a new one. */
export function loadedByCache(value: object): boolean {
  return loaded.has(value);
}

/** The one cache per database handle for `create` (keyed by the function, so callers share it). */
export function cacheFor<C extends object>(db: Database, create: (db: Database) => C): C {
  let caches = registry.get(db);
  if (!caches) {
    caches = new Map();
    registry.set(db, caches);
  }
  let cache = caches.get(create) as C | undefined;
  if (!cache) {
    cache = create(db);
    caches.set(create, cache);
  }
  return cache;
}

const registry = new WeakMap<Database, Map<unknown, object>>();
