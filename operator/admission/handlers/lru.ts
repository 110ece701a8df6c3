// A bounded least-recently-used map: the admission caches (patch-cache.ts, verdict-cache.ts) hold
// at most `max` entries whatever callers send, so a flood of distinct pods costs a fixed amount of
// memory. Map keeps insertion order, so the first key is the least recently used one.
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(readonly max: number) {
    if (!(max >= 1)) throw new Error(`an LRU needs room for at least one entry, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    // Most recently used last.
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}
