// Responses to a firing: alert (a Warning Event on the pod and the Incident), label (also the
// pod's posture violating) and quarantine (also the posture quarantine: NetworkPolicy, label,
// revoked certificates, CSR refusal, release by annotation — operator/posture does all of it
// from the annotation tenet.dev/signal-response written here, so there is one quarantine).
// Each has a dry run, a cooldown per (rule, response, workload group), and quarantine a guard:
// never more than maxQuarantinedPercent of a workload's ready pods; at the limit the pod is
// labelled instead and the Incident says Held.
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { FieldManagers, QUARANTINE_LABEL, SIGNAL_ANNOTATION } from "../../common/names.ts";
import type { IncidentStatusResponse } from "../../crds/types.gen.ts";
import type { Firing } from "../../signals/correlate.ts";
import type { CompiledResponse } from "../../signals/detection.ts";
import type { CachedPod } from "../cache/pods.ts";
import { signalResponse } from "../posture/evaluate.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import { workloadOf } from "./attribution.ts";
import type { IncidentWriter } from "./incidents.ts";
import type { SignalMetrics } from "./metrics.ts";

export interface ResponderDeps {
  kube: Kube;
  log: Logger;
  events: EventRecorder;
  pods: Informer<CachedPod>;
  incidents: IncidentWriter;
  metrics: SignalMetrics;
  now: () => number;
  /** Called with the decision time when a quarantine write has been sent (benchmark). */
  onQuarantineWrite?: (pod: string, decidedAt: number) => void;
}

const STRENGTH = { alert: 0, label: 1, quarantine: 2 } as const;

export class Responder {
  private readonly cooldowns = new Map<string, number>();

  constructor(private readonly deps: ResponderDeps) {}

  /** Runs every response of the rule that listens to what fired; returns the outcome of each. */
  async respond(f: Firing, responses: CompiledResponse[], severity: string | undefined): Promise<IncidentStatusResponse[]> {
    const out: IncidentStatusResponse[] = [];
    for (const r of responses) {
      if (!r.on.has(f.name)) continue;
      out.push(await this.run(f, r, severity));
    }
    return out;
  }

  private async run(f: Firing, r: CompiledResponse, severity: string | undefined): Promise<IncidentStatusResponse> {
    const { log, metrics } = this.deps;
    const now = this.deps.now();
    const ns = f.decidedBy.attribution.namespace;
    const pods = this.targets(f);
    const ruleRef = `${f.rule}/${f.name}`;
    const cdKey = `${f.rule}\u0000${r.name}\u0000${f.group}`;
    const time = new Date(now).toISOString();
    const summary = (outcome: IncidentStatusResponse["outcome"]) => `${r.action} ${outcome}`;
    const incident = this.deps.incidents.record({
      namespace: ns,
      rule: ruleRef,
      group: f.group,
      workload: pods[0] ? workloadOf(pods[0]) : undefined,
      identity: f.decidedBy.attribution.spiffeID,
      severity,
      evidence: f.evidence,
    });
    const until = this.cooldowns.get(cdKey);
    if (until !== undefined && until > now) {
      const resp = { name: r.name, action: r.action, outcome: "Cooldown" as const, summary: summary("Cooldown"), time, message: `${r.name}: acted on ${f.group} less than its cooldown ago (until ${new Date(until).toISOString()}); evidence is still recorded` };
      metrics.responses.inc({ action: r.action, outcome: "Cooldown" });
      this.deps.incidents.record({ namespace: ns, rule: ruleRef, group: f.group, evidence: [], response: resp });
      return resp;
    }
    this.cooldowns.set(cdKey, now + r.cooldownMs);
    if (this.cooldowns.size > 100_000) this.cooldowns.delete(this.cooldowns.keys().next().value!);

    let outcome: IncidentStatusResponse["outcome"] = r.dryRun ? "DryRun" : "Applied";
    const done: string[] = [];
    const held: string[] = [];
    try {
      for (const pod of pods) {
        let action: "alert" | "label" | "quarantine" = r.action;
        if (action === "quarantine") {
          const guard = this.guard(pod, r.maxQuarantinedPercent);
          if (guard) {
            action = "label";
            held.push(`${pod.metadata.name} (${guard})`);
          }
        }
        if (!r.dryRun && action !== "alert") await this.mark(pod, action, ruleRef, incident, f.decidedBy.time);
        done.push(`${action} ${pod.metadata.name}`);
        const what = r.dryRun ? `dry run: would ${action}` : action === "alert" ? "alert" : action === "label" ? "labelled violating" : "quarantined";
        void this.deps.events.emit({ apiVersion: "v1", kind: "Pod", metadata: pod.metadata }, "Warning", r.dryRun ? "RuntimeResponseDryRun" : "RuntimeIncident", `${what}: RuntimeRule ${f.rule} ${f.kind} ${f.name} fired (response ${r.name}); see Incident ${incident}${held.length && action === "label" && r.action === "quarantine" ? `; quarantine held: ${held.at(-1)}` : ""}`.slice(0, 1024));
      }
      if (held.length && !r.dryRun) outcome = "Held";
    } catch (err) {
      outcome = "Failed";
      log.error({ rule: ruleRef, response: r.name, err: (err as Error).message }, "signal response failed");
    }
    metrics.responses.inc({ action: r.action, outcome });
    const message = pods.length
      ? `${r.dryRun ? "dry run, nothing done: " : ""}${done.join(", ")}${held.length ? `; quarantine held for ${held.join(", ")}: set spec.detection.responses[].maxQuarantinedPercent higher to allow it` : ""}`
      : `no running pod to act on for ${f.group}: recorded only`;
    const resp = { name: r.name, action: r.action, outcome, summary: summary(outcome), time, message: message.slice(0, 2048) };
    log.warn({ rule: ruleRef, response: r.name, group: f.group, incident, outcome, pods: pods.map((p) => p.metadata.name) }, "signal response");
    this.deps.incidents.record({ namespace: ns, rule: ruleRef, group: f.group, evidence: [], response: resp });
    return resp;
  }

  /** The pods the evidence came from (running, not terminating), the deciding event's first. */
  private targets(f: Firing): CachedPod[] {
    const seen = new Set<string>();
    const out: CachedPod[] = [];
    for (const e of [f.decidedBy, ...f.evidence]) {
      const a = e.attribution;
      if (!a.pod || seen.has(a.pod)) continue;
      seen.add(a.pod);
      const p = this.deps.pods.get(`${a.namespace}/${a.pod}`);
      if (p && !p.metadata.deletionTimestamp && p.metadata.uid === (a.podUID ?? p.metadata.uid)) out.push(p);
    }
    return out;
  }

  /** Why quarantining `pod` would take too much of its workload down, or undefined. A pod
   * without a controller is its own workload and is not limited. */
  guard(pod: CachedPod, maxPercent: number): string | undefined {
    if (!pod.owner) return undefined;
    const workload = workloadOf(pod);
    let total = 0;
    let quarantined = 0;
    for (const p of this.deps.pods.listNamespace(pod.metadata.namespace)) {
      if (p.metadata.deletionTimestamp || workloadOf(p) !== workload) continue;
      const q = p.metadata.labels?.[QUARANTINE_LABEL] === "true" || signalResponse(p.metadata.annotations?.[SIGNAL_ANNOTATION])?.action === "quarantine";
      if (q && p.metadata.uid === pod.metadata.uid) return undefined; // already quarantined: nothing more goes down
      if (q) quarantined++;
      if (q || p.status.ready) total++;
    }
    if (!pod.status.ready) total++;
    const allowed = Math.floor((total * maxPercent) / 100);
    return quarantined + 1 > allowed ? `${workload}: ${quarantined} of ${total} ready pods already quarantined, at most ${maxPercent}% (${allowed}) may be` : undefined;
  }

  /** The annotation posture acts on; the strongest action recorded wins. */
  private async mark(pod: CachedPod, action: "label" | "quarantine", rule: string, incident: string, decidedAt: number) {
    const have = signalResponse(pod.metadata.annotations?.[SIGNAL_ANNOTATION]);
    if (have && STRENGTH[have.action] >= STRENGTH[action]) return;
    const value = JSON.stringify({ action, rule: rule.split("/").slice(0, 2).join("/"), incident, message: `${rule} fired; Incident ${incident}` });
    await this.deps.kube.patch(resourcePath(Resources.pods, pod.metadata.namespace, pod.metadata.name), "merge", { metadata: { annotations: { [SIGNAL_ANNOTATION]: value } } }, { fieldManager: FieldManagers.signals });
    if (action === "quarantine") this.deps.onQuarantineWrite?.(`${pod.metadata.namespace}/${pod.metadata.name}`, decidedAt);
  }
}
