// The injection patch, cached: the pods of one template (every replica a ReplicaSet creates) arrive
// at /mutate as the same JSON — no name, no uid yet — but for the name of their ServiceAccount
// token volume (random per pod: token-volume.ts), so they get the same patch, computed once.
// The key is everything the patch is computed from: the whole pod as sent (its JSON, cache-key.ts)
// with that one name abstracted, and the cache starts over when the injection configuration
// changes. Nothing a pod creator sets can make two different inputs share an entry (a forged
// pod-template-hash label changes the key like any other byte; a pod that differs from another
// in anything but the token volume's name has another key; a patch that mentions the token volume,
// which injection never writes today, is not kept under the abstract key), so a hit is byte for
// byte what a fresh computation gives (test/unit/admission-caches.test.ts).
// An entry is kept from its key's second sighting on (sightings.ts): pods seen once cost no copy.
// Bounded: at most PATCH_CACHE_SIZE entries and PATCH_CACHE_CHARS characters of keys and patches
// (~6 KB per typical entry); pods over MAX_CACHED_POD are computed every time.
import { injectPod, type InjectionConfig } from "./inject.ts";
import { jsonPatch, type Operation } from "./patch.ts";
import { cacheKey, ConfigStamp, deepFreeze } from "./cache-key.ts";
import { Lru } from "./lru.ts";
import { Sightings } from "./sightings.ts";
import { abstractTokenVolume } from "./token-volume.ts";

export const PATCH_CACHE_SIZE = 1000;
export const PATCH_CACHE_CHARS = 8 * 1024 * 1024;
/** Pods whose JSON is bigger than this are not cached (hashing them is most of the work anyway). */
export const MAX_CACHED_POD = 256 * 1024;

export interface InjectionPatch {
  /** Frozen when shared by the requests that hit the entry. */
  ops: readonly Operation[];
  /** The ops as an AdmissionReview carries them: base64 of their JSON. */
  encoded: string;
}

export class PatchCache {
  private readonly lru: Lru<string, InjectionPatch>;
  private readonly config = new ConfigStamp();
  private readonly sightings = new Sightings();
  /** False while the configuration itself mentions a token volume name (then the abstraction could not tell the two apart). */
  private abstract = true;
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
  patchFor(pod: any, cfg: InjectionConfig, reviewKey?: string): InjectionPatch {
    if (this.config.changed(cfg)) {
      this.lru.clear();
      this.sightings.clear();
      this.abstract = !this.config.mentions("kube-api-access-");
    }
    // A review key begins with a digit, a pod's JSON with "{", a long one's digest with "sha256:" (of a different text): the two never meet.
    const quick = reviewKey !== undefined ? this.lru.get(reviewKey) : undefined;
    if (quick) {
      this.hits++;
      return quick;
    }
    const json = JSON.stringify(pod);
    const abstracted = this.abstract && json.length <= MAX_CACHED_POD ? abstractTokenVolume(json, pod?.spec) : undefined;
    const key = json.length <= MAX_CACHED_POD ? cacheKey(abstracted?.key ?? json) : undefined;
    const hit = key !== undefined ? this.lru.get(key) : undefined;
    if (hit) {
      this.hits++;
      if (reviewKey !== undefined) this.lru.set(reviewKey, hit, reviewKey.length);
      return hit;
    }
    this.misses++;
    const ops = jsonPatch(pod, injectPod(pod, cfg));
    const text = JSON.stringify(ops);
    const patch: InjectionPatch = { ops, encoded: Buffer.from(text).toString("base64") };
    if (key === undefined || !this.sightings.again(key)) return patch;
    // A patch that names this pod's token volume is not another pod's patch.
    if (abstracted && text.includes(abstracted.name)) return patch;
    deepFreeze(ops);
    this.lru.set(key, patch, key.length + patch.encoded.length);
    if (reviewKey !== undefined) this.lru.set(reviewKey, patch, reviewKey.length);
    return patch;
  }
}
