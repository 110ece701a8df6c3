// Metrics of posture rescans: what each rescan evaluated and changed, and every write to a pod.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export class PostureMetrics {
  readonly rescans: Counter;
  readonly rescanDuration: Histogram;
  readonly last: Gauge;
  readonly evaluated: Counter;
  readonly writes: Counter;
  readonly quarantines: Counter;
  readonly releases: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.rescans = new Counter({ name: "tenet_posture_rescans_total", help: "Full rescans finished, by trigger (leader-start, schedule).", labelNames: ["trigger"], registers });
    this.rescanDuration = new Histogram({
      name: "tenet_posture_rescan_duration_seconds",
      help: "Time from the start of a full rescan until every pod it enqueued was evaluated (and written, where its posture changed).",
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    });
    this.last = new Gauge({ name: "tenet_posture_last_rescan_pods", help: "Pods in the last full rescan, by outcome (evaluated, changed, quarantined, released, failed).", labelNames: ["outcome"], registers });
    this.evaluated = new Counter({ name: "tenet_posture_pods_evaluated_total", help: "Pod posture evaluations (rescans and event-driven).", registers });
    this.writes = new Counter({ name: "tenet_posture_pod_writes_total", help: "Writes to pods by the posture controller, by operation (apply: posture labels; release: removing tenet.dev/release).", labelNames: ["operation"], registers });
    this.quarantines = new Counter({ name: "tenet_posture_quarantines_total", help: "Pods quarantined.", registers });
    this.releases = new Counter({ name: "tenet_posture_releases_total", help: "Pods released from quarantine, by how (automatic, explicit).", labelNames: ["how"], registers });
  }
}
