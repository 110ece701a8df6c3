// Incidents as PolicyReport results: one per open or acknowledged Incident whose status Tenet
// wrote (the cache's statusByTenet) and whose rule exists. Open → fail, Acknowledged → warn;
// a Resolved incident is not reported (like Kyverno, a report says what holds now; the Incident
// itself is the history). Pure: everything comes from the cached Incident, so equal Incidents
// build equal results and the writer skips the write.
import { POLICY_REPORT_SOURCE } from "../../common/names.ts";
import type { CachedIncident } from "../signals/incidents.ts";
import { clipMessage, type ObjectRef, type ReportResult, type ResultValue, type Severity } from "./build.ts";

/** At most this many pods of one incident as the result's resources (an Incident lists up to 32). */
export const MAX_INCIDENT_PODS = 10;
export const INCIDENT_CATEGORY = "Incidents";

const RESULTS: Record<string, ResultValue> = { Open: "fail", Acknowledged: "warn" };
/** Incident severities are Policy Reporter's own scale (which adds info). */
const SEVERITIES: Record<string, Severity> = { low: "low", medium: "medium", high: "high", critical: "critical" };

/** The result for one Incident, or undefined when it is resolved, not Tenet's, or its rule is gone. */
export function incidentResult(inc: CachedIncident, ruleExists: (namespace: string, name: string) => boolean): ReportResult | undefined {
  const ns = inc.metadata.namespace;
  const st = inc.status;
  if (!ns || !st || !inc.statusByTenet || inc.metadata.deletionTimestamp) return undefined;
  const result = RESULTS[inc.spec?.state ?? "Open"];
  if (!result) return undefined;
  // status.rule is "<namespace>/<rule>/<detection or correlation>", the rule in the Incident's namespace.
  const [ruleNs, policy, ...rest] = (st.rule ?? "").split("/");
  const detection = rest.join("/");
  if (ruleNs !== ns || !policy || !detection || !ruleExists(ns, policy)) return undefined;

  const pods = st.pods ?? [];
  const resources: ObjectRef[] = pods.length
    ? pods.slice(0, MAX_INCIDENT_PODS).map((name) => ({ apiVersion: "v1", kind: "Pod", namespace: ns, name }))
    : [{ apiVersion: "tenet.dev/v1alpha1", kind: "Incident", namespace: ns, name: inc.metadata.name, uid: inc.metadata.uid }];
  const properties: Record<string, string> = { process: "incident", incident: inc.metadata.name, state: inc.spec?.state ?? "Open" };
  if (st.workload) properties.workload = st.workload;
  if (st.eventCount !== undefined) properties.events = String(st.eventCount);
  if (st.firstSeen) properties.firstSeen = st.firstSeen;
  if (st.lastSeen) properties.lastSeen = st.lastSeen;
  if (st.response?.summary) properties.response = st.response.summary;
  if (st.response?.outcome) properties.outcome = st.response.outcome;
  if (pods.length > MAX_INCIDENT_PODS) properties.omittedPods = String(pods.length - MAX_INCIDENT_PODS);

  const events = st.eventCount === undefined ? "" : `, ${st.eventCount} event${st.eventCount === 1 ? "" : "s"}`;
  const response = st.response?.message ? `; ${st.response.message}` : st.response?.summary ? `; response: ${st.response.summary}` : "";
  const message = `Incident ${inc.metadata.name}: ${detection} fired for ${st.workload ?? "the workload"}${events}${response}`;
  const severity = st.severity ? SEVERITIES[st.severity] : undefined;
  return {
    source: POLICY_REPORT_SOURCE,
    policy,
    rule: detection,
    category: INCIDENT_CATEGORY,
    ...(severity ? { severity } : {}),
    timestamp: { seconds: seconds(st.lastSeen ?? st.response?.time ?? inc.creationTimestamp), nanos: 0 },
    result,
    scored: true,
    resources,
    message: clipMessage(message),
    properties,
  };
}

/** Whole seconds of an RFC 3339 time (nanosecond fractions included); 0 when there is none. */
function seconds(t: string | undefined): number {
  const ms = t ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}
