// Metrics of the CA and the CSR endpoint.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export class CAMetrics {
  readonly issued: Counter;
  readonly rejections: Counter;
  readonly notAfter: Gauge;
  readonly bundleSize: Gauge;
  readonly signDuration: Histogram;

  constructor(registry: Registry, caAvailable: () => boolean) {
    const registers = [registry];
    this.issued = new Counter({ name: "tenet_ca_certificates_issued_total", help: "Workload certificates issued, by namespace.", labelNames: ["namespace"], registers });
    this.rejections = new Counter({ name: "tenet_ca_rejections_total", help: "Refused certificate requests, by reason.", labelNames: ["reason"], registers });
    this.notAfter = new Gauge({ name: "tenet_ca_not_after_seconds", help: "Expiry (Unix time) of each CA in the trust bundle.", labelNames: ["serial", "status"], registers });
    this.bundleSize = new Gauge({ name: "tenet_ca_bundle_certificates", help: "CAs in the published trust bundle.", registers });
    new Gauge({
      name: "tenet_ca_available",
      help: "1 when this replica has a usable CA to sign with.",
      registers,
      collect() {
        this.set(caAvailable() ? 1 : 0);
      },
    });
    this.signDuration = new Histogram({
      name: "tenet_ca_request_duration_seconds",
      help: "Time to answer a certificate request, token review included.",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
  }
}
