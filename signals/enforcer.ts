// What an enforcer reports (POST /v1/signals/enforcer, with its pod's own identity): its
// denials and anomalies, aggregated per kind and reason over a short interval.
//   {"pod": {"namespace", "name"}?,            the pod it speaks for: only its own
//    "events": [{"id", "kind", "reason", "time", "count", "peer"?, "method"?, "path"?, "api"?, "status"?}]}
// kind: TLSRefused (a peer without an acceptable certificate), PlaintextAttempt (a plain HTTP
// request on the mTLS port), APIDenied (APIPolicy said no: its audit reason: NoRuleAllows, DeniedByRule, JWTMissing, …),
// Burst (denials above the enforcer's burst threshold). The enforcer does not choose the
// priority or the layer: they follow from the kind.
import { priorityRank, SIGNAL_LIMITS as L, type Signal, type SignalLayer } from "./event.ts";
import { digestID, isObject, rfc3339, senderID, SignalFormatError, text } from "./fields.ts";

export const ENFORCER_KINDS: Record<string, { layer: SignalLayer; priority: string }> = {
  TLSRefused: { layer: "network", priority: "warning" },
  PlaintextAttempt: { layer: "network", priority: "warning" },
  APIDenied: { layer: "api", priority: "notice" },
  Burst: { layer: "api", priority: "warning" },
};

export const MAX_ENFORCER_COUNT = 1_000_000;

export interface EnforcerReport {
  pod?: { namespace?: string; name?: string };
  events: unknown[];
}

export function readEnforcerReport(body: unknown): EnforcerReport {
  if (!isObject(body) || !Array.isArray(body.events)) throw new SignalFormatError('the body must be {"events": [...]} (and optionally "pod": {"namespace", "name"})');
  const pod = body.pod;
  if (pod !== undefined && !isObject(pod)) throw new SignalFormatError('"pod" must be {"namespace", "name"}');
  return { pod: pod as EnforcerReport["pod"], events: body.events };
}

export function parseEnforcerEvent(raw: unknown): Signal {
  if (!isObject(raw)) throw new SignalFormatError("an enforcer event must be a JSON object");
  const kind = typeof raw.kind === "string" && Object.hasOwn(ENFORCER_KINDS, raw.kind) ? raw.kind : undefined;
  if (!kind) throw new SignalFormatError(`field "kind" must be one of ${Object.keys(ENFORCER_KINDS).join(", ")}`);
  const t = rfc3339(raw.time);
  if (!t) throw new SignalFormatError('field "time" must be an RFC 3339 timestamp');
  const count = raw.count === undefined ? 1 : raw.count;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > MAX_ENFORCER_COUNT) throw new SignalFormatError(`field "count" must be an integer between 1 and ${MAX_ENFORCER_COUNT}`);
  const reason = text(raw.reason, 64) ?? kind;
  const fields: Signal["fields"] = { reason };
  for (const k of ["peer", "method", "path", "api"] as const) {
    const v = text(raw[k], k === "path" ? 512 : 256);
    if (v) fields[k] = v;
  }
  if (typeof raw.status === "number" && Number.isInteger(raw.status)) fields.status = raw.status;
  const { layer, priority } = ENFORCER_KINDS[kind];
  const output = `${kind} ${reason}${count > 1 ? ` ×${count}` : ""}${fields.peer ? ` from ${fields.peer}` : ""}${fields.method ? ` ${fields.method} ${fields.path ?? ""}` : ""}`;
  return {
    id: senderID(raw.id) ?? digestID("enforcer", t[1], kind, reason, count, String(fields.peer ?? ""), String(fields.path ?? "")),
    source: "enforcer",
    layer,
    rule: kind,
    priority: priorityRank(priority),
    time: t[0],
    timeNs: t[1],
    tags: [layer, `reason:${reason}`].slice(0, L.tags),
    fields,
    output: output.slice(0, L.outputLength),
    count,
    claim: {},
  };
}
