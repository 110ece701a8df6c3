// Tenet's results as wgpolicyk8s.io/v1alpha2 PolicyReport content, as pure functions: one result
// per rescanned pod (from the posture Tenet wrote on it), per admission denial and per open
// Incident (operator/reports/incidents.ts), bounded in
// number and size, in a stable order, with timestamps that move only when a result changes — so
// equal inputs build an equal report and the writer can skip the write.
import { isDeepStrictEqual } from "node:util";
import { DETAIL_ANNOTATION, MANAGED_BY_TENET, OMITTED_RESULTS_ANNOTATION, PART_OF_TENET, POLICY_REPORT_NAME, POLICY_REPORT_SOURCE, POSTURE_LABEL, QUARANTINE_LABEL } from "../../common/names.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { PostureDetail } from "../posture/evaluate.ts";

/** At most this many results in one report (a few hundred KB, far below etcd's 1.5 MiB object limit). */
export const MAX_RESULTS = 500;
/** At most this many admission denials per namespace; the oldest go first. */
export const MAX_ADMISSION_RESULTS = 100;
/** At most this many incident results per namespace: failures (Open) first, then the most recently seen. */
export const MAX_INCIDENT_RESULTS = 100;
/** A result's message is cut to this many characters. */
export const MAX_RESULT_MESSAGE = 512;

export type ResultValue = "pass" | "fail" | "warn" | "error" | "skip";
export type Severity = "critical" | "high" | "medium" | "low" | "info";

export interface ObjectRef {
  apiVersion?: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

/** One entry of `results`, field for field as the v1alpha2 schema has it. */
export interface ReportResult {
  source: string;
  policy: string;
  rule?: string;
  category?: string;
  severity?: Severity;
  timestamp: { seconds: number; nanos: number };
  result: ResultValue;
  scored: boolean;
  resources?: ObjectRef[];
  message?: string;
  properties?: Record<string, string>;
}

export type Summary = Record<ResultValue, number>;

export interface PolicyReportBody {
  apiVersion: "wgpolicyk8s.io/v1alpha2";
  kind: "PolicyReport";
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  summary: Summary;
  results: ReportResult[];
}

/** An admission request Tenet denied, as the leader learnt it (operator/reports/admission.ts). */
export interface AdmissionDenial {
  /** the RuntimeRule's name (its namespace is the resource's) */
  policy: string;
  resource: ObjectRef & { namespace: string };
  message: string;
  operation?: string;
  /** how many times the same denial was seen */
  count: number;
  /** when it was last seen, ms since the epoch */
  at: number;
}

export type Omitted = { admission?: number; incidents?: number; rescan?: number };

const ORDER: Record<ResultValue, number> = { fail: 0, error: 1, warn: 2, skip: 3, pass: 4 };
export const clipMessage = (s: string) => (s.length <= MAX_RESULT_MESSAGE ? s : `${s.slice(0, MAX_RESULT_MESSAGE - 1)}…`);

/**
 * The rescan result for one pod, from the posture label and detail annotation — only when Tenet's
 * posture controller wrote them (`postureByTenet`: a pod's creator can set labels, not that).
 * Without a timestamp: buildReport gives it one.
 */
export function postureResult(pod: CachedPod): Omit<ReportResult, "timestamp"> | undefined {
  const posture = pod.metadata.labels?.[POSTURE_LABEL];
  if (!posture || !pod.postureByTenet || pod.metadata.deletionTimestamp) return undefined;
  if (pod.status.phase === "Succeeded" || pod.status.phase === "Failed") return undefined;
  const detail = parseDetail(pod.metadata.annotations?.[DETAIL_ANNOTATION]);
  if (!detail) return undefined;
  const result: ResultValue | undefined = ({ clean: "pass", warn: "warn", violating: "fail", unscanned: "skip" } as const)[posture as "clean"];
  if (!result) return undefined;
  const [, ruleName] = detail.rule?.split("/") ?? [];
  const properties: Record<string, string> = { process: "rescan", posture, reason: detail.reason };
  if (detail.enforcement) properties.enforcement = detail.enforcement;
  if (pod.metadata.labels?.[QUARANTINE_LABEL] === "true") properties.quarantined = "true";
  for (const [sev, n] of Object.entries(detail.counts ?? {})) if (/^[a-z]{1,16}$/.test(sev) && Number.isInteger(n)) properties[sev] = String(n);
  if (detail.rules && detail.rules.length > 1) properties.rules = detail.rules.slice(0, 10).join(",");
  const section = SECTIONS[detail.reason] ?? SECTIONS.WithinThresholds;
  return {
    source: POLICY_REPORT_SOURCE,
    policy: ruleName ?? "tenet-enforcer",
    rule: section.rule,
    category: section.category,
    ...(result !== "pass" ? { severity: severityOf(result, detail) } : {}),
    result,
    scored: true,
    resources: [{ apiVersion: "v1", kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid }],
    message: clipMessage(detail.message || `posture ${posture}`),
    properties,
  };
}

/** Which part of a RuntimeRule decided the posture (the result's rule) and the category Policy Reporter groups by. */
const SECTIONS: Record<string, { rule: string; category: string }> = {
  WithinThresholds: { rule: "runtimeRule", category: "Runtime Rule" },
  Exempted: { rule: "vulnerabilities", category: "Vulnerabilities" },
  Unscanned: { rule: "vulnerabilities", category: "Vulnerabilities" },
  OverThreshold: { rule: "vulnerabilities", category: "Vulnerabilities" },
  UnscannedDenied: { rule: "vulnerabilities", category: "Vulnerabilities" },
  PodSecurity: { rule: "podSecurity", category: "Pod Security" },
  EnforcerMissing: { rule: "enforcer", category: "Workload Identity" },
};

function severityOf(result: ResultValue, d: PostureDetail): Severity {
  if (result === "warn") return "low";
  if (result === "skip") return "info";
  if ((d.counts?.critical ?? 0) > 0) return "critical";
  if ((d.counts?.high ?? 0) > 0 || d.reason === "PodSecurity" || d.reason === "EnforcerMissing") return "high";
  return "medium";
}

export function admissionResult(d: AdmissionDenial): ReportResult {
  const properties: Record<string, string> = { process: "admission", count: String(d.count) };
  if (d.operation) properties.operation = d.operation;
  return {
    source: POLICY_REPORT_SOURCE,
    policy: d.policy,
    rule: "admission",
    category: "Admission",
    severity: "high",
    timestamp: { seconds: Math.floor(d.at / 1000), nanos: 0 },
    result: "fail",
    scored: true,
    resources: [d.resource],
    message: clipMessage(d.message),
    properties,
  };
}

/** Identity of a result across builds: the same check of the same resource. */
export function resultKey(r: Pick<ReportResult, "policy" | "rule" | "resources" | "properties">): string {
  const res = r.resources?.[0];
  return `${r.properties?.process ?? ""}|${r.policy}|${r.rule ?? ""}|${res?.kind ?? ""}|${res?.namespace ?? ""}|${res?.name ?? ""}|${res?.uid ?? ""}|${r.properties?.incident ?? ""}`;
}

export function summarize(results: readonly ReportResult[]): Summary {
  const s: Summary = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
  for (const r of results) s[r.result]++;
  return s;
}

export interface BuildInput {
  namespace: string;
  rescan: Omit<ReportResult, "timestamp">[];
  admission: AdmissionDenial[];
  /** one result per open or acknowledged Incident (incidentResult), with its own timestamp */
  incidents?: ReportResult[];
  /** results of the report as stored: an unchanged result keeps its timestamp */
  previous?: readonly ReportResult[];
  /** admission denials dropped earlier (by the store's cap), carried in the annotation */
  droppedAdmission?: number;
  now: Date;
}

/**
 * The report for one namespace. Bounded: at most MAX_ADMISSION_RESULTS admission denials (newest
 * kept), MAX_INCIDENT_RESULTS incidents (open ones first, then the most recently seen) and
 * MAX_RESULTS results in all (rescan results beyond that are dropped passing ones first);
 * what was left out is counted in the tenet.dev/omitted-results annotation. Stable: results are
 * sorted (failures first, then by policy and resource), and a rescan result keeps the timestamp of
 * its previous version when nothing else about it changed.
 */
export function buildReport(input: BuildInput): PolicyReportBody {
  const nowTs = { seconds: Math.floor(input.now.getTime() / 1000), nanos: 0 };
  const before = new Map((input.previous ?? []).map((r) => [resultKey(r), r]));
  const admission = [...input.admission].sort((a, b) => b.at - a.at || cmp(admissionKey(a), admissionKey(b)));
  const keptAdmission = admission.slice(0, MAX_ADMISSION_RESULTS).map(admissionResult);
  const omitted: Omitted = {};
  const droppedAdmission = (input.droppedAdmission ?? 0) + Math.max(0, admission.length - MAX_ADMISSION_RESULTS);
  if (droppedAdmission > 0) omitted.admission = droppedAdmission;

  const rescan = input.rescan.map((r) => {
    const prev = before.get(resultKey(r));
    const { timestamp: prevTs, ...prevRest } = prev ?? ({} as ReportResult);
    return { ...r, timestamp: prev && isDeepStrictEqual(prevRest, r) ? prevTs : nowTs };
  });
  const incidents = [...(input.incidents ?? [])].sort((a, b) => ORDER[a.result] - ORDER[b.result] || b.timestamp.seconds - a.timestamp.seconds || cmp(resultKey(a), resultKey(b)));
  const keptIncidents = incidents.slice(0, MAX_INCIDENT_RESULTS);
  if (incidents.length > MAX_INCIDENT_RESULTS) omitted.incidents = incidents.length - MAX_INCIDENT_RESULTS;

  rescan.sort(byResult);
  const room = MAX_RESULTS - keptAdmission.length - keptIncidents.length;
  if (rescan.length > room) omitted.rescan = rescan.length - room;
  const results = [...keptAdmission, ...keptIncidents, ...rescan.slice(0, room)].sort(byResult);

  const annotations = omitted.admission || omitted.incidents || omitted.rescan ? { [OMITTED_RESULTS_ANNOTATION]: JSON.stringify(omitted) } : undefined;
  return {
    apiVersion: "wgpolicyk8s.io/v1alpha2",
    kind: "PolicyReport",
    metadata: { name: POLICY_REPORT_NAME, namespace: input.namespace, labels: { ...MANAGED_BY_TENET, ...PART_OF_TENET }, ...(annotations ? { annotations } : {}) },
    summary: summarize(results),
    results,
  };
}

/** Whether the stored report already says what `desired` says (labels and annotations Tenet sets, summary, results). */
export function sameReport(stored: any, desired: PolicyReportBody): boolean {
  if (!stored) return false;
  const labels = stored.metadata?.labels ?? {};
  if (Object.entries(desired.metadata.labels).some(([k, v]) => labels[k] !== v)) return false;
  if ((stored.metadata?.annotations?.[OMITTED_RESULTS_ANNOTATION] ?? undefined) !== desired.metadata.annotations?.[OMITTED_RESULTS_ANNOTATION]) return false;
  return isDeepStrictEqual(normalize(stored.summary), normalize(desired.summary)) && isDeepStrictEqual(normalize(stored.results ?? []), normalize(desired.results));
}

/** Admission denials recorded in a stored report (a new leader starts from them). */
export function admissionFromReport(stored: any): { denials: AdmissionDenial[]; dropped: number } {
  const denials: AdmissionDenial[] = [];
  for (const r of Array.isArray(stored?.results) ? stored.results : []) {
    const res = r?.resources?.[0];
    if (r?.source !== POLICY_REPORT_SOURCE || r?.properties?.process !== "admission" || typeof r.policy !== "string" || !res?.kind || !res?.name || !res?.namespace) continue;
    denials.push({
      policy: r.policy,
      resource: { apiVersion: res.apiVersion, kind: res.kind, namespace: res.namespace, name: res.name },
      message: String(r.message ?? ""),
      operation: r.properties.operation,
      count: Number(r.properties.count) || 1,
      at: Number(r.timestamp?.seconds ?? 0) * 1000,
    });
  }
  let dropped = 0;
  try {
    dropped = Number(JSON.parse(stored?.metadata?.annotations?.[OMITTED_RESULTS_ANNOTATION] ?? "{}").admission) || 0;
  } catch {
    dropped = 0;
  }
  return { denials, dropped };
}

export const admissionKey = (d: Pick<AdmissionDenial, "policy" | "resource">) => `${d.policy}|${d.resource.kind}|${d.resource.namespace}|${d.resource.name}`;

function byResult(a: ReportResult, b: ReportResult): number {
  return ORDER[a.result] - ORDER[b.result] || cmp(a.policy, b.policy) || cmp(resultKey(a), resultKey(b));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Drops undefined values (JSON round trip), as the API server stores them. */
const normalize = (v: unknown) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

function parseDetail(raw: string | undefined): PostureDetail | undefined {
  if (!raw) return undefined;
  try {
    const d = JSON.parse(raw);
    return d && typeof d === "object" && typeof d.reason === "string" && typeof (d.message ?? "") === "string" ? d : undefined;
  } catch {
    return undefined;
  }
}
