// PolicyReports (leader only): Tenet's rescan verdicts, admission denials and open Incidents as one
// wgpolicyk8s.io/v1alpha2 PolicyReport named "tenet" per namespace, so Policy Reporter (and
// `kubectl get polr`) show them next to Kyverno's and Trivy's. Keyed by namespace; changes only
// enqueue the namespace after a batching delay, a namespace is written at most once per
// minIntervalMs, and only when the content differs from the stored report (server-side apply,
// field manager tenet-reports). When the CRD is not installed the operator runs as before: it
// logs that once and looks again every discoveryMs.
import type { Kube } from "../../common/kube.ts";
import { isNotFound, resourcePath, Resources } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import type { TenetObject } from "../../common/objects.ts";
import { DETAIL_ANNOTATION, FieldManagers, OPERATOR_NAME, POLICY_REPORT_NAME, POSTURE_LABEL, QUARANTINE_LABEL } from "../../common/names.ts";
import type { RuntimeRule } from "../../crds/types.gen.ts";
import type { CachedNamespace } from "../cache/namespaces.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { OperatorConfig } from "../config.ts";
import { Controller, type ReconcileResult } from "../runtime/controller.ts";
import { Informer } from "../runtime/informer.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import type { CachedIncident } from "../signals/incidents.ts";
import { DENIAL_REASON, DenialStore, denialFromEvent, toDenialEvent, type DenialEvent } from "./admission.ts";
import { admissionFromReport, buildReport, postureResult, sameReport } from "./build.ts";
import { incidentResult } from "./incidents.ts";
import { ReportMetrics } from "./metrics.ts";

const API = Resources.policyReports;
/** A stored report Tenet read or wrote is trusted this long; then it is read again (someone may have edited or deleted it). */
const KNOWN_TTL_MS = 10 * 60_000;

export interface ReportDeps {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  pods: Informer<CachedPod>;
  rules: Informer<RuntimeRule & TenetObject>;
  namespaces: Informer<CachedNamespace>;
  /** The signals feature's Incidents cache (operator/signals/incidents.ts): one watch for both. */
  incidents?: Informer<CachedIncident>;
}

export class PolicyReports extends Controller {
  readonly reportMetrics: ReportMetrics;
  /** The AdmissionDenied records in Tenet's namespace (admission.ts); started with leadership, not part of readiness. */
  readonly events: Informer<DenialEvent>;
  private readonly deps: ReportDeps;
  private readonly rlog: Logger;
  private readonly denials = new DenialStore();
  private readonly seeded = new Set<string>();
  private readonly known = new Map<string, { report: any; at: number }>();
  private readonly lastWrite = new Map<string, number>();
  private available = false;
  private absentLogged = false;
  private discoveryTimer?: NodeJS.Timeout;
  private leading = false;

  constructor(deps: ReportDeps) {
    const holder: { self?: PolicyReports } = {};
    super({ name: "policyreports", log: deps.log, metrics: deps.metrics, workers: 2, reconcile: (key, log) => holder.self!.reconcileNamespace(key, log) });
    holder.self = this;
    this.deps = deps;
    this.rlog = deps.log.child({ controller: "policyreports" });
    this.reportMetrics = new ReportMetrics(deps.metrics.registry);
    this.events = new Informer<DenialEvent>(deps.kube, this.rlog, {
      name: "admission-denial-events",
      resource: Resources.events,
      // Tenet's own namespace only: nobody but Tenet (and cluster admins) writes Events there.
      namespace: deps.cfg.namespace,
      fieldSelector: `reason=${DENIAL_REASON},source=${OPERATOR_NAME}`,
      transform: toDenialEvent,
      resyncMs: deps.cfg.resyncMs,
    });
    this.watch();
  }

  private soon(namespace: string) {
    if (this.leading && this.available) this.queue.addAfter(namespace, this.deps.cfg.policyReports.batchMs);
  }

  private watch() {
    const { pods, rules, namespaces, incidents } = this.deps;
    pods.onChange((type, pod, old) => {
      if (type === "resync") return;
      if (type === "delete" || !old || reportedFields(pod) !== reportedFields(old)) this.soon(pod.metadata.namespace);
    });
    this.events.onChange((type, ev) => {
      if (type === "delete") return; // a denial outlives its Event (bounded by count and DENIAL_TTL_MS)
      const d = denialFromEvent(ev, (ns, name) => rules.get(`${ns}/${name}`)?.metadata.uid, OPERATOR_NAME, this.deps.cfg.namespace);
      if (!d) return;
      if (this.denials.add(d)) {
        this.reportMetrics.denials.inc();
        this.soon(d.resource.namespace);
      }
    });
    incidents?.onChange((type, inc, old) => {
      if (type === "resync") return;
      if (type === "delete" || !old || incidentFields(inc) !== incidentFields(old)) this.soon(inc.metadata.namespace!);
    });
    // An incident counts only while its RuntimeRule exists.
    rules.onChange((type, rule) => {
      if ((type === "add" || type === "delete") && incidents?.listNamespace(rule.metadata.namespace!).length) this.soon(rule.metadata.namespace!);
    });
    namespaces.onChange((type, ns) => {
      if (type !== "delete") return;
      this.denials.forget(ns.metadata.name);
      this.known.delete(ns.metadata.name);
      this.seeded.delete(ns.metadata.name);
      this.lastWrite.delete(ns.metadata.name);
    });
  }

  override start() {
    super.start();
    this.leading = true;
    void this.events.start();
    void this.discover();
  }

  override async stop() {
    this.leading = false;
    if (this.discoveryTimer) clearTimeout(this.discoveryTimer);
    this.events.stop();
    await super.stop();
  }

  /** Is the PolicyReport API served? Logged once when it is not; looked for again every discoveryMs. */
  private async discover() {
    if (this.discoveryTimer) clearTimeout(this.discoveryTimer);
    this.discoveryTimer = undefined;
    if (!this.leading) return;
    let served = false;
    try {
      const list = await this.deps.kube.get(`/apis/${API.group}/${API.version}`);
      served = Array.isArray(list?.resources) && list.resources.some((r: any) => r?.name === API.plural);
    } catch (err) {
      if (!isNotFound(err)) this.rlog.warn({ err: String((err as Error).message ?? err) }, "could not look for the PolicyReport API; trying again later");
    }
    this.reportMetrics.available.set(served ? 1 : 0);
    if (served && !this.available) {
      this.available = true;
      this.absentLogged = false;
      const all = this.deps.namespaces.list().map((n) => n.metadata.name);
      this.rlog.info({ api: `${API.group}/${API.version}`, namespaces: all.length }, "PolicyReport API found; writing Tenet's results as PolicyReports");
      for (const ns of all) this.queue.add(ns);
    } else if (!served) {
      this.available = false;
      this.rlog.debug({ api: `${API.group}/${API.version}` }, "PolicyReport API not served");
      if (!this.absentLogged) {
        this.absentLogged = true;
        this.rlog.info({ api: `${API.group}/${API.version}`, retryMs: this.deps.cfg.policyReports.discoveryMs }, "PolicyReport CRD not installed; Tenet writes no PolicyReports until it is (install Policy Reporter's or Kyverno's CRDs to get them)");
      }
    }
    // Served: look again now and then (a deleted CRD is also noticed by the next write's 404).
    this.discoveryTimer = setTimeout(() => void this.discover(), served ? KNOWN_TTL_MS : this.deps.cfg.policyReports.discoveryMs);
    this.discoveryTimer.unref();
  }

  private async reconcileNamespace(namespace: string, log: Logger): Promise<ReconcileResult | void> {
    if (!this.available) return;
    const { kube, cfg, pods, rules, incidents } = this.deps;
    const now = Date.now();
    const since = now - (this.lastWrite.get(namespace) ?? 0);
    if (since < cfg.policyReports.minIntervalMs) return { requeueAfterMs: cfg.policyReports.minIntervalMs - since };
    const path = resourcePath(API, namespace, POLICY_REPORT_NAME);

    let stored = this.known.get(namespace);
    if (!stored || now - stored.at > KNOWN_TTL_MS) {
      const report = await kube.get(path).catch((err) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      stored = { report, at: now };
      this.known.set(namespace, stored);
    }
    if (!this.seeded.has(namespace)) {
      const { denials, dropped } = admissionFromReport(stored.report);
      this.denials.seed(namespace, denials, dropped);
      this.seeded.add(namespace);
    }
    const nextExpiry = this.denials.expire(namespace, now);
    const rescan = pods.listNamespace(namespace).map(postureResult).filter((r) => r !== undefined);
    const incidentResults = (incidents?.listNamespace(namespace) ?? []).map((i) => incidentResult(i, (ns, name) => rules.get(`${ns}/${name}`) !== undefined)).filter((r) => r !== undefined);
    const desired = buildReport({ namespace, rescan, admission: this.denials.list(namespace), incidents: incidentResults, previous: stored.report?.results, droppedAdmission: this.denials.dropped(namespace), now: new Date(now) });
    const requeue = nextExpiry !== undefined ? { requeueAfterMs: Math.max(1000, nextExpiry - now) } : undefined;

    try {
      if (desired.results.length === 0) {
        if (stored.report) {
          await kube.delete(path).catch((err) => {
            if (!isNotFound(err)) throw err;
          });
          this.reportMetrics.writes.inc({ operation: "delete" });
          log.info({ report: `${namespace}/${POLICY_REPORT_NAME}` }, "PolicyReport deleted: no results left");
          this.lastWrite.set(namespace, now);
        }
        this.known.set(namespace, { report: undefined, at: now });
        return requeue;
      }
      if (sameReport(stored.report, desired)) {
        this.reportMetrics.writes.inc({ operation: "unchanged" });
        return requeue;
      }
      const written = await kube.apply(path, desired, FieldManagers.reports);
      this.known.set(namespace, { report: written, at: now });
      this.lastWrite.set(namespace, now);
      this.reportMetrics.writes.inc({ operation: "apply" });
      log.info({ report: `${namespace}/${POLICY_REPORT_NAME}`, ...desired.summary, omitted: desired.metadata.annotations ? JSON.parse(Object.values(desired.metadata.annotations)[0]) : undefined }, "PolicyReport written");
    } catch (err) {
      // The API went away (CRD deleted): back to discovery, no hot retries.
      if (isNotFound(err)) {
        this.known.delete(namespace);
        this.available = false;
        this.absentLogged = false;
        void this.discover();
        return;
      }
      this.known.delete(namespace);
      throw err;
    }
    return requeue;
  }
}

/** The Incident fields a result is made of (not its resourceVersion). */
const incidentFields = (i: CachedIncident) => JSON.stringify([i.spec, i.status, i.statusByTenet, i.metadata.deletionTimestamp]);

/** The pod fields a rescan result is made of: a change elsewhere (status, certificates) writes nothing. */
function reportedFields(p: CachedPod): string {
  const l = p.metadata.labels ?? {};
  return JSON.stringify([l[POSTURE_LABEL], l[QUARANTINE_LABEL], p.metadata.annotations?.[DETAIL_ANNOTATION], !!p.postureByTenet, !!p.metadata.deletionTimestamp, p.status.phase]);
}
