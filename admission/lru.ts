// A bounded map that evicts what was not used recently (second chance, "CLOCK"): the admission
// caches (patch-cache.ts, verdict-cache.ts) hold at most `max` entries and at most `maxWeight` in
// total (their characters), whatever callers send, so a flood of distinct pods costs a fixed
// amount of memory. A hit only marks its entry (no reordering on the request path); eviction takes
// the oldest entry, giving marked ones another round at the end of the Map's insertion order.
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; weight: number; used: boolean }>();
  private total = 0;
  constructor(
    readonly max: number,
    readonly maxWeight = Infinity,
  ) {
    if (!(max >= 1)) throw new Error(`an LRU needs room for at least one entry, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  /** The summed weight of the entries held. */
  get weight(): number {
    return this.total;
  }

  /** The values held, oldest first. */
  *values(): IterableIterator<V> {
    for (const e of this.map.values()) yield e.value;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    e.used = true;
    return e.value;
  }

  /** Adds or replaces; an entry heavier than maxWeight is not kept. */
  set(key: K, value: V, weight = 1): void {
    this.delete(key);
    if (weight > this.maxWeight) return;
    this.map.set(key, { value, weight, used: false });
    this.total += weight;
    while (this.map.size > this.max || this.total > this.maxWeight) {
      const [oldest, e] = this.map.entries().next().value as [K, { value: V; weight: number; used: boolean }];
      this.map.delete(oldest);
      if (e.used && oldest !== key) {
        e.used = false;
        this.map.set(oldest, e);
      } else this.total -= e.weight;
    }
  }

  delete(key: K): void {
    const e = this.map.get(key);
    if (e === undefined) return;
    this.map.delete(key);
    this.total -= e.weight;
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
