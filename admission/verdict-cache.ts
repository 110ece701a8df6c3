// RuntimeRule verdicts, cached: every replica of a workload brings the same pod spec, labels and
// annotations, so evaluatePod's answer is computed once per template, not once per pod.
// The key is everything the verdict is computed from as the pod sends it (kind, namespace, labels,
// annotations, pod spec: their JSON, cache-key.ts) with the name of the ServiceAccount token volume
// abstracted (random per pod, token-volume.ts: no rule decides on it; a verdict whose text names
// it is not kept under the abstract key), and the cache starts over when the injection
// configuration changes; an entry also records what it was computed against and is used only
// while that still holds:
//   - the namespace's RuntimeRules (names and spec objects: the informer replaces a changed
//     object, it never edits one in place — matcherOf and the policy compiler rely on it too),
//   - the scan index's version (any report added, changed or removed),
//   - the clock: until the next exemption of those rules expires.
// Only admissions are cached: a denial names the object (its generated name), and is rare. An entry
// is kept from its key's second sighting on (sightings.ts): pods seen once cost no copy.
// Bounded: VERDICT_CACHE_SIZE entries and VERDICT_CACHE_CHARS characters of keys; a verdict with
// warnings keeps its rule verdicts for Events.
import type { AdmissionVerdict } from "../policy/admission.ts";
import type { RuleRef } from "../policy/vulnerabilities.ts";
import type { ScanIndex } from "../scans/scan-index.ts";
import type { InjectionConfig } from "./inject.ts";
import { cacheKey, ConfigStamp } from "./cache-key.ts";
import { Lru } from "./lru.ts";
import { Sightings } from "./sightings.ts";
import { abstractTokenVolume } from "./token-volume.ts";

export const VERDICT_CACHE_SIZE = 1000;
export const VERDICT_CACHE_CHARS = 8 * 1024 * 1024;
/** Specs bigger than this are evaluated every time. */
export const MAX_CACHED_SPEC = 256 * 1024;

export interface VerdictInput {
  kind: string;
  namespace: string;
  labels: unknown;
  annotations: unknown;
  podSpec: unknown;
}

interface Entry {
  rules: string;
  scans: ScanIndex;
  scansVersion: number;
  validUntil: number;
  verdict: AdmissionVerdict;
}

const NO_WARNINGS: readonly string[] = Object.freeze([]);
let specSeq = 0;
const specIds = new WeakMap<object, number>();

export class VerdictCache {
  private readonly lru: Lru<string, Entry>;
  private readonly config = new ConfigStamp();
  private readonly sightings = new Sightings();
  /** False while the injection configuration mentions a token volume name (see patch-cache.ts). */
  private abstract = true;
  hits = 0;
  misses = 0;

  constructor(max = VERDICT_CACHE_SIZE, maxChars = VERDICT_CACHE_CHARS) {
    this.lru = new Lru(max, maxChars);
  }

  get size(): number {
    return this.lru.size;
  }

  /**
   * evaluate()'s verdict for this input, from the cache when nothing it depends on has changed.
   * `reviewKey` (review.ts), when given, is looked up first: the review's text holds the input
   * whole, and a repeat of the same review needs no JSON of the pod spec. Reviews that differ
   * outside the input (a pod's generated name) still meet at the input's key, which then gets the
   * review key as an alias.
   */
  verdict(input: VerdictInput, rules: RuleRef[], scans: ScanIndex, injection: InjectionConfig, now: Date, evaluate: () => AdmissionVerdict, reviewKey?: string): AdmissionVerdict {
    if (this.config.changed(injection)) {
      this.lru.clear();
      this.sightings.clear();
      this.abstract = !this.config.mentions("kube-api-access-");
    }
    const rulesKey = fingerprint(rules);
    const t = now.getTime();
    const valid = (e: Entry | undefined): e is Entry => !!e && e.rules === rulesKey && e.scans === scans && e.scansVersion === scans.version && t < e.validUntil;
    // A review key begins with a digit, the input's JSON with "[", a long one's digest with "sha256:" (of a different text).
    const quick = reviewKey !== undefined ? this.lru.get(reviewKey) : undefined;
    if (valid(quick)) {
      this.hits++;
      return quick.verdict;
    }
    const text = JSON.stringify([input.kind, input.namespace, input.labels ?? null, input.annotations ?? null, input.podSpec]);
    if (text.length > MAX_CACHED_SPEC) return this.miss(evaluate);
    const abstracted = this.abstract ? abstractTokenVolume(text, input.podSpec) : undefined;
    const key = cacheKey(abstracted?.key ?? text);
    let e = this.lru.get(key);
    if (valid(e)) this.hits++;
    else {
      const verdict = this.miss(evaluate);
      if (!verdict.allowed) {
        this.lru.delete(key);
        if (reviewKey !== undefined) this.lru.delete(reviewKey);
        return verdict;
      }
      if (!e && !this.sightings.again(key)) return verdict;
      // A verdict that names the token volume holds this pod's name: it is not another pod's answer.
      if (abstracted && verdict.warnings.length && JSON.stringify([verdict.warnings, verdict.message, verdict.rules]).includes(abstracted.name)) return verdict;
      const kept: AdmissionVerdict = verdict.warnings.length
        ? Object.freeze({ ...verdict, warnings: Object.freeze([...verdict.warnings]) as string[] })
        : Object.freeze({ allowed: true, warnings: NO_WARNINGS as string[], message: "", rules: [] });
      e = { rules: rulesKey, scans, scansVersion: scans.version, validUntil: nextExpiry(rules, t), verdict: kept };
      this.lru.set(key, e, key.length);
    }
    if (reviewKey !== undefined) this.lru.set(reviewKey, e, reviewKey.length);
    return e.verdict;
  }

  private miss(evaluate: () => AdmissionVerdict): AdmissionVerdict {
    this.misses++;
    return evaluate();
  }
}

/** The rules as the verdict saw them: names and spec identities. */
function fingerprint(rules: RuleRef[]): string {
  let out = "";
  for (const r of rules) {
    let id = specIds.get(r.spec);
    if (id === undefined) specIds.set(r.spec, (id = ++specSeq));
    out += `${r.namespace}/${r.name}#${id};`;
  }
  return out;
}

/** The first instant after `now` at which an exemption of these rules expires (verdicts change then). */
function nextExpiry(rules: RuleRef[], now: number): number {
  let next = Infinity;
  for (const r of rules) {
    for (const e of r.spec.vulnerabilities?.exemptions ?? []) {
      const t = Date.parse(e.expires);
      if (t > now && t < next) next = t;
    }
  }
  return next;
}
