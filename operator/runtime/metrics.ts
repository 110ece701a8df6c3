// Prometheus metrics of the controller runtime (per-feature metrics live with their feature).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly queueDepth = new Gauge({ name: "tenet_workqueue_depth", help: "Keys waiting in a controller's work queue.", labelNames: ["controller"], registers: [this.registry] });
  readonly reconciles = new Counter({ name: "tenet_reconcile_total", help: "Reconciles by controller and result (success, error, conflict, requeue).", labelNames: ["controller", "result"], registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: "tenet_reconcile_duration_seconds",
    help: "Time spent in one reconcile.",
    labelNames: ["controller"],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly leader = new Gauge({ name: "tenet_leader", help: "1 while this replica holds the leader Lease.", registers: [this.registry] });
  readonly informerRestarts = new Counter({ name: "tenet_informer_restarts_total", help: "Watch restarts after an error, by informer.", labelNames: ["informer"], registers: [this.registry] });
  readonly eventsEmitted = new Counter({ name: "tenet_events_total", help: "Kubernetes Events emitted, by type and reason.", labelNames: ["type", "reason"], registers: [this.registry] });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: "tenet_" });
  }
}
