// Falco alerts, as Falco's http_output (json_output: true) and falcosidekick's webhook output
// send them: one JSON object, or (from a relay that batches) an array of them. Fields: uuid
// (falcosidekick only), output, priority, rule, time, source, tags, hostname, output_fields.
// Any field may be null; events from the host or from plugins carry no Kubernetes fields.
// evt.time is a nanosecond count above 2^53: parseSignalJSON keeps it as a string.
import { SIGNAL_LIMITS as L, priorityRank, type Signal } from "./event.ts";
import { digestID, fieldMap, isObject, nanos, rfc3339, senderID, SignalFormatError, tagList, text } from "./fields.ts";

/** Fields that name the pod an event is about; k8s_audit events name the target of the request. */
const NAMESPACE_FIELDS = ["k8s.ns.name", "ka.target.namespace"];
const POD_FIELDS = ["k8s.pod.name", "ka.target.name"];

export function parseFalcoEvent(raw: unknown): Signal {
  if (!isObject(raw)) throw new SignalFormatError("a Falco event must be a JSON object");
  const rule = text(raw.rule, L.ruleLength);
  if (!rule) throw new SignalFormatError('field "rule" must be a non-empty string');
  if (typeof raw.priority !== "string" || !raw.priority) throw new SignalFormatError('field "priority" must be a Falco priority name (e.g. "Warning")');
  const of = isObject(raw.output_fields) ? raw.output_fields : {};
  // evt.time when present (exact), else the RFC 3339 time (also to the nanosecond).
  const t = nanos(of["evt.time"]) ?? rfc3339(raw.time);
  if (!t) throw new SignalFormatError('field "time" must be an RFC 3339 timestamp (or output_fields."evt.time" a nanosecond count)');
  const fields = fieldMap(of);
  const hostname = text(raw.hostname, 253);
  const output = text(raw.output, L.outputLength) ?? "";
  const namespace = firstName(of, NAMESPACE_FIELDS);
  const pod = firstName(of, POD_FIELDS);
  const cid = of["container.id"];
  const containerID = typeof cid === "string" && /^[0-9a-f]{12,64}$/.test(cid) ? cid.slice(0, 12) : undefined; // "host" and "<NA>" are no container
  return {
    id: senderID(raw.uuid) ?? digestID("falco", t[1], rule, hostname, output),
    source: "falco",
    layer: "runtime",
    rule,
    priority: priorityRank(raw.priority),
    time: t[0],
    timeNs: t[1],
    tags: tagList(raw.tags),
    fields,
    output,
    hostname,
    count: 1,
    claim: { namespace, pod, containerID },
  };
}

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
function firstName(of: Record<string, unknown>, keys: string[]): string | undefined {
  for (const k of keys) {
    const v = of[k];
    if (typeof v === "string" && DNS_NAME.test(v)) return v;
  }
  return undefined;
}

export interface ParsedBatch {
  signals: Signal[];
  /** Entries refused, by their index in the batch. */
  rejected: { index: number; message: string }[];
}

export const MAX_BATCH = 1000;

/** One event or an array of events; each bad entry is refused on its own, with its index. */
export function parseBatch(body: unknown, parse: (raw: unknown) => Signal): ParsedBatch {
  const items = Array.isArray(body) ? body : [body];
  if (items.length > MAX_BATCH) throw new SignalFormatError(`a batch holds at most ${MAX_BATCH} events, got ${items.length}: send smaller batches`);
  const out: ParsedBatch = { signals: [], rejected: [] };
  items.forEach((item, index) => {
    try {
      out.signals.push(parse(item));
    } catch (err) {
      if (!(err instanceof SignalFormatError)) throw err;
      out.rejected.push({ index, message: err.message });
    }
  });
  return out;
}
