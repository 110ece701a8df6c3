// /healthz (the process answers), /readyz (caches synced), /metrics (Prometheus).
// Plain HTTP on its own port: probes and scrapers only; nothing secret is served here.
import Fastify, { type FastifyInstance } from "fastify";
import type { RuntimeMetrics } from "./metrics.ts";

export function buildHealthServer(metrics: RuntimeMetrics, isReady: () => { ready: boolean; detail: string }): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 });
  app.get("/healthz", async () => "ok");
  app.get("/readyz", async (_req, reply) => {
    const r = isReady();
    reply.code(r.ready ? 200 : 503).type("text/plain");
    return r.detail;
  });
  app.get("/metrics", async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  return app;
}
