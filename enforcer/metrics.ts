// Prometheus metrics and the small local listener for /metrics, /healthz, /live and /ready.
import http from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tenet_enforcer_" });
  const requests = new Counter({ name: "tenet_enforcer_requests_total", help: "Requests by direction, decision and reason", labelNames: ["direction", "decision", "reason"] as const, registers: [registry] });
  // Label children cached by key: the request path does a Map lookup, not label hashing.
  const children = new Map<string, { inc(): void }>();
  const latency = new Histogram({
      name: "tenet_enforcer_request_duration_seconds",
      help: "Time from request to response end through the enforcer",
      labelNames: ["direction"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    });
  return {
    registry,
    requests,
    count(direction: "inbound" | "outbound", decision: string, reason: string) {
      const key = `${direction} ${decision} ${reason}`;
      let c = children.get(key);
      if (!c) children.set(key, (c = requests.labels({ direction, decision, reason })));
      c.inc();
    },
    inboundLatency: latency.labels({ direction: "inbound" }),
    outboundLatency: latency.labels({ direction: "outbound" }),
    tlsFailures: new Counter({ name: "tenet_enforcer_tls_handshake_failures_total", help: "Inbound TLS handshakes refused", labelNames: ["reason"] as const, registers: [registry] }),
    certificateExpiry: new Gauge({ name: "tenet_enforcer_certificate_expiry_timestamp_seconds", help: "notAfter of the current certificate", registers: [registry] }),
    certificateRequests: new Counter({ name: "tenet_enforcer_certificate_requests_total", help: "Certificate requests by result", labelNames: ["result", "reason"] as const, registers: [registry] }),
    revoked: new Gauge({ name: "tenet_enforcer_revoked_serials", help: "Serials on the revocation list", registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

export function healthServer(metrics: Metrics, ready: () => { ready: boolean; why?: string }, appHealth?: (url: string, res: http.ServerResponse) => boolean) {
  return http.createServer((req, res) => {
    const url = req.url ?? "/";
    if (req.method !== "GET") return void res.writeHead(405).end();
    if (appHealth?.(url, res)) return;
    if (url === "/healthz" || url === "/live") return void res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    if (url === "/ready") {
      const r = ready();
      return void res.writeHead(r.ready ? 200 : 503, { "content-type": "text/plain" }).end(r.ready ? "ready\n" : `not ready: ${r.why}\n`);
    }
    if (url === "/metrics") {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
}
