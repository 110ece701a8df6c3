// The posture of one running pod, as a pure function: the same evaluatePod the validating webhook
// uses (one source of truth for thresholds, exemptions and pod security), plus the check that an
// opted-in pod really has its enforcer. Also decides quarantine and release from the pod's labels
// and annotations, so the whole decision is derived from cluster state.
import { createHash } from "node:crypto";
import { evaluatePod } from "../../policy/admission.ts";
import type { ScanIndex } from "../../scans/scan-index.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import { CAPTURE_CONTAINER } from "../../admission/capture.ts";
import { EXEMPT_NAMESPACES, isTenetCapture, isTenetEnforcer, shouldInject, type InjectionConfig } from "../../admission/inject.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { JudgementCache } from "./judgements.ts";
import { ENFORCER_CONTAINER, QUARANTINE_LABEL, QUARANTINED_BY_ANNOTATION, RELEASE_ANNOTATION, RELEASED_ANNOTATION, SIGNAL_ANNOTATION } from "../../common/names.ts";

export type Posture = "clean" | "warn" | "violating" | "unscanned";

/** Compact, deterministic (no timestamps): equal details mean no write. */
export interface PostureDetail {
  /** the rule that decided the posture (the first objecting one), "ns/name" */
  rule?: string;
  reason: "WithinThresholds" | "Exempted" | "Unscanned" | "OverThreshold" | "PodSecurity" | "UnscannedDenied" | "EnforcerMissing" | "RuntimeSignal";
  enforcement?: "enforce" | "audit";
  /** counted vulnerabilities (after exemptions) of the deciding rule, non-zero severities only */
  counts?: Record<string, number>;
  /** every rule that objects to the pod */
  rules?: string[];
  message: string;
}

export interface PostureInput {
  pod: CachedPod;
  rules: RuleRef[];
  scans: ScanIndex;
  namespaceLabels: Record<string, string> | undefined;
  now: Date;
  /** Tenet's injection settings: the exact injected sidecar is not judged as part of the workload (as in the validating webhook). */
  injection: InjectionConfig;
  /** Judgements shared by pods of one template (judgements.ts); without it every pod is judged afresh. */
  judgements?: Pick<JudgementCache, "judgement">;
}

export interface PosturePlan {
  /** undefined: no RuntimeRule applies and nothing is wrong, so the pod carries no posture */
  posture?: Posture;
  detail?: PostureDetail;
  /** JSON.stringify(detail): the tenet.dev/posture-detail annotation */
  detailJSON?: string;
  /** the pod should be quarantined now (enforce mode, violating, not released for this violation) */
  quarantine: boolean;
  /** a quarantine is in place and nothing releases it */
  keepQuarantine: boolean;
  /** tenet.dev/release was set by a person and the pod is (or was) quarantined */
  explicitRelease: boolean;
  /** value of tenet.dev/released to keep (fingerprint of the accepted violation) */
  released?: string;
  /** value of tenet.dev/quarantined-by to keep while quarantined: the rules that quarantined the pod */
  quarantinedBy?: string;
  /** time-limited inputs: the next instant an exemption of an applicable rule expires */
  nextExpiry?: number;
}

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** The pod's spec as evaluatePod reads it (containers by kind, securityContext, volumes, host namespaces). */
function podSpecOf(pod: CachedPod): any {
  return pod.security ?? { containers: pod.spec.containers };
}

/** How much of the pod's init containers rescans leave out: 0 none, 1 the enforcer, 2 the enforcer
 * and the capture container (only when each is exactly the one Tenet injects). */
export function strippedOf(pod: CachedPod, injection: InjectionConfig): 0 | 1 | 2 {
  if (!isTenetEnforcer(pod.enforcer, pod.metadata.annotations, injection) || !Array.isArray(podSpecOf(pod).initContainers)) return 0;
  return isTenetCapture(pod.enforcer, pod.metadata.annotations, injection) ? 2 : 1;
}

/** The spec rescans judge: without the enforcer only when it is exactly the one Tenet injects. */
function judgedSpecOf(pod: CachedPod, stripped: 0 | 1 | 2): any {
  const spec = podSpecOf(pod);
  if (stripped === 0) return spec;
  return { ...spec, initContainers: spec.initContainers.filter((c: any) => c?.name !== ENFORCER_CONTAINER && !(stripped === 2 && c?.name === CAPTURE_CONTAINER)) };
}

type RuleVerdict = ReturnType<typeof evaluatePod>["rules"][number];
export interface Objection {
  rule: string;
  enforcement: "enforce" | "audit";
  reason: PostureDetail["reason"];
  counts?: Record<string, number>;
  message: string;
}

/** What the RuntimeRules say about the pod's spec: a function of its namespace, the rules that
 * select it, its judged spec, the scan index and the clock (until nextExpiry) — not of its name,
 * labels beyond the selection, or annotations — so pods of one template share it (judgements.ts). */
export interface Judgement {
  /** the rules that select the pod */
  applicable: RuleRef[];
  objecting: Objection[];
  unscanned?: RuleVerdict;
  exempted?: RuleVerdict;
  first?: RuleVerdict;
  /** the next instant an exemption of an applicable rule expires */
  nextExpiry?: number;
}

export function judge(pod: CachedPod, rules: RuleRef[], scans: ScanIndex, now: Date, stripped: 0 | 1 | 2): Judgement {
  const labels = pod.metadata.labels ?? {};
  const verdict = evaluatePod({ namespace: pod.metadata.namespace, labels, podSpec: judgedSpecOf(pod, stripped), owner: `Pod ${pod.metadata.namespace}/${pod.metadata.name}` }, rules, scans, now);
  const applicable = rules.filter((r) => verdict.rules.some((v) => v.rule === `${r.namespace}/${r.name}`));
  let nextExpiry: number | undefined;
  for (const r of applicable) {
    for (const e of r.spec.vulnerabilities?.exemptions ?? []) {
      const t = Date.parse(e.expires);
      if (t > now.getTime() && (nextExpiry === undefined || t < nextExpiry)) nextExpiry = t;
    }
  }
  const objecting: Objection[] = [];
  let unscanned: RuleVerdict | undefined;
  let exempted: RuleVerdict | undefined;
  for (const rv of verdict.rules) {
    const rule = applicable.find((r) => `${r.namespace}/${r.name}` === rv.rule);
    const denyUnscanned = rule?.spec.vulnerabilities?.unscannedImages === "deny";
    const over = rv.images.filter((i) => i.reason === "OverThreshold");
    const unscannedImages = rv.images.filter((i) => i.reason === "Unscanned");
    if (over.length || rv.podSecurity.length || (denyUnscanned && unscannedImages.length)) {
      const counts: Record<string, number> = {};
      for (const i of over.length ? over : rv.images) for (const [sev, n] of Object.entries(i.counts)) if (n > 0) counts[sev.toLowerCase()] = (counts[sev.toLowerCase()] ?? 0) + n;
      const reason = over.length ? "OverThreshold" : rv.podSecurity.length ? "PodSecurity" : "UnscannedDenied";
      objecting.push(Object.freeze({ rule: rv.rule, enforcement: rv.enforcement, reason, counts: Object.keys(counts).length ? Object.freeze(counts) : undefined, message: rv.message }));
    } else if (unscannedImages.length && rule?.spec.vulnerabilities) {
      unscanned ??= rv;
    } else if (rv.images.some((i) => i.exempted.length > 0)) {
      exempted ??= rv;
    }
  }
  return Object.freeze({ applicable, objecting, unscanned, exempted, first: verdict.rules[0], nextExpiry });
}

/** Opted in (namespace label or pod annotation), not opted out, not exempt — yet no enforcer: injection was skipped. */
export function enforcerMissing(pod: CachedPod, namespaceLabels: Record<string, string> | undefined): boolean {
  const spec = podSpecOf(pod);
  const shaped = { metadata: { namespace: pod.metadata.namespace, annotations: pod.metadata.annotations }, spec: { hostNetwork: spec.hostNetwork, initContainers: pod.spec.containers } };
  if (pod.spec.containers.some((c) => c.name === ENFORCER_CONTAINER)) return false;
  return shouldInject(shaped, namespaceLabels ?? {}, pod.metadata.namespace).inject;
}

export function planPosture({ pod, rules, scans, namespaceLabels, now, injection, judgements }: PostureInput): PosturePlan {
  const labels = pod.metadata.labels ?? {};
  const annotations = pod.metadata.annotations ?? {};
  const quarantined = labels[QUARANTINE_LABEL] === "true";
  const releaseAsked = annotations[RELEASE_ANNOTATION] !== undefined;
  if (EXEMPT_NAMESPACES.has(pod.metadata.namespace)) return { quarantine: false, keepQuarantine: quarantined && !releaseAsked, explicitRelease: releaseAsked && quarantined };

  const stripped = strippedOf(pod, injection);
  const { applicable, objecting, unscanned, exempted, first: firstRule, nextExpiry } = judgements ? judgements.judgement(pod, rules, scans, now, stripped) : judge(pod, rules, scans, now, stripped);

  let posture: Posture | undefined;
  let detail: PostureDetail | undefined;
  const missing = enforcerMissing(pod, namespaceLabels);

  if (objecting.length || missing) {
    posture = "violating";
    const first = objecting[0];
    const rulesList = objecting.map((o) => o.rule);
    detail = first
      ? { rule: first.rule, reason: first.reason, enforcement: first.enforcement, counts: first.counts, rules: rulesList, message: clip(first.message, 400) }
      : { reason: "EnforcerMissing", rules: rulesList, message: "" };
    if (missing) {
      const why = `opted in to the Tenet enforcer but runs without the ${ENFORCER_CONTAINER} container (injection was skipped, e.g. while the webhook was unavailable): recreate the pod so it is injected`;
      detail.message = first ? clip(`${detail.message}; also ${why}`, 600) : why;
      if (!first) detail.reason = "EnforcerMissing";
    }
  } else if (unscanned) {
    posture = "unscanned";
    const imgs = unscanned.images.filter((i) => i.reason === "Unscanned").map((i) => i.image);
    detail = { rule: unscanned.rule, reason: "Unscanned", enforcement: unscanned.enforcement, message: clip(`no vulnerability scan yet for ${imgs.join(", ")}`, 400) };
  } else if (exempted) {
    posture = "warn";
    const ids = [...new Set(exempted.images.flatMap((i) => i.exempted))];
    detail = { rule: exempted.rule, reason: "Exempted", enforcement: exempted.enforcement, message: clip(`within thresholds only thanks to exemptions: ${ids.join(", ")}`, 400) };
  } else if (firstRule) {
    posture = "clean";
    detail = { rule: firstRule.rule, reason: "WithinThresholds", message: clip(firstRule.message, 400) };
  }

  // A runtime-signal response (operator/signals/) makes the pod violating; its quarantine is enforcing.
  const signal = signalResponse(annotations[SIGNAL_ANNOTATION]);
  if (signal) {
    const rulesList = [...new Set([...(detail?.rules ?? []), signal.rule])];
    if (posture !== "violating") detail = { rule: signal.rule, reason: "RuntimeSignal", enforcement: signal.action === "quarantine" ? "enforce" : "audit", rules: rulesList, message: clip(`runtime signals: ${signal.message}`, 400) };
    else detail = { ...detail!, rules: rulesList, message: clip(`${detail!.message}; also runtime signals: ${signal.message}`, 600) };
    posture = "violating";
  }
  // Quarantine needs an enforcing rule: one that objects, or (for a missing enforcer) one that selects the pod.
  const enforcing = objecting.some((o) => o.enforcement === "enforce") || (missing && applicable.some((r) => r.spec.enforcement !== "audit")) || signal?.action === "quarantine";
  const detailJSON = detail ? JSON.stringify(detail) : undefined;
  const violating = posture === "violating" && enforcing;
  // Only a violation can be released, so only then is its fingerprint needed (SHA-256 per pod otherwise).
  const fingerprint = violating && detailJSON ? createHash("sha256").update(detailJSON).digest("hex").slice(0, 16) : undefined;
  // A person released the pod for exactly this violation: keep the record while it lasts.
  const acceptedBefore = violating && annotations[RELEASED_ANNOTATION] === fingerprint;
  const explicitRelease = releaseAsked && (quarantined || violating);
  const released = violating && (acceptedBefore || explicitRelease) ? fingerprint : undefined;
  const quarantine = violating && !released;
  // Automatic release needs a posture that is fine again (clean or warn: an unscanned pod stays
  // isolated, or deleting a report would release it) and every applicable rule allowing it.
  // The rules that quarantined the pod must all still select it: relabelling a pod so that no
  // rule (or only a laxer one) selects it releases nothing; only an explicit release does.
  const recorded = quarantined ? parseRuleList(annotations[QUARANTINED_BY_ANNOTATION]) : undefined;
  const applicableKeys = new Set(applicable.map((r) => `${r.namespace}/${r.name}`));
  const stillGoverned = recorded?.length ? recorded.every((k) => applicableKeys.has(k)) : applicable.length > 0;
  const autoRelease = applicable.every((r) => r.spec.quarantine?.autoRelease !== false);
  const basisGone = !violating && posture !== "unscanned" && autoRelease && stillGoverned;
  const keepQuarantine = quarantined && !quarantine && !explicitRelease && !basisGone;
  let quarantinedBy: string | undefined;
  if (quarantine || keepQuarantine) {
    const by = new Set(recorded ?? []);
    if (quarantine) {
      for (const o of objecting) if (o.enforcement === "enforce") by.add(o.rule);
      if (missing) for (const r of applicable) if (r.spec.enforcement !== "audit") by.add(`${r.namespace}/${r.name}`);
      // Not a rule: a rescan never finds it applicable, so only an explicit release ends this quarantine.
      if (signal?.action === "quarantine") by.add(`incident:${signal.incident}`);
    }
    quarantinedBy = by.size ? JSON.stringify([...by].sort()) : undefined;
  }
  return { posture, detail, detailJSON, quarantine, keepQuarantine, explicitRelease, released, quarantinedBy, nextExpiry };
}

/** The signal response recorded on the pod, when it is one Tenet could have written. */
export function signalResponse(raw: string | undefined): { action: "label" | "quarantine"; rule: string; incident: string; message: string } | undefined {
  if (!raw || raw.length > 4096) return undefined;
  try {
    const v = JSON.parse(raw);
    if ((v?.action !== "label" && v?.action !== "quarantine") || typeof v.rule !== "string" || typeof v.incident !== "string") return undefined;
    return { action: v.action, rule: v.rule, incident: v.incident, message: typeof v.message === "string" ? v.message : `incident ${v.incident}` };
  } catch {
    return undefined;
  }
}

function parseRuleList(raw: string | undefined): string[] | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw);
    return Array.isArray(v) && v.every((x) => typeof x === "string") ? v : undefined;
  } catch {
    return undefined;
  }
}
