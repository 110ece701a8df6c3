// Validating admission: RuntimeRules decide on vulnerabilities and pod security, for Pods and
// for the pod templates of workloads, from in-memory caches only. Audit rules and warn
// decisions admit with warnings; enforce rules deny with every violation in one message.
import { isDeepStrictEqual } from "node:util";
import type { AdmissionRequest, AdmissionResult } from "./review.ts";
import { evaluatePod, podSpecOf, type AdmissionVerdict } from "../policy/admission.ts";
import type { ScanIndex } from "../scans/scan-index.ts";
import type { RuleRef } from "../policy/vulnerabilities.ts";
import { withoutEnforcer, type InjectionConfig } from "./inject.ts";
import type { VerdictCache } from "./verdict-cache.ts";

export interface ValidateDeps {
  rules: (namespace: string) => RuleRef[];
  scans: ScanIndex;
  now: () => Date;
  /** Tenet's injection settings: the exact sidecar Tenet injects is not judged as part of the workload. */
  injection: InjectionConfig;
  /** Told about every decision that had warnings or a denial (Events, not on the request path). */
  report?: (req: AdmissionRequest, owner: string, verdict: AdmissionVerdict) => void;
  /** Admissions by pod template (verdict-cache.ts); without it every request is evaluated. */
  verdicts?: VerdictCache;
}

/** `reviewKey`: the transport's key for the review (review.ts), a cheaper cache key than the pod spec's JSON. */
export function validate(req: AdmissionRequest, deps: ValidateDeps, reviewKey?: string): AdmissionResult {
  if (req.operation !== "CREATE" && req.operation !== "UPDATE") return { allowed: true, reason: "NotEvaluated" };
  const kind = req.kind.kind;
  const obj = req.object;
  const current = obj && podSpecOf(kind, obj);
  if (!current) return { allowed: true, reason: "NoPodSpec" };
  // An update that leaves the pod spec alone (scale, labels, status) is not re-judged:
  // rescans handle drift; admission must not block a rollback or a scale-down.
  if (req.operation === "UPDATE" && req.subResource !== "ephemeralcontainers") {
    const before = req.oldObject && podSpecOf(kind, req.oldObject);
    if (before && isDeepStrictEqual(before.podSpec, current.podSpec)) return { allowed: true, reason: "PodSpecUnchanged" };
  }
  const namespace = req.namespace ?? obj.metadata?.namespace ?? "";
  const rules = deps.rules(namespace);
  if (rules.length === 0) return { allowed: true, reason: "NoRuntimeRules" };
  const name = obj.metadata?.name ?? (obj.metadata?.generateName ? `${obj.metadata.generateName}*` : "(unnamed)");
  const owner = `${kind} ${namespace}/${name}`;
  const annotations = templateAnnotations(kind, obj);
  const now = deps.now();
  const evaluate = () => evaluatePod({ namespace, labels: current.labels ?? {}, podSpec: withoutEnforcer(current.podSpec, deps.injection, annotations), owner }, rules, deps.scans, now);
  const verdict = deps.verdicts ? deps.verdicts.verdict({ kind, namespace, labels: current.labels, annotations, podSpec: current.podSpec }, rules, deps.scans, deps.injection, now, evaluate, reviewKey) : evaluate();
  if (!req.dryRun && (verdict.warnings.length || !verdict.allowed)) deps.report?.(req, owner, verdict);
  if (!verdict.allowed) return { allowed: false, reason: "RuntimeRuleViolation", message: verdict.message, warnings: verdict.warnings };
  return { allowed: true, reason: verdict.warnings.length ? "AdmittedWithWarnings" : "Compliant", warnings: verdict.warnings };
}

/** The annotations of the pod (or pod template) podSpecOf read: the enforcer's app port and peers come from them. */
function templateAnnotations(kind: string, obj: any): Record<string, string> | undefined {
  const holder = kind === "Pod" ? obj : kind === "CronJob" ? obj?.spec?.jobTemplate?.spec?.template : obj?.spec?.template;
  const a = holder?.metadata?.annotations;
  return a && typeof a === "object" ? a : undefined;
}
