// Rescan judgements, cached: the replicas of a workload have the same spec, so what the
// RuntimeRules say about it (evaluate.ts judge) is computed once per template, not once per pod.
// The key is what a judgement reads of the pod: its namespace and its pod-security spec object
// (operator/cache/pods.ts gives the pods of one template one shared, frozen object), and how
// much of its init containers Tenet's own injection accounts for. An entry is used only while
// what it was computed against still holds:
//   - the rules that select the pod (names and spec objects: the informer replaces a changed
//     RuntimeRule, it never edits one; selection is re-checked per pod, from its labels),
//   - the scan index and its version (any report added, changed or removed),
//   - the clock: until the next exemption of those rules expires.
// Per-pod state (quarantine and release annotations, signal responses, a missing enforcer) is
// not part of a judgement: planPosture decides it for each pod. Bounded: JUDGEMENT_CACHE_SIZE
// entries, keys of a few dozen characters.
import { Lru } from "../../admission/lru.ts";
import { matcherOf } from "../../policy/selector.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import type { ScanIndex } from "../../scans/scan-index.ts";
import type { CachedPod } from "../cache/pods.ts";
import { judge, type Judgement } from "./evaluate.ts";

export const JUDGEMENT_CACHE_SIZE = 2000;

interface Entry {
  rules: string;
  scans: ScanIndex;
  scansVersion: number;
  validUntil: number;
  judgement: Judgement;
}

export class JudgementCache {
  private readonly lru: Lru<string, Entry>;
  private readonly ids = new WeakMap<object, number>();
  private seq = 0;
  hits = 0;
  misses = 0;

  constructor(max = JUDGEMENT_CACHE_SIZE) {
    this.lru = new Lru(max);
  }

  get size(): number {
    return this.lru.size;
  }

  /** judge()'s answer for this pod, from the cache when nothing it depends on has changed. */
  judgement(pod: CachedPod, rules: RuleRef[], scans: ScanIndex, now: Date, stripped: 0 | 1 | 2): Judgement {
    // A pod without its own security object (hand-made in tests) has nothing to share.
    if (!pod.security) return this.miss(pod, rules, scans, now, stripped);
    const ns = pod.metadata.namespace;
    let selected = "";
    for (const r of rules) if (r.namespace === ns && matcherOf(r.spec)(pod.metadata.labels)) selected += `${r.name}#${this.id(r.spec)};`;
    const key = `${ns}/${this.id(pod.security)}/${stripped}`;
    const t = now.getTime();
    const e = this.lru.get(key);
    if (e && e.rules === selected && e.scans === scans && e.scansVersion === scans.version && t < e.validUntil) {
      this.hits++;
      return e.judgement;
    }
    const judgement = this.miss(pod, rules, scans, now, stripped);
    this.lru.set(key, { rules: selected, scans, scansVersion: scans.version, validUntil: judgement.nextExpiry ?? Infinity, judgement });
    return judgement;
  }

  private miss(pod: CachedPod, rules: RuleRef[], scans: ScanIndex, now: Date, stripped: 0 | 1 | 2): Judgement {
    this.misses++;
    return judge(pod, rules, scans, now, stripped);
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = ++this.seq));
    return id;
  }
}
