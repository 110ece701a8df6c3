// Which cache keys were seen before: the admission caches keep an entry from its key's second
// sighting on, so a flood of pods that each come once (or a cluster whose pods all differ) costs
// a note each, not a frozen copy and an eviction. The keys themselves are noted (a fingerprint
// would let pods that differ in a few bytes, like the templates of two ReplicaSets, pass for one;
// the lookup reuses the hash V8 keeps on the string). Bounded: after MAX_SIGHTINGS keys or
// MAX_SIGHTING_CHARS characters the memory starts over.
export const MAX_SIGHTINGS = 4096;
export const MAX_SIGHTING_CHARS = 4 * 1024 * 1024;

export class Sightings {
  private readonly seen = new Set<string>();
  private chars = 0;

  /** True when `key` was noted before; otherwise notes it and returns false. */
  again(key: string): boolean {
    if (this.seen.has(key)) return true;
    if (this.seen.size >= MAX_SIGHTINGS || this.chars + key.length > MAX_SIGHTING_CHARS) this.clear();
    this.seen.add(key);
    this.chars += key.length;
    return false;
  }

  clear(): void {
    this.seen.clear();
    this.chars = 0;
  }
}
