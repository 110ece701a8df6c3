// The injection patch, cached: the pods of one template (every replica a ReplicaSet creates) arrive
// at /mutate as the same JSON — no name, no uid yet — so they get the same patch, computed once.
// The key is a SHA-256 of everything the patch is computed from: the whole pod as sent and the
// whole injection configuration. Nothing a pod creator sets can make two different inputs share an
// entry (a forged pod-template-hash label changes the digest like any other byte), so a hit is
// byte for byte what a fresh computation gives (test/unit/admission-caches.test.ts).
// Bounded: at most PATCH_CACHE_SIZE entries of at most MAX_CACHED_PATCH bytes each (16 MB in the
// worst case, ~3 MB for typical 3 KB patches); bigger pods and patches are computed every time.
import { createHash } from "node:crypto";
import { injectPod, type InjectionConfig } from "../inject.ts";
import { jsonPatch, type Operation } from "../patch.ts";
import { Lru } from "./lru.ts";

export const PATCH_CACHE_SIZE = 1000;
/** Pods whose JSON is bigger than this are not cached (hashing them is most of the work anyway). */
export const MAX_CACHED_POD = 256 * 1024;
/** Base64 patches bigger than this are not cached. */
export const MAX_CACHED_PATCH = 16 * 1024;

export interface InjectionPatch {
  /** Frozen: shared by every request that hits the entry. */
  ops: readonly Operation[];
  /** The ops as an AdmissionReview carries them: base64 of their JSON. */
  encoded: string;
}

export class PatchCache {
  private readonly lru: Lru<string, InjectionPatch>;
  hits = 0;
  misses = 0;

  constructor(max = PATCH_CACHE_SIZE) {
    this.lru = new Lru(max);
  }

  get size(): number {
    return this.lru.size;
  }

  /** The patch that injects the enforcer into `pod` under `cfg`; throws InjectionError as injectPod does. */
  patchFor(pod: unknown, cfg: InjectionConfig): InjectionPatch {
    const podJSON = JSON.stringify(pod);
    const key = podJSON.length <= MAX_CACHED_POD ? createHash("sha256").update(JSON.stringify(cfg)).update("\n").update(podJSON).digest("base64") : undefined;
    const hit = key !== undefined ? this.lru.get(key) : undefined;
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const ops = jsonPatch(pod, injectPod(pod, cfg));
    const patch: InjectionPatch = { ops: deepFreeze(ops), encoded: Buffer.from(JSON.stringify(ops)).toString("base64") };
    if (key !== undefined && patch.encoded.length <= MAX_CACHED_PATCH) this.lru.set(key, patch);
    return patch;
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}
