// The fastify app of the secure server: TLS, limits, the strict JSON parser, one error shape.
// Routes come from the features (operator/server/index.ts).
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "../../common/logger.ts";
import { strictJSONParser } from "./json.ts";
import { drainRequest } from "./drain.ts";

/** Builds the app (no listen), so tests can call app.inject() and real clients can connect. */
export function buildSecureServer(log: Logger, tls: { key: string; cert: string }): FastifyInstance {
  const app = Fastify({
    https: { key: tls.key, cert: tls.cert, minVersion: "TLSv1.2" },
    logger: false,
    bodyLimit: 64 * 1024,
    // Slow or idle clients must not hold sockets for long.
    connectionTimeout: 30_000,
    keepAliveTimeout: 5_000,
    requestTimeout: 15_000,
  });
  // JSON only (a CSR sent as text/plain is a client bug, answered with 415), parsed with a
  // depth limit so hostile nesting is refused before it reaches a handler.
  app.removeContentTypeParser("text/plain");
  strictJSONParser(app);
  // One error shape for every route, including fastify's own 400/413/415.
  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    const reason = status === 413 ? "BodyTooLarge" : status === 415 ? "UnsupportedMediaType" : status < 500 ? "BadRequest" : "InternalError";
    if (status >= 500) log.error({ err: err.message, url: req.url.slice(0, 256) }, "request failed");
    // An oversized body is refused before it is read: read the rest (bounded) so the 413 reaches
    // the caller instead of a connection reset (operator/server/drain.ts).
    if (status === 413) {
      await drainRequest(req.raw);
      reply.header("connection", "close");
    }
    return reply.code(status).send({ error: { reason, message: status >= 500 ? "internal error" : err.message } });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { reason: "NotFound", message: `no route ${req.method} ${req.url.split("?")[0].slice(0, 256)}` } }));
  return app;
}
