/**
 * A least-recently-used cache over a Map (insertion order = recency order): `get` moves a hit to the
 * newest end, `set` evicts from the oldest end once `capacity` entries are held. Capacity 0 disables it
 * (every `get` misses, `set` stores nothing).
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`LRU capacity must be an integer >= 0, got ${capacity}`);
  }

  /** Entries held now. */
  get size(): number {
    return this.map.size;
  }

  /** The value for `key` (now the most recently used), or undefined. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  /** Whether `key` is held, without touching its recency. */
  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Store `value` as the most recently used entry, evicting the least recently used ones beyond capacity. */
  set(key: K, value: V): void {
    if (this.capacity === 0) return;
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as K;
      this.map.delete(oldest);
    }
  }

  /** Keys from least to most recently used. */
  keys(): K[] {
    return [...this.map.keys()];
  }

  clear(): void {
    this.map.clear();
  }
}
