// The Incident writer: one open Incident per (RuntimeRule detection, workload group); evidence
// and responses are merged into it, written in short batches (create once, then status merge
// patches). Tenet never writes spec: a person acknowledges or resolves through spec.state, and
// once Resolved, new evidence opens a new Incident. Open incidents are found again after a
// restart through the label tenet.dev/incident-key (a digest of the rule and the group).
// Every write carries the field manager tenet-signals: the cache marks an Incident whose status
// only Tenet wrote (statusByTenet), which is what the PolicyReports take (operator/reports/).
import { createHash } from "node:crypto";
import { isAlreadyExists, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { FieldManagers, MANAGED_BY_TENET, PART_OF_TENET } from "../../common/names.ts";
import type { KubeObject } from "../../common/objects.ts";
import type { IncidentStatus, IncidentStatusEvidence, IncidentStatusResponse } from "../../crds/types.gen.ts";
import { PRIORITIES, type AttributedSignal } from "../../signals/event.ts";
import { Informer } from "../runtime/informer.ts";

export const INCIDENT_KEY_LABEL = "tenet.dev/incident-key";
export const MAX_EVIDENCE = 50;
const KEEP_FIRST = 10;
const FLUSH_MS = 200;

type Severity = NonNullable<IncidentStatus["severity"]>;
const SEVERITIES: Severity[] = ["low", "medium", "high", "critical"];

/** What the cache keeps of an Incident: no evidence, every string bounded. */
export interface CachedIncident extends KubeObject {
  spec?: { state?: string };
  status?: Pick<IncidentStatus, "rule" | "workload" | "pods" | "severity" | "firstSeen" | "lastSeen" | "eventCount"> & { response?: Pick<IncidentStatusResponse, "action" | "outcome" | "summary" | "message" | "time"> };
  creationTimestamp?: string;
  /** Every status field was written by Tenet's incident writer (managedFields; see statusWrittenByTenet). */
  statusByTenet?: true;
}

const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : undefined);

export function toCachedIncident(raw: any): CachedIncident {
  const m = raw?.metadata ?? {};
  const st = raw?.status;
  const out: CachedIncident = {
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels },
    spec: { state: str(raw?.spec?.state, 16) },
    creationTimestamp: str(m.creationTimestamp, 40),
  };
  if (st && typeof st === "object") {
    const r = st.response;
    out.status = {
      rule: str(st.rule, 256),
      workload: str(st.workload, 320),
      pods: Array.isArray(st.pods) ? st.pods.slice(0, 32).filter((p: unknown) => typeof p === "string").map((p: string) => p.slice(0, 253)) : undefined,
      severity: SEVERITIES.includes(st.severity) ? st.severity : undefined,
      firstSeen: str(st.firstSeen, 40),
      lastSeen: str(st.lastSeen, 40),
      eventCount: Number.isSafeInteger(st.eventCount) && st.eventCount >= 0 ? st.eventCount : undefined,
      response: r && typeof r === "object" ? { action: str(r.action, 16) as any, outcome: str(r.outcome, 16) as any, summary: str(r.summary, 64), message: str(r.message, 2048), time: str(r.time, 40) } : undefined,
    };
  }
  if (statusWrittenByTenet(m.managedFields)) out.statusByTenet = true;
  return out;
}

/**
 * Did Tenet write this status, and nobody else? Status is writable only through /status, which
 * Tenet's ServiceAccount and cluster administrators may patch (status in a create or an update of
 * the object is dropped). Every managedFields entry that owns a status field must be Tenet's
 * writer on the status subresource; a status written (even in part) by another manager — a
 * person's kubectl, a restore tool — does not count. A field manager is a name the client picks:
 * this is not authentication, RBAC on incidents/status is; it keeps others' writes out of Tenet's output.
 */
export function statusWrittenByTenet(managedFields: unknown): boolean {
  if (!Array.isArray(managedFields)) return false;
  let ours = false;
  for (const mf of managedFields) {
    const st = mf?.fieldsV1?.["f:status"];
    if (st === undefined || (typeof st === "object" && st && Object.keys(st).length === 0)) continue;
    if (mf.manager === FieldManagers.signals && mf.subresource === "status") ours = true;
    else return false;
  }
  return ours;
}

/** Falco priority rank → incident severity. */
export function severityOf(rank: number): Severity {
  if (rank <= 2) return "critical";
  if (rank === 3) return "high";
  if (rank === 4) return "medium";
  return "low";
}

interface Open {
  namespace: string;
  name: string;
  status: IncidentStatus & { evidence: IncidentStatusEvidence[] };
  seen: Set<string>;
  created: boolean;
  timer?: NodeJS.Timeout;
  writing?: Promise<void>;
}

export interface IncidentUpdate {
  namespace: string;
  /** "<ns>/<rule>/<signal or correlation>" */
  rule: string;
  group: string;
  workload?: string;
  identity?: string;
  severity?: string;
  evidence: AttributedSignal[];
  response?: IncidentStatusResponse;
}

export class IncidentWriter {
  readonly informer: Informer<CachedIncident>;
  private readonly open = new Map<string, Open>();

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.informer = new Informer<CachedIncident>(kube, log, {
      name: "incidents",
      resource: Resources.incidents,
      labelSelector: INCIDENT_KEY_LABEL,
      transform: toCachedIncident,
    });
  }

  /** Merges evidence (and a response) into the open incident of this rule and group; returns its name. */
  record(u: IncidentUpdate): string {
    const key = digest(`${u.namespace}\u0000${u.rule}\u0000${u.group}`);
    let inc = this.open.get(key);
    const state = inc ? this.informer.get(`${inc.namespace}/${inc.name}`)?.spec?.state : undefined;
    if (inc && state === "Resolved") {
      if (inc.timer) clearTimeout(inc.timer);
      this.open.delete(key);
      inc = undefined;
    }
    inc ??= this.resume(key, u) ?? this.start(key, u);
    const st = inc.status;
    for (const e of u.evidence) {
      if (inc.seen.has(e.id)) continue;
      inc.seen.add(e.id);
      if (inc.seen.size > 4096) inc.seen.delete(inc.seen.values().next().value!);
      st.eventCount = (st.eventCount ?? 0) + e.count;
      insertEvidence(st, e);
      const at = new Date(e.time).toISOString();
      if (!st.firstSeen || at < st.firstSeen) st.firstSeen = at;
      if (!st.lastSeen || at > st.lastSeen) st.lastSeen = at;
      if (e.attribution.pod && !st.pods!.includes(e.attribution.pod) && st.pods!.length < 32) st.pods!.push(e.attribution.pod);
      const sev = severityOf(e.priority);
      if (!u.severity && SEVERITIES.indexOf(sev) > SEVERITIES.indexOf(st.severity ?? "low")) st.severity = sev;
    }
    if (u.severity && SEVERITIES.includes(u.severity as Severity)) st.severity = u.severity as Severity;
    if (u.response) st.response = u.response;
    this.schedule(inc);
    return `${inc.namespace}/${inc.name}`;
  }

  /** After a restart: the newest unresolved Incident with this key, if the cache has one. */
  private resume(key: string, u: IncidentUpdate): Open | undefined {
    const found = this.informer.listNamespace(u.namespace).filter((i) => i.metadata.labels?.[INCIDENT_KEY_LABEL] === key && i.spec?.state !== "Resolved");
    if (!found.length) return undefined;
    const name = found.map((i) => i.metadata.name!).sort().at(-1)!;
    // Its earlier status is not re-read: the timeline continues from here (counts restart).
    const inc: Open = { namespace: u.namespace, name, status: blank(u), seen: new Set(), created: true };
    this.open.set(key, inc);
    return inc;
  }

  private start(key: string, u: IncidentUpdate): Open {
    const base = u.rule.split("/").slice(1).join("-").slice(0, 200);
    const name = `${base}-${digest(`${key}\u0000${this.now()}`).slice(0, 8).toLowerCase().replace(/[^a-z0-9]/g, "x")}`;
    const inc: Open = { namespace: u.namespace, name, status: blank(u), seen: new Set(), created: false };
    this.open.set(key, inc);
    (inc as Open & { key: string }).key = key;
    return inc;
  }

  private schedule(inc: Open) {
    if (inc.timer) return;
    inc.timer = setTimeout(() => {
      inc.timer = undefined;
      inc.writing = (inc.writing ?? Promise.resolve()).then(() => this.write(inc)).catch((err) => {
        this.log.warn({ incident: `${inc.namespace}/${inc.name}`, err: (err as Error).message }, "could not write the incident; retrying");
        setTimeout(() => this.schedule(inc), 2000).unref();
      });
    }, FLUSH_MS);
    inc.timer.unref?.();
  }

  private async write(inc: Open) {
    const path = resourcePath(Resources.incidents, inc.namespace, inc.name);
    if (!inc.created) {
      const key = (inc as Open & { key?: string }).key;
      try {
        await this.kube.create(resourcePath(Resources.incidents, inc.namespace), {
          apiVersion: "tenet.dev/v1alpha1",
          kind: "Incident",
          metadata: { name: inc.name, namespace: inc.namespace, labels: { ...MANAGED_BY_TENET, ...PART_OF_TENET, ...(key ? { [INCIDENT_KEY_LABEL]: key } : {}) } },
          spec: {},
        }, { fieldManager: FieldManagers.signals });
        this.log.warn({ incident: `${inc.namespace}/${inc.name}`, rule: inc.status.rule, workload: inc.status.workload }, "incident opened");
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      inc.created = true;
    }
    await this.kube.patch(`${path}/status`, "merge", { status: inc.status }, { fieldManager: FieldManagers.signals });
  }

  async flush() {
    await Promise.all([...this.open.values()].map((i) => i.writing));
  }

  stop() {
    for (const i of this.open.values()) if (i.timer) clearTimeout(i.timer);
  }
}

function blank(u: IncidentUpdate): Open["status"] {
  return { rule: u.rule, workload: u.workload, identity: u.identity, pods: [], severity: "low", eventCount: 0, evidence: [], evidenceDropped: 0 };
}

/** Time-ordered; over MAX_EVIDENCE the first KEEP_FIRST stay (how it began) and the oldest of the rest go. */
function insertEvidence(st: Open["status"], e: AttributedSignal) {
  const entry: IncidentStatusEvidence = {
    time: nsTime(e.timeNs ?? String(BigInt(Math.trunc(e.time)) * 1_000_000n)),
    layer: e.layer,
    source: e.source,
    rule: e.rule.slice(0, 256),
    priority: PRIORITIES[e.priority],
    pod: e.attribution.pod,
    count: e.count,
    output: e.output.slice(0, 512) || undefined,
  };
  const ev = st.evidence;
  let i = ev.length;
  while (i > 0 && ev[i - 1].time > entry.time) i--;
  ev.splice(i, 0, entry);
  if (ev.length > MAX_EVIDENCE) {
    ev.splice(KEEP_FIRST, 1);
    st.evidenceDropped = (st.evidenceDropped ?? 0) + 1;
  }
}

/** RFC 3339 with nanoseconds from an exact nanosecond count. */
export function nsTime(ns: string): string {
  const n = BigInt(ns);
  const iso = new Date(Number(n / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(n % 1_000_000_000n).toString().padStart(9, "0")}Z`;
}

const digest = (s: string) => createHash("sha256").update(s).digest("base64url").slice(0, 20).replace(/[-_]/g, "0");
