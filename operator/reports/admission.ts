// Admission denials as the leader learns them. The validating webhook runs on every replica; for
// each denial the replica that answered records an Event in Tenet's own namespace (on the leader
// Lease: reason AdmissionDenied, the denied object in `related`, the operation in `action`, the
// RuntimeRule in an annotation), besides the Event on the RuntimeRule users see. Only Tenet (and
// cluster admins) can write Events there, so the record cannot be forged by a namespace editor.
// The leader watches them and keeps the denials here, bounded per namespace (oldest dropped first,
// counted), for up to DENIAL_TTL_MS — so only the leader writes reports and no request waits.
import type { AdmissionDenial, ObjectRef } from "./build.ts";
import { admissionKey, MAX_ADMISSION_RESULTS } from "./build.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { KubeObject } from "../../common/objects.ts";

/** How long a denial stays in the report after it was last seen. */
export const DENIAL_TTL_MS = 24 * 3600_000;
export const DENIAL_REASON = "AdmissionDenied";
/** Annotation of the record Event: the RuntimeRule that denied, {"namespace","name","uid"}. */
export const DENIAL_RULE_ANNOTATION = "tenet.dev/runtime-rule";
const NAME = /^[a-z0-9A-Z]([-a-zA-Z0-9_.*]{0,252})$/;
const KIND = /^[A-Z][A-Za-z0-9]{0,62}$/;

/** The record of one denial for the leader (never throws: EventRecorder logs its own failures). */
export function recordDenial(
  events: EventRecorder,
  cfg: { namespace: string; leaseName: string },
  rule: KubeObject,
  related: { apiVersion?: string; kind: string; name: string; namespace?: string },
  operation: string,
  message: string,
): Promise<void> {
  const target = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: cfg.leaseName, namespace: cfg.namespace } };
  const annotations = { [DENIAL_RULE_ANNOTATION]: JSON.stringify({ namespace: rule.metadata.namespace, name: rule.metadata.name, uid: rule.metadata.uid }) };
  return events.emit(target, "Warning", DENIAL_REASON, message, { related, action: operation, annotations });
}

/** The fields of an Event the leader keeps (the informer's transform). */
export interface DenialEvent {
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string> };
  involvedObject?: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string };
  related?: { apiVersion?: string; kind?: string; name?: string; namespace?: string };
  reason?: string;
  source?: { component?: string };
  action?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string;
  firstTimestamp?: string;
  eventTime?: string;
}

export function toDenialEvent(raw: any): DenialEvent {
  const pick = (o: any, keys: string[]) => (o && typeof o === "object" ? Object.fromEntries(keys.filter((k) => typeof o[k] === "string").map((k) => [k, o[k]])) : undefined);
  return {
    metadata: {
      name: raw.metadata?.name,
      namespace: raw.metadata?.namespace,
      uid: raw.metadata?.uid,
      resourceVersion: raw.metadata?.resourceVersion,
      ...(typeof raw.metadata?.annotations?.[DENIAL_RULE_ANNOTATION] === "string" ? { annotations: { [DENIAL_RULE_ANNOTATION]: raw.metadata.annotations[DENIAL_RULE_ANNOTATION].slice(0, 1024) } } : {}),
    },
    involvedObject: pick(raw.involvedObject, ["apiVersion", "kind", "name", "namespace", "uid"]),
    related: pick(raw.related, ["apiVersion", "kind", "name", "namespace"]),
    reason: raw.reason,
    source: pick(raw.source, ["component"]),
    action: typeof raw.action === "string" ? raw.action : undefined,
    message: typeof raw.message === "string" ? raw.message.slice(0, 2048) : undefined,
    count: typeof raw.count === "number" ? raw.count : undefined,
    lastTimestamp: raw.lastTimestamp ?? undefined,
    firstTimestamp: raw.firstTimestamp ?? undefined,
    eventTime: raw.eventTime ?? undefined,
  };
}

/**
 * The denial a record Event holds, or undefined when it is not one: reason AdmissionDenied from
 * source `component`, in Tenet's namespace (`namespace`; the informer watches only there), naming a
 * RuntimeRule that exists with that uid (`ruleUid`) and a denied object of the rule's namespace.
 */
export function denialFromEvent(ev: DenialEvent, ruleUid: (namespace: string, name: string) => string | undefined, component: string, namespace: string): AdmissionDenial | undefined {
  const rel = ev.related;
  if (ev.metadata.namespace !== namespace || ev.reason !== DENIAL_REASON || ev.source?.component !== component) return undefined;
  let rule: { namespace?: unknown; name?: unknown; uid?: unknown };
  try {
    rule = JSON.parse(ev.metadata.annotations?.[DENIAL_RULE_ANNOTATION] ?? "null") ?? {};
  } catch {
    return undefined;
  }
  const ns = rule.namespace;
  if (typeof ns !== "string" || typeof rule.name !== "string" || typeof rule.uid !== "string" || !rule.uid || ruleUid(ns, rule.name) !== rule.uid) return undefined;
  if (!rel?.kind || !rel.name || !KIND.test(rel.kind) || !NAME.test(rel.name) || rel.namespace !== ns) return undefined;
  const at = Date.parse(ev.lastTimestamp ?? ev.eventTime ?? ev.firstTimestamp ?? "");
  if (!Number.isFinite(at)) return undefined;
  const resource: ObjectRef & { namespace: string } = { kind: rel.kind, namespace: ns, name: rel.name };
  if (rel.apiVersion && rel.apiVersion.length <= 128) resource.apiVersion = rel.apiVersion;
  // The message starts with the object as the webhook names it ("Deployment ns/name: "); the result names it in resources.
  const prefix = `${rel.kind} ${ns}/${rel.name}: `;
  const message = (ev.message ?? "").startsWith(prefix) ? ev.message!.slice(prefix.length) : (ev.message ?? "");
  const operation = ev.action && /^[A-Z]{1,16}$/.test(ev.action) ? ev.action : undefined;
  return { policy: rule.name, resource, message, operation, count: Math.max(1, Math.min(ev.count ?? 1, 1e9)), at };
}

/** Denials per namespace: one per (rule, resource), at most MAX_ADMISSION_RESULTS, the oldest dropped first. */
export class DenialStore {
  private readonly byNamespace = new Map<string, { denials: Map<string, AdmissionDenial>; dropped: number }>();

  constructor(private readonly max = MAX_ADMISSION_RESULTS) {}

  /** Adds or refreshes a denial; true when the namespace's denials changed. */
  add(d: AdmissionDenial): boolean {
    const ns = this.entry(d.resource.namespace);
    const key = admissionKey(d);
    const prev = ns.denials.get(key);
    if (prev) {
      if (d.at < prev.at || (d.at === prev.at && d.count <= prev.count && d.message === prev.message)) return false;
      ns.denials.set(key, { ...d, count: Math.max(d.count, prev.count) });
      return true;
    }
    if (ns.denials.size >= this.max) {
      const oldest = this.oldest(ns.denials);
      // Older than everything kept: dropped before (or never worth keeping), not counted again.
      if (oldest && d.at <= oldest.at) return false;
      if (oldest) ns.denials.delete(admissionKey(oldest));
      ns.dropped++;
    }
    ns.denials.set(key, d);
    return true;
  }

  /** A new leader starts from what the stored report recorded. */
  seed(namespace: string, denials: AdmissionDenial[], dropped: number): void {
    const ns = this.entry(namespace);
    ns.dropped = Math.max(ns.dropped, dropped);
    for (const d of denials) if (d.resource.namespace === namespace) this.add(d);
  }

  /** Forgets denials last seen before now - ttl; the next expiry instant (ms), if any. */
  expire(namespace: string, now: number, ttl = DENIAL_TTL_MS): number | undefined {
    const ns = this.byNamespace.get(namespace);
    if (!ns) return undefined;
    let next: number | undefined;
    for (const [k, d] of ns.denials) {
      if (d.at + ttl <= now) ns.denials.delete(k);
      else next = Math.min(next ?? Infinity, d.at + ttl);
    }
    return next;
  }

  list(namespace: string): AdmissionDenial[] {
    return [...(this.byNamespace.get(namespace)?.denials.values() ?? [])];
  }

  dropped(namespace: string): number {
    return this.byNamespace.get(namespace)?.dropped ?? 0;
  }

  forget(namespace: string): void {
    this.byNamespace.delete(namespace);
  }

  private entry(namespace: string) {
    let e = this.byNamespace.get(namespace);
    if (!e) this.byNamespace.set(namespace, (e = { denials: new Map(), dropped: 0 }));
    return e;
  }

  private oldest(m: Map<string, AdmissionDenial>): AdmissionDenial | undefined {
    let o: AdmissionDenial | undefined;
    for (const d of m.values()) if (!o || d.at < o.at) o = d;
    return o;
  }
}
