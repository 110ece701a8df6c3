// Metrics of the PolicyReport writer: whether the API is there, and what each reconcile did.
import { Counter, Gauge, type Registry } from "prom-client";

export class ReportMetrics {
  readonly available: Gauge;
  readonly writes: Counter;
  readonly denials: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.available = new Gauge({ name: "tenet_policyreports_available", help: "1 when the leader found the wgpolicyk8s.io/v1alpha2 PolicyReport API, else 0.", registers });
    this.writes = new Counter({
      name: "tenet_policyreports_reconciles_total",
      help: "PolicyReport reconciles by outcome (apply: written; unchanged: equal content, nothing written; delete: no results left).",
      labelNames: ["operation"],
      registers,
    });
    this.denials = new Counter({ name: "tenet_policyreports_admission_denials_total", help: "Admission denials the leader learnt from Tenet's AdmissionDenied Events (new or repeated).", registers });
  }
}
