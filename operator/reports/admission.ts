// Admission denials as the leader learns them. The validating webhook runs on every replica, and
// each replica already records a denial as an Event on the RuntimeRule (reason AdmissionDenied,
// the denied object in `related`, the operation in `action`). The leader reads those Events back
// and keeps the denials here, bounded per namespace (oldest dropped first, counted), for up to
// DENIAL_TTL_MS — so no replica but the leader writes reports, and no request waits for one.
import type { AdmissionDenial, ObjectRef } from "./build.ts";
import { admissionKey, MAX_ADMISSION_RESULTS } from "./build.ts";

/** How long a denial stays in the report after it was last seen. */
export const DENIAL_TTL_MS = 24 * 3600_000;
export const DENIAL_REASON = "AdmissionDenied";
const NAME = /^[a-z0-9A-Z]([-a-zA-Z0-9_.*]{0,252})$/;
const KIND = /^[A-Z][A-Za-z0-9]{0,62}$/;

/** The fields of an Event the leader keeps (the informer's transform). */
export interface DenialEvent {
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string };
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
    metadata: { name: raw.metadata?.name, namespace: raw.metadata?.namespace, uid: raw.metadata?.uid, resourceVersion: raw.metadata?.resourceVersion },
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
 * The denial an Event records, or undefined when it is not one of Tenet's: reason AdmissionDenied
 * from source tenet-operator, about a RuntimeRule that exists with that uid (`ruleUid`), naming a
 * denied object of the Event's own namespace. Nobody's decision depends on it: a forged Event can
 * at most add a failed result to its own namespace's report (docs/policyreports.md).
 */
export function denialFromEvent(ev: DenialEvent, ruleUid: (namespace: string, name: string) => string | undefined, component: string): AdmissionDenial | undefined {
  const ns = ev.metadata.namespace;
  const io = ev.involvedObject;
  const rel = ev.related;
  if (ev.reason !== DENIAL_REASON || ev.source?.component !== component) return undefined;
  if (io?.kind !== "RuntimeRule" || io.apiVersion !== "tenet.dev/v1alpha1" || !io.name || io.namespace !== ns) return undefined;
  if (!io.uid || ruleUid(ns, io.name) !== io.uid) return undefined;
  if (!rel?.kind || !rel.name || !KIND.test(rel.kind) || !NAME.test(rel.name) || (rel.namespace ?? ns) !== ns) return undefined;
  const at = Date.parse(ev.lastTimestamp ?? ev.eventTime ?? ev.firstTimestamp ?? "");
  if (!Number.isFinite(at)) return undefined;
  const resource: ObjectRef & { namespace: string } = { kind: rel.kind, namespace: ns, name: rel.name };
  if (rel.apiVersion && rel.apiVersion.length <= 128) resource.apiVersion = rel.apiVersion;
  // The message starts with the object as the recorder names it ("Deployment ns/name: "); the result names it in resources.
  const prefix = `${rel.kind} ${ns}/${rel.name}: `;
  const message = (ev.message ?? "").startsWith(prefix) ? ev.message!.slice(prefix.length) : (ev.message ?? "");
  const operation = ev.action && /^[A-Z]{1,16}$/.test(ev.action) ? ev.action : undefined;
  return { policy: io.name, resource, message, operation, count: Math.max(1, Math.min(ev.count ?? 1, 1e9)), at };
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
