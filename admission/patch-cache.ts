// The injection patch, cached: the pods of one template (every replica a ReplicaSet creates) arrive
// at /mutate as the same JSON — no name, no uid yet — so they get the same patch, computed once.
// The key is everything the patch is computed from: the whole pod as sent (its JSON, cache-key.ts),
// and the cache starts over when the injection configuration changes. Nothing a pod creator sets
// can make two different inputs share an entry (a forged pod-template-hash label changes the key
// like any other byte), so a hit is byte for byte what a fresh computation gives
// (test/unit/admission-caches.test.ts).
// Bounded: at most PATCH_CACHE_SIZE entries and PATCH_CACHE_CHARS characters of keys and patches
// (~6 KB per typical entry); pods over MAX_CACHED_POD are computed every time.
import { injectPod, type InjectionConfig } from "./inject.ts";
import { jsonPatch, type Operation } from "./patch.ts";
import { cacheKey, ConfigStamp, deepFreeze } from "./cache-key.ts";
import { Lru } from "./lru.ts";

export const PATCH_CACHE_SIZE = 1000;
export const PATCH_CACHE_CHARS = 8 * 1024 * 1024;
/** Pods whose JSON is bigger than this are not cached (hashing them is most of the work anyway). */
export const MAX_CACHED_POD = 256 * 1024;

export interface InjectionPatch {
  /** Frozen: shared by every request that hits the entry. */
  ops: readonly Operation[];
  /** The ops as an AdmissionReview carries them: base64 of their JSON. */
  encoded: string;
}

export class PatchCache {
  private readonly lru: Lru<string, InjectionPatch>;
  private readonly config = new ConfigStamp();
  hits = 0;
  misses = 0;

  constructor(max = PATCH_CACHE_SIZE, maxChars = PATCH_CACHE_CHARS) {
    this.lru = new Lru(max, maxChars);
  }

  get size(): number {
    return this.lru.size;
  }

  /** Characters held (keys and encoded patches). */
  get weight(): number {
    return this.lru.weight;
  }

  /**
   * The patch that injects the enforcer into `pod` under `cfg`; throws InjectionError as injectPod
   * does. `reviewKey` (review.ts), when given, is looked up first: the review's text holds the pod
   * whole, and a repeat of the same review needs no JSON of the pod. Reviews that differ outside
   * the pod (another user) still meet at the pod's own key, which then gets the review key as an alias.
   */
  patchFor(pod: unknown, cfg: InjectionConfig, reviewKey?: string): InjectionPatch {
    if (this.config.changed(cfg)) this.lru.clear();
    // A review key begins with a digit, a pod's JSON with "{", a long one's digest with "sha256:" (of a different text): the two never meet.
    const quick = reviewKey !== undefined ? this.lru.get(reviewKey) : undefined;
    if (quick) {
      this.hits++;
      return quick;
    }
    const key = podKey(pod);
    let patch = key !== undefined ? this.lru.get(key) : undefined;
    if (patch) this.hits++;
    else {
      this.misses++;
      const ops = jsonPatch(pod, injectPod(pod, cfg));
      patch = { ops: deepFreeze(ops), encoded: Buffer.from(JSON.stringify(ops)).toString("base64") };
      if (key !== undefined) this.lru.set(key, patch, key.length + patch.encoded.length);
    }
    if (reviewKey !== undefined && key !== undefined) this.lru.set(reviewKey, patch, reviewKey.length);
    return patch;
  }
}

function podKey(pod: unknown): string | undefined {
  const json = JSON.stringify(pod);
  return json.length <= MAX_CACHED_POD ? cacheKey(json) : undefined;
}
