// The posture controller (leader only): keyed per pod, it re-evaluates running pods with the
// admission decision (policy/admission.ts evaluatePod) and writes the posture label + detail
// annotation with server-side apply (field manager tenet-posture) only when they change.
// In enforce mode a violating pod is quarantined: the namespace's deny-all NetworkPolicy, the
// tenet.dev/quarantined label, its certificates revoked, an Event; released automatically when
// its posture is fine again (RuntimeRule spec.quarantine.autoRelease) or by the annotation
// tenet.dev/release. Everything is derived from cluster state, so a new leader finishes the job.
//
// Triggers only enqueue keys: scan data changes (pods using the affected images), RuntimeRule
// spec changes (pods they select), the next exemption expiry (a timer), pod and namespace changes,
// and a cron schedule (full rescan, enqueued in pages). Keys "rule:<ns>/<name>" refresh the
// RuntimeRule status counts (violatingPods, quarantinedPods, lastRescan).
import { CronJob, validateCronExpression } from "cron";
import { isDeepStrictEqual } from "node:util";
import type { Kube } from "../../common/kube.ts";
import { resourcePath, Resources } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import type { RuntimeRule } from "../../crds/types.gen.ts";
import { ImageRefError, parseImage, repositoryOf } from "../../common/images.ts";
import { matcherOf } from "../../policy/selector.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import type { ScanFeed } from "../../scans/informers.ts";
import { serialsOf } from "../ca/pod-serials.ts";
import type { RevocationList } from "../ca/revocations.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { OperatorConfig } from "../config.ts";
import type { TenetObject } from "../../common/objects.ts";
import { Controller } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import { Informer, objectKey } from "../runtime/informer.ts";
import type { CachedNamespace } from "../cache/namespaces.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import { patchStatusIfChanged } from "../runtime/status.ts";
import { planPosture, type PostureDetail } from "./evaluate.ts";
import { JudgementCache } from "./judgements.ts";
import { PostureMetrics } from "./metrics.ts";
import { QuarantinePolicies } from "./networkpolicy.ts";
import type { SignalSink } from "../signals/index.ts";
import { DETAIL_ANNOTATION, FieldManagers, NETWORK_POLICY_NAME, POSTURE_LABEL, QUARANTINE_LABEL, QUARANTINED_BY_ANNOTATION, RELEASE_ANNOTATION, RELEASED_ANNOTATION, SIGNAL_ANNOTATION } from "../../common/names.ts";

const FIELD_MANAGER = FieldManagers.posture;
const RULE_PREFIX = "rule:";
const POLICY_PREFIX = "netpol:";
const PAGE = 500;
const MAX_TIMER_MS = 6 * 3600_000;
/** RuntimeRule status counts follow pod label changes after this delay, so a burst of writes refreshes them once. */
const RULE_STATUS_DELAY_MS = 500;
/** During a full rescan, per-pod Events per (rule, reason) beyond this many are folded into one Event on the rule. */
export const RESCAN_EVENTS_PER_RULE = 20;
/** Pods a folded Event names. */
const FOLDED_NAMES = 20;

type Rule = RuntimeRule & TenetObject;

export interface PostureDeps {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  pods: Informer<CachedPod>;
  rules: Informer<Rule>;
  namespaces: Informer<CachedNamespace>;
  /** Scan data: the index posture decides from, and the informers whose changes trigger re-evaluation. */
  scans: Pick<ScanFeed, "index" | "informers">;
  /** The CA's revocation list: quarantine revokes the pod's certificates on it. */
  revocations: RevocationList;
  /** Posture changes become runtime signals too (operator/signals/). */
  signals?: SignalSink;
}

interface Rescan {
  id: number;
  trigger: string;
  started: number;
  total: number;
  enqueuing: boolean;
  pending: Set<string>;
  counts: { evaluated: number; changed: number; quarantined: number; released: number; failed: number };
  /** Posture writes of this rescan by "<was>→<now>" (bounded: five postures and none). */
  written: Record<string, number>;
  /** The judgement cache's counters when the rescan started. */
  judged: { hits: number; misses: number };
  /** Per-pod Events of this rescan by "<rule> <type> <reason>": how many went out, and the pods folded into one Event at the end. */
  events: Map<string, { rule: string; type: "Normal" | "Warning"; reason: string; sent: number; folded: string[]; more: number }>;
}

type Outcome = { changed: boolean; quarantined: boolean; released: boolean };

export class PostureController extends Controller {
  readonly policies: QuarantinePolicies;
  readonly postureMetrics: PostureMetrics;
  private readonly deps: PostureDeps;
  private readonly plog: Logger;
  /** Pods of one template share what the rules say about them (judgements.ts). */
  readonly judgements = new JudgementCache();
  private readonly podsByRepo = new Map<string, Set<string>>();
  private readonly reposByPod = new Map<string, string[]>();
  private cron?: CronJob;
  private expiryTimer?: NodeJS.Timeout;
  private expiryCheckedAt = Date.now();
  private rescan?: Rescan;
  private rescanSeq = 0;
  private lastRescan?: string;
  private revocationBatch?: { entries: Parameters<RevocationList["revoke"]>[0]; waiters: { resolve: () => void; reject: (e: unknown) => void }[] };
  private leading = false;

  constructor(deps: PostureDeps) {
    const holder: { self?: PostureController } = {};
    super({ name: "posture", log: deps.log, metrics: deps.metrics, workers: deps.cfg.postureWorkers || 8, reconcile: (key, log) => holder.self!.reconcileKey(key, log) });
    holder.self = this;
    const valid = validateCronExpression(deps.cfg.rescanSchedule);
    if (!valid.valid) throw new Error(`TENET_RESCAN_SCHEDULE=${JSON.stringify(deps.cfg.rescanSchedule)} is not a cron expression (${valid.error?.message ?? "invalid"}); use five fields like "0 * * * *" (hourly)`);
    this.deps = deps;
    this.plog = deps.log.child({ controller: "posture" });
    this.postureMetrics = new PostureMetrics(deps.metrics.registry);
    this.policies = new QuarantinePolicies(deps.kube, deps.log, FIELD_MANAGER);
    this.watch();
  }

  // ---- triggers: they only enqueue keys ----

  private watch() {
    const { pods, rules, scans, namespaces } = this.deps;
    pods.onChange((type, pod, old) => {
      const key = objectKey(pod);
      if (type === "delete") {
        this.index(key, undefined);
        this.enqueueRulesFor(pod);
        return;
      }
      this.index(key, pod);
      this.enqueue(key);
      // Label changes (ours included) move the RuntimeRule counts.
      if (type !== "resync" && (!old || !isDeepStrictEqual(old.metadata.labels, pod.metadata.labels) || old.metadata.annotations?.[DETAIL_ANNOTATION] !== pod.metadata.annotations?.[DETAIL_ANNOTATION])) {
        this.enqueueRulesFor(pod, old);
      }
    });
    rules.onChange((type, rule, old) => {
      this.scheduleExpiry();
      // Our own status writes change the resourceVersion, not the generation: nothing to re-evaluate.
      if (type === "resync" || (type === "update" && old?.metadata.generation === rule.metadata.generation)) return;
      const selectors = [rule, old].filter((r): r is Rule => !!r).map((r) => safeMatcher(r));
      for (const p of pods.listNamespace(rule.metadata.namespace!)) if (selectors.some((m) => m(p.metadata.labels))) this.enqueue(objectKey(p));
      if (type !== "delete") this.enqueue(`${RULE_PREFIX}${objectKey(rule)}`);
    });
    for (const inf of scans.informers) {
      inf.onChange((type, src, old) => {
        if (type === "resync") return;
        const repos = new Set([...(src.repositories ?? []), ...(old?.repositories ?? [])]);
        let n = 0;
        for (const repo of repos) for (const key of this.podsByRepo.get(repo) ?? []) {
          this.enqueue(key);
          n++;
        }
        if (n) this.plog.debug({ source: objectKey(src), repositories: [...repos], pods: n }, "scan data changed; re-evaluating the pods that use these images");
      });
    }
    // A deleted or edited quarantine NetworkPolicy is restored at once (not at the next resync)
    // while a pod of its namespace is quarantined. An edit that removes Tenet's label shows as a
    // delete here (the informer selects on it).
    this.policies.informer.onChange((type, np) => {
      const ns = np.metadata.namespace;
      if (!ns || np.metadata.name !== NETWORK_POLICY_NAME) return;
      if (type === "delete" || !this.policies.intact(ns)) this.enqueue(`${POLICY_PREFIX}${ns}`);
    });
    namespaces.onChange((type, ns, old) => {
      if (type !== "update" || isDeepStrictEqual(ns.metadata.labels, old?.metadata.labels)) return;
      for (const p of pods.listNamespace(ns.metadata.name)) this.enqueue(objectKey(p));
    });
  }

  private index(key: string, pod: CachedPod | undefined) {
    const before = this.reposByPod.get(key) ?? [];
    const after: string[] = [];
    for (const c of pod?.spec.containers ?? []) {
      try {
        const repo = repositoryOf(parseImage(c.image));
        if (!after.includes(repo)) after.push(repo);
      } catch (err) {
        if (!(err instanceof ImageRefError)) throw err;
      }
    }
    if (isDeepStrictEqual(before, after)) return;
    for (const r of before) {
      const set = this.podsByRepo.get(r);
      set?.delete(key);
      if (set?.size === 0) this.podsByRepo.delete(r);
    }
    for (const r of after) {
      let set = this.podsByRepo.get(r);
      if (!set) this.podsByRepo.set(r, (set = new Set()));
      set.add(key);
    }
    if (after.length) this.reposByPod.set(key, after);
    else this.reposByPod.delete(key);
  }

  /** Status counts follow label changes, coalesced: during a full rescan they wait for its end
   * (which refreshes every rule); otherwise a short delay folds a burst into one status write.
   * Each refresh counts every pod of the namespace, so one per written pod was quadratic. */
  private enqueueRulesFor(pod: CachedPod, old?: CachedPod) {
    if (this.rescan) return;
    for (const r of this.deps.rules.listNamespace(pod.metadata.namespace)) {
      const m = safeMatcher(r);
      if (m(pod.metadata.labels) || (old && m(old.metadata.labels))) this.queue.addAfter(`${RULE_PREFIX}${objectKey(r)}`, RULE_STATUS_DELAY_MS);
    }
  }

  /** One timer, at the next instant an exemption expires: the pods of that rule are re-evaluated then. */
  private scheduleExpiry() {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (!this.leading) return;
    const now = Date.now();
    let next = Infinity;
    for (const r of this.deps.rules.list()) for (const e of r.spec.vulnerabilities?.exemptions ?? []) {
      const t = Date.parse(e.expires);
      if (t > now && t < next) next = t;
    }
    if (!Number.isFinite(next)) return;
    this.expiryTimer = setTimeout(() => this.onExpiry(), Math.min(MAX_TIMER_MS, next - now + 5));
    this.expiryTimer.unref();
  }

  private onExpiry() {
    const now = Date.now();
    const since = this.expiryCheckedAt;
    this.expiryCheckedAt = now;
    for (const r of this.deps.rules.list()) {
      const expired = (r.spec.vulnerabilities?.exemptions ?? []).filter((e) => {
        const t = Date.parse(e.expires);
        return t > since - 1000 && t <= now;
      });
      if (!expired.length) continue;
      const m = safeMatcher(r);
      const keys = this.deps.pods.listNamespace(r.metadata.namespace!).filter((p) => m(p.metadata.labels)).map(objectKey);
      this.plog.info({ rule: objectKey(r), exemptions: expired.map((e) => `${e.id} (expired ${e.expires})`), pods: keys.length }, "exemption expired; re-evaluating the pods the rule selects");
      for (const k of keys) this.enqueue(k);
    }
    this.scheduleExpiry();
  }

  // ---- leadership ----

  override start() {
    super.start();
    this.leading = true;
    this.expiryCheckedAt = Date.now();
    this.scheduleExpiry();
    this.cron = CronJob.from({
      cronTime: this.deps.cfg.rescanSchedule,
      onTick: () => void this.fullRescan("schedule"),
      start: true,
      unrefTimeout: true,
    });
    this.plog.info({ schedule: this.deps.cfg.rescanSchedule, workers: this.deps.cfg.postureWorkers }, "posture rescans scheduled");
    // A new leader re-derives everything: whatever a previous leader left half done is finished here.
    void this.fullRescan("leader-start");
  }

  override async stop() {
    this.leading = false;
    await this.cron?.stop();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await super.stop();
  }

  /** Enqueues every pod in pages, yielding between pages so the process keeps serving. */
  async fullRescan(trigger: string): Promise<void> {
    if (this.rescan) {
      this.plog.info({ trigger, running: this.rescan.id }, "a rescan is still running; not starting another");
      return;
    }
    const keys = this.deps.pods.list().map(objectKey);
    const rescan: Rescan = {
      id: ++this.rescanSeq,
      trigger,
      started: Date.now(),
      total: keys.length,
      enqueuing: true,
      // Every key is pending from the start, so a worker that reaches one early still counts it.
      pending: new Set(keys),
      counts: { evaluated: 0, changed: 0, quarantined: 0, released: 0, failed: 0 },
      written: {},
      judged: { hits: this.judgements.hits, misses: this.judgements.misses },
      events: new Map(),
    };
    this.rescan = rescan;
    this.plog.info({ rescan: rescan.id, trigger, pods: keys.length }, "rescan started");
    for (let i = 0; i < keys.length; i += PAGE) {
      // A key evaluated since the rescan started (queued by its informer event, say) is done: not again.
      for (let j = i; j < Math.min(i + PAGE, keys.length); j++) if (rescan.pending.has(keys[j])) this.enqueue(keys[j]);
      // Keep the queue short: a page at a time, and let other work (webhooks, CSRs, informers) run.
      await new Promise((r) => setImmediate(r));
      while (this.leading && this.queue.depth > PAGE) await new Promise((r) => setTimeout(r, 5));
      if (!this.leading) break;
    }
    rescan.enqueuing = false;
    this.maybeFinish(rescan);
  }

  private track(key: string, outcome: Outcome | "failed" | "skipped") {
    const r = this.rescan;
    if (!r || !r.pending.delete(key)) return;
    if (outcome === "failed") r.counts.failed++;
    else if (outcome !== "skipped") {
      r.counts.evaluated++;
      if (outcome.changed) r.counts.changed++;
      if (outcome.quarantined) r.counts.quarantined++;
      if (outcome.released) r.counts.released++;
    }
    const done = r.total - r.pending.size;
    if (this.deps.cfg.rescanProgressEvery > 0 && done % this.deps.cfg.rescanProgressEvery === 0 && r.pending.size > 0) {
      this.plog.info({ rescan: r.id, done, of: r.total, ...r.counts, ms: Date.now() - r.started }, "rescan progress");
    }
    this.maybeFinish(r);
  }

  private maybeFinish(r: Rescan) {
    if (r.enqueuing || r.pending.size > 0 || this.rescan !== r) return;
    this.rescan = undefined;
    const ms = Date.now() - r.started;
    const pm = this.postureMetrics;
    pm.rescans.inc({ trigger: r.trigger });
    pm.rescanDuration.observe(ms / 1000);
    for (const [outcome, n] of Object.entries(r.counts)) pm.last.set({ outcome }, n);
    this.lastRescan = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    this.plog.info({ rescan: r.id, trigger: r.trigger, pods: r.total, ...r.counts, written: r.written, judgements: { hits: this.judgements.hits - r.judged.hits, misses: this.judgements.misses - r.judged.misses }, ms }, "rescan finished");
    for (const rule of this.deps.rules.list()) this.enqueue(`${RULE_PREFIX}${objectKey(rule)}`);
    this.emitFolded(r);
  }

  /** A per-pod Event, or during a full rescan, past RESCAN_EVENTS_PER_RULE of the same rule and
   * reason, a name in the one Event on the rule that emitFolded records at the end: 500
   * quarantines are 20 pod Events and one summary, not 500 API writes competing with the pod
   * writes. Every pod still carries its reason in tenet.dev/posture-detail. */
  private podEvent(target: { apiVersion: string; kind: string; metadata: CachedPod["metadata"] }, type: "Normal" | "Warning", reason: string, message: string, rule: string | undefined) {
    const r = this.rescan;
    if (r && rule) {
      const id = `${rule} ${type} ${reason}`;
      let e = r.events.get(id);
      if (!e) r.events.set(id, (e = { rule, type, reason, sent: 0, folded: [], more: 0 }));
      if (e.sent >= RESCAN_EVENTS_PER_RULE) {
        if (e.folded.length < FOLDED_NAMES) e.folded.push(target.metadata.name);
        else e.more++;
        return;
      }
      e.sent++;
    }
    void this.deps.events.emit(target, type, reason, message);
  }

  private emitFolded(r: Rescan) {
    for (const e of r.events.values()) {
      const n = e.folded.length + e.more;
      if (n === 0) continue;
      const rule = this.deps.rules.get(e.rule);
      if (!rule) continue;
      const [ns] = e.rule.split("/");
      const names = e.folded.join(", ") + (e.more ? ` and ${e.more} more` : "");
      const how = e.reason === "Quarantined" ? `; list them with: kubectl get pods -n ${ns} -l ${QUARANTINE_LABEL}=true` : `; list them with: kubectl get pods -n ${ns} -L ${POSTURE_LABEL}`;
      void this.deps.events.emit(
        { apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", metadata: rule.metadata as any },
        e.type,
        e.reason,
        `rescan ${r.id} (${r.trigger}): ${e.sent + n} pods ${e.reason}, ${e.sent} with an Event of their own; also ${names}. Each pod's annotation ${DETAIL_ANNOTATION} says why${how}`,
      );
    }
  }

  // ---- reconcile ----

  private async reconcileKey(key: string, log: Logger): Promise<void> {
    if (key.startsWith(RULE_PREFIX)) return this.reconcileRule(key.slice(RULE_PREFIX.length), log);
    if (key.startsWith(POLICY_PREFIX)) return this.reconcilePolicy(key.slice(POLICY_PREFIX.length), log);
    let outcome: Outcome | "skipped";
    try {
      outcome = await this.reconcilePod(key, log);
    } catch (err) {
      // The key is retried with backoff and stays in the rescan; it counts as failed only after several tries.
      if (this.queue.retries(key) >= 4) this.track(key, "failed");
      throw err;
    }
    this.track(key, outcome);
  }

  private rulesIn(namespace: string): RuleRef[] {
    return this.deps.rules.listNamespace(namespace).map((r) => ({ namespace, name: r.metadata.name, spec: r.spec }));
  }

  private async reconcilePod(key: string, log: Logger): Promise<Outcome | "skipped"> {
    const { kube, pods, events } = this.deps;
    const pod = pods.get(key);
    if (!pod || pod.metadata.deletionTimestamp || pod.status.phase === "Succeeded" || pod.status.phase === "Failed") return "skipped";
    const ns = pod.metadata.namespace;
    const plan = planPosture({ pod, rules: this.rulesIn(ns), scans: this.deps.scans.index, namespaceLabels: this.deps.namespaces.get(ns)?.metadata.labels, now: new Date(), injection: this.deps.cfg.injection, judgements: this.judgements });
    this.postureMetrics.evaluated.inc();

    const labels = pod.metadata.labels ?? {};
    const annotations = pod.metadata.annotations ?? {};
    const isQ = labels[QUARANTINE_LABEL] === "true";
    const wantQ = plan.quarantine || plan.keepQuarantine;
    const detail = plan.detailJSON;
    const desired = {
      labels: { [POSTURE_LABEL]: plan.posture, [QUARANTINE_LABEL]: wantQ ? "true" : undefined },
      annotations: { [DETAIL_ANNOTATION]: detail, [RELEASED_ANNOTATION]: plan.released, [QUARANTINED_BY_ANNOTATION]: plan.quarantinedBy },
    };
    const differs =
      labels[POSTURE_LABEL] !== plan.posture ||
      isQ !== wantQ ||
      annotations[DETAIL_ANNOTATION] !== detail ||
      annotations[RELEASED_ANNOTATION] !== plan.released ||
      annotations[QUARANTINED_BY_ANNOTATION] !== plan.quarantinedBy;
    const ref = `${ns}/${pod.metadata.name}`;
    const target = { apiVersion: "v1", kind: "Pod", metadata: pod.metadata };

    // Isolation first: by the time the label lands, the NetworkPolicy selecting it exists.
    if (wantQ) await this.policies.ensure(ns);
    if (differs) {
      await kube.apply(
        resourcePath(Resources.pods, ns, pod.metadata.name),
        { apiVersion: "v1", kind: "Pod", metadata: { name: pod.metadata.name, namespace: ns, labels: defined(desired.labels), annotations: defined(desired.annotations) } },
        FIELD_MANAGER,
      );
      this.postureMetrics.writes.inc({ operation: "apply" });
      const fields = { pod: ref, posture: plan.posture ?? null, was: labels[POSTURE_LABEL] ?? null, quarantined: wantQ, rule: plan.detail?.rule, reason: plan.detail?.reason };
      // A full rescan sums its writes up in its `rescan finished` line (quarantines keep a line each, below).
      if (this.rescan?.pending.has(key)) {
        const t = `${fields.was ?? "none"}→${fields.posture ?? "none"}`;
        this.rescan.written[t] = (this.rescan.written[t] ?? 0) + 1;
        log.debug(fields, "posture written");
      } else log.info(fields, "posture written");
    }
    // A person's release annotation (and a quarantine label someone else set) go by merge patch: they are not ours to own.
    if (annotations[RELEASE_ANNOTATION] !== undefined) {
      await kube.patch(
        resourcePath(Resources.pods, ns, pod.metadata.name),
        "merge",
        // An explicit release also ends a runtime-signal response (label or quarantine).
        { metadata: { annotations: { [RELEASE_ANNOTATION]: null, ...(plan.explicitRelease && annotations[SIGNAL_ANNOTATION] !== undefined ? { [SIGNAL_ANNOTATION]: null } : {}) }, ...(plan.explicitRelease ? { labels: { [QUARANTINE_LABEL]: null } } : {}) } },
        { fieldManager: FIELD_MANAGER },
      );
      this.postureMetrics.writes.inc({ operation: "release" });
    }
    if (wantQ) await this.revokeCertificates(pod, plan.detail, log);

    // Events never fail a reconcile (EventRecorder logs its own errors) and are not waited for:
    // a rescan's critical path holds only the writes that change the pod.
    const quarantined = wantQ && !isQ;
    const released = isQ && !wantQ;
    if (plan.posture === "violating" && labels[POSTURE_LABEL] !== "violating" && plan.detail) this.deps.signals?.postureViolating(pod, plan.detail);
    if (quarantined) {
      this.postureMetrics.quarantines.inc();
      log.warn({ pod: ref, rule: plan.detail?.rule, reason: plan.detail?.reason }, "pod quarantined");
      this.podEvent(target, "Warning", "Quarantined", `quarantined: ${describe(plan.detail)}. The pod is isolated by NetworkPolicy ${ns}/${NETWORK_POLICY_NAME}, its certificates are revoked and it gets no new ones. It is released automatically once its posture is clean, or with: kubectl annotate pod -n ${ns} ${pod.metadata.name} tenet.dev/release="<reason>"`, plan.detail?.rule);
    } else if (released) {
      const how = plan.explicitRelease ? "explicit" : "automatic";
      this.postureMetrics.releases.inc({ how });
      log.info({ pod: ref, how, posture: plan.posture ?? null }, "pod released from quarantine");
      void events.emit(
        target,
        "Normal",
        "Released",
        plan.explicitRelease
          ? `released from quarantine by annotation tenet.dev/release (${JSON.stringify(annotations[RELEASE_ANNOTATION])}); posture ${plan.posture ?? "none"}${plan.posture === "violating" ? ": it stays violating and is quarantined again if its violation changes" : ""}`
          : `released from quarantine automatically: posture is ${plan.posture ?? "no longer governed by a RuntimeRule"}`,
      );
    } else if (differs && labels[POSTURE_LABEL] !== plan.posture && plan.posture) {
      const bad = plan.posture === "violating";
      this.podEvent(target, bad ? "Warning" : "Normal", bad ? "PostureViolating" : "PostureChanged", `posture ${labels[POSTURE_LABEL] ?? "none"} → ${plan.posture}: ${describe(plan.detail)}${bad && !wantQ ? (plan.released ? " (released explicitly, not quarantined)" : " (audit mode: not quarantined)") : ""}`, plan.detail?.rule);
    }
    return { changed: differs, quarantined, released };
  }

  /** Every unexpired serial recorded on the pod goes on the revocation list (batched across pods). */
  private async revokeCertificates(pod: CachedPod, detail: PostureDetail | undefined, log: Logger) {
    const list = this.deps.revocations;
    const now = Date.now();
    const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const entries = Object.entries(serialsOf(pod))
      .filter(([serial, notAfter]) => Date.parse(notAfter) > now && !list.isRevoked(serial))
      // A reason code only: which pod and why goes to the log line below and the Quarantined Event.
      .map(([serial, notAfter]) => ({ serial, notAfter, reason: "Quarantined" }));
    if (!entries.length) return;
    await new Promise<void>((resolve, reject) => {
      let batch = this.revocationBatch;
      if (!batch) {
        batch = this.revocationBatch = { entries: [], waiters: [] };
        // Gather what other workers revoke in the same moment: one ConfigMap write for many pods.
        setTimeout(() => {
          this.revocationBatch = undefined;
          list.revoke(batch!.entries).then(() => batch!.waiters.forEach((w) => w.resolve()), (err) => batch!.waiters.forEach((w) => w.reject(err)));
        }, 20);
      }
      batch.entries.push(...entries);
      batch.waiters.push({ resolve, reject });
    });
    log.info({ pod: ref, rule: detail?.rule, reason: detail?.reason ?? "manual", serials: entries.map((e) => e.serial) }, "certificates revoked");
  }

  /** The namespace's quarantine NetworkPolicy, restored while one of its pods is quarantined. */
  private async reconcilePolicy(namespace: string, log: Logger) {
    const quarantined = this.deps.pods.listNamespace(namespace).some((p) => p.metadata.labels?.[QUARANTINE_LABEL] === "true" && !p.metadata.deletionTimestamp);
    if (!quarantined || this.policies.intact(namespace)) return;
    await this.policies.ensure(namespace);
    log.warn({ networkPolicy: `${namespace}/${NETWORK_POLICY_NAME}` }, "quarantine NetworkPolicy was deleted or edited; restored");
  }

  private async reconcileRule(key: string, _log: Logger) {
    const rule = this.deps.rules.get(key);
    if (!rule || rule.metadata.deletionTimestamp) return;
    const m = safeMatcher(rule);
    let violating = 0;
    let quarantined = 0;
    for (const p of this.deps.pods.listNamespace(rule.metadata.namespace!)) {
      if (p.metadata.deletionTimestamp || !m(p.metadata.labels)) continue;
      if (p.metadata.labels?.[QUARANTINE_LABEL] === "true") quarantined++;
      if (p.metadata.labels?.[POSTURE_LABEL] === "violating") {
        const d = parseDetail(p.metadata.annotations?.[DETAIL_ANNOTATION]);
        if (d?.rules?.includes(key)) violating++;
      }
    }
    const owned: Record<string, unknown> = { violatingPods: violating, quarantinedPods: quarantined };
    if (this.lastRescan) owned.lastRescan = this.lastRescan;
    await patchStatusIfChanged(this.deps.kube, Resources.runtimeRules, rule, owned);
  }
}

function defined(o: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

function parseDetail(raw: string | undefined): PostureDetail | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function describe(d: PostureDetail | undefined): string {
  if (!d) return "no RuntimeRule applies";
  return d.rule ? `RuntimeRule ${d.rule} (${d.reason}): ${d.message}` : `${d.reason}: ${d.message}`;
}

/** As evaluatePod: the rule's selector, compiled once per spec; one that does not compile matches nothing (ADR 6). */
const safeMatcher = (r: Rule) => matcherOf(r.spec);
