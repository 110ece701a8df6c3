// `tenet check`: every workload in the inputs through the webhooks' own code, in the API
// server's order — the mutating webhook (enforcer injection, admission/mutate.ts) first, then
// the validating one (Tenet's pod metadata, admission/protect.ts; RuntimeRules,
// admission/validate.ts) — from the rules and scan data given instead of the operator's caches.
// One code path: the CLI, admission and rescans agree on every verdict, exemption expiry included.
import { mutate } from "../admission/mutate.ts";
import { applyPatch, type Operation } from "../admission/patch.ts";
import { protectTenetMetadata } from "../admission/protect.ts";
import type { AdmissionRequest, AdmissionResult } from "../admission/review.ts";
import { validate } from "../admission/validate.ts";
import type { InjectionConfig } from "../admission/inject.ts";
import type { AdmissionVerdict } from "../policy/admission.ts";
import { podSpecOf } from "../policy/admission.ts";
import { matcherOf, selectorMatcher } from "../policy/selector.ts";
import type { RuleRef } from "../policy/vulnerabilities.ts";
import { ScanIndex } from "../scans/scan-index.ts";
import { describe, type Inputs, type Origin } from "./input.ts";

export interface CheckOptions {
  now: Date;
  injection: InjectionConfig;
  /** Scanner namespaces whose reports apply to every namespace (the operator's TENET_SCAN_NAMESPACES). */
  scanNamespaces: string[];
  /** Who applies the manifests (the request's userInfo). Never Tenet itself. */
  user: string;
}

export type Outcome = "denied" | "warned" | "admitted" | "unmatched";

/** One denial: which webhook said it and the message it answers with. */
export interface Denial {
  stage: "mutate" | "validate" | "pods";
  reason: string;
  message: string;
}

export interface ObjectResult extends Origin {
  kind: string;
  namespace: string;
  name: string;
  object: string;
  outcome: Outcome;
  /** The validating webhook's reason (Compliant, AdmittedWithWarnings, RuntimeRuleViolation, NoRuntimeRules, …). */
  reason: string;
  denials: Denial[];
  warnings: string[];
  /** Every RuntimeRule whose selector matches the pod (template), with its decision and message. */
  rules: { rule: string; decision: "allow" | "warn" | "deny"; message: string }[];
  /** What injection did to the pod (or would do to the template's pods): Injected, NotOptedIn, … */
  injection: string;
}

export interface PolicyUse extends Origin {
  kind: "RuntimeRule" | "APIPolicy";
  name: string;
  /** Workloads in the inputs it selects. */
  selects: string[];
  invalidSelector?: string;
}

export interface CheckReport {
  checkedAt: string;
  results: ObjectResult[];
  policies: PolicyUse[];
  summary: { workloads: number; denied: number; warned: number; admitted: number; unmatched: number; unusedPolicies: number };
}

const PLURALS: Record<string, string> = { Pod: "pods", Deployment: "deployments", StatefulSet: "statefulsets", DaemonSet: "daemonsets", ReplicaSet: "replicasets", Job: "jobs", CronJob: "cronjobs" };

function requestFor(obj: any, uid: string, user: string): AdmissionRequest {
  const [group, version] = String(obj.apiVersion).includes("/") ? String(obj.apiVersion).split("/") : ["", obj.apiVersion];
  return {
    uid,
    kind: { group, version, kind: obj.kind },
    resource: { group, version, resource: PLURALS[obj.kind] },
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    operation: "CREATE",
    userInfo: { username: user, groups: ["system:authenticated"] },
    object: obj,
  };
}

/** The Pod a workload's controller creates from its template (what the mutating webhook will see). */
function podFromTemplate(kind: string, obj: any): any {
  const holder = kind === "CronJob" ? obj.spec?.jobTemplate?.spec?.template : obj.spec?.template;
  const meta = holder?.metadata ?? {};
  return { apiVersion: "v1", kind: "Pod", metadata: { ...meta, namespace: obj.metadata.namespace, generateName: `${obj.metadata.name}-` }, spec: holder?.spec };
}

export async function check(inputs: Inputs, opts: CheckOptions): Promise<CheckReport> {
  const scans = new ScanIndex(opts.scanNamespaces);
  for (const s of inputs.scans) scans.upsert(s.key, s.record, s.namespace);
  // RuleRefs once per namespace: selectors compile once per spec (policy/selector.ts matcherOf).
  const byNamespace = new Map<string, RuleRef[]>();
  for (const r of inputs.rules) {
    const ns = r.obj.metadata.namespace;
    const list = byNamespace.get(ns) ?? [];
    list.push({ namespace: ns, name: r.obj.metadata.name, spec: r.obj.spec });
    byNamespace.set(ns, list);
  }
  const rulesIn = (ns: string) => byNamespace.get(ns) ?? [];
  const namespaceLabels = (ns: string) => inputs.namespaces.get(ns)?.obj.metadata.labels;
  // The pipeline's user is never Tenet, and offline nobody can be granted a release.
  const protectDeps = { isTenet: () => false, mayRelease: async () => false };
  const podLabels: { namespace: string; labels: Record<string, string>; object: string }[] = [];

  const results: ObjectResult[] = [];
  let n = 0;
  for (const w of inputs.workloads) {
    const obj = w.obj;
    const kind: string = obj.kind;
    const namespace: string = obj.metadata.namespace;
    const req = requestFor(obj, `tenet-check-${++n}`, opts.user);
    const denials: Denial[] = [];
    let injection: string;

    // 1. The mutating webhook. For a Pod it answers the request; for a workload it answers for
    //    the pods the workload's controller will create (the API server accepts the workload).
    if (kind === "Pod") {
      const m = mutate(req, { namespaceLabels, config: opts.injection });
      injection = m.reason;
      if (!m.allowed) denials.push({ stage: "mutate", reason: m.reason, message: m.message ?? "" });
      else if (m.patch?.length) req.object = applyPatch(obj, m.patch as Operation[]);
    } else {
      const pod = podFromTemplate(kind, obj);
      const m = mutate({ ...requestFor(pod, `tenet-check-${n}-pod`, opts.user), name: undefined }, { namespaceLabels, config: opts.injection });
      injection = m.reason;
      if (!m.allowed) denials.push({ stage: "pods", reason: m.reason, message: `the pods of ${describe(obj)} would be refused: ${m.message ?? ""}` });
    }

    // 2. The validating webhook, unless the mutating one already refused the request.
    let result: AdmissionResult = { allowed: true, reason: "NotEvaluated" };
    let verdict: AdmissionVerdict | undefined;
    if (!denials.some((d) => d.stage === "mutate")) {
      result =
        (await protectTenetMetadata(req, protectDeps)) ??
        validate(req, { rules: rulesIn, scans, now: () => opts.now, injection: opts.injection, report: (_r, _o, v) => (verdict = v) });
      if (!result.allowed) denials.push({ stage: "validate", reason: result.reason, message: result.message ?? "" });
    }

    const held = podSpecOf(kind, req.object)!;
    podLabels.push({ namespace, labels: held.labels, object: describe(obj) });
    // Which rules select it: the same matcher evaluatePod uses, for the rules that admit it too.
    const matching = rulesIn(namespace).filter((r) => matcherOf(r.spec)(held.labels));
    const rules = matching.map((r) => {
      const v = verdict?.rules.find((x) => x.rule === `${r.namespace}/${r.name}`);
      return { rule: `${r.namespace}/${r.name}`, decision: v?.decision ?? "allow", message: v?.message ?? `RuntimeRule ${r.namespace}/${r.name}${r.spec.enforcement === "audit" ? " (audit)" : ""} admits it` };
    });
    const warnings = result.warnings ?? [];
    const outcome: Outcome = denials.length ? "denied" : warnings.length ? "warned" : matching.length === 0 ? "unmatched" : "admitted";
    results.push({ file: w.file, line: w.line, where: w.where, kind, namespace, name: obj.metadata.name, object: describe(obj), outcome, reason: result.reason, denials, warnings, rules, injection });
  }

  const policies: PolicyUse[] = [];
  for (const [kind, list] of [["RuntimeRule", inputs.rules], ["APIPolicy", inputs.apiPolicies]] as const) {
    for (const p of list) {
      const ns = p.obj.metadata.namespace;
      const { matches, error } = selectorMatcher(p.obj.spec?.selector);
      const selects = podLabels.filter((x) => x.namespace === ns && matches(x.labels)).map((x) => x.object);
      policies.push({ file: p.file, line: p.line, where: p.where, kind, name: `${ns}/${p.obj.metadata.name}`, selects, ...(error ? { invalidSelector: error } : {}) });
    }
  }

  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  return {
    checkedAt: opts.now.toISOString(),
    results,
    policies,
    summary: { workloads: results.length, denied: count("denied"), warned: count("warned"), admitted: count("admitted"), unmatched: count("unmatched"), unusedPolicies: policies.filter((p) => p.selects.length === 0).length },
  };
}
