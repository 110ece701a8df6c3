// Kubernetes Events for users (`kubectl describe`, `kubectl get events`). Repeats of the
// same event are folded into one object with a count, as kubectl users expect.
import { createHash } from "node:crypto";
import { BoundedLabel } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import { isNotFound, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { RuntimeMetrics } from "./metrics.ts";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export type EventType = "Normal" | "Warning";

export class EventRecorder {
  /** Reasons are code constants; capped so the metric's label set stays finite regardless. */
  private readonly reasons = new BoundedLabel(128);
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly instance: string,
    private readonly metrics?: RuntimeMetrics,
    private readonly component = "tenet-operator",
  ) {}

  /** Never throws: an Event that cannot be written is logged, not allowed to fail a reconcile. */
  /** `related`: a second object the event is about (an admission denial's denied object); `action`: what was done. */
  async emit(target: EventTarget, type: EventType, reason: string, message: string, extra?: { related?: { apiVersion?: string; kind: string; name: string; namespace?: string }; action?: string; annotations?: Record<string, string> }): Promise<void> {
    const namespace = target.metadata.namespace ?? "default";
    const id = createHash("sha256").update(`${target.metadata.uid}|${type}|${reason}|${message}${extra ? `|${JSON.stringify(extra)}` : ""}`).digest("hex").slice(0, 16);
    const now = new Date().toISOString();
    this.metrics?.eventsEmitted.inc({ type, reason: this.reasons.value(reason) });
    try {
      const seen = this.recent.get(id);
      if (seen && Date.now() - seen.at < 10 * 60_000) {
        seen.count++;
        seen.at = Date.now();
        try {
          await this.kube.patch(resourcePath(Resources.events, seen.namespace, seen.name), "merge", { count: seen.count, lastTimestamp: now });
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      const name = `${target.metadata.name}.${id}.${Date.now().toString(16)}`.slice(0, 253);
      await this.kube.create(resourcePath(Resources.events, namespace), {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace, ...(extra?.annotations ? { annotations: extra.annotations } : {}) },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.metadata.name,
          namespace: target.metadata.namespace,
          uid: target.metadata.uid,
          resourceVersion: target.metadata.resourceVersion,
        },
        ...(extra?.related ? { related: extra.related } : {}),
        ...(extra?.action ? { action: extra.action } : {}),
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: `tenet.dev/${this.component}`,
        reportingInstance: this.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
      this.recent.set(id, { name, namespace, count: 1, at: Date.now() });
      if (this.recent.size > 5000) this.recent.delete(this.recent.keys().next().value!);
    } catch (err) {
      this.log.warn({ reason, object: `${target.kind}/${namespace}/${target.metadata.name}`, err: String((err as Error).message ?? err) }, "could not record event");
    }
  }
}
