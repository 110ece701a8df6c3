// HTTP routes of the CA, served over HTTPS by every replica:
//   POST /v1/certificates   {"csr": PEM} + Authorization: Bearer <projected token>  → certificate
//   GET  /v1/bundle         the trust bundle (PEM), with ETag
//   GET  /v1/revocations    the revocation list (JSON), with ETag / If-None-Match
import type { FastifyInstance } from "fastify";
import { BoundedLabel, clip } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Issued } from "./issuer.ts";
import { SignRejection } from "./issuer.ts";
import type { IssuanceStatus } from "./issuance-status.ts";
import type { CAMetrics } from "./metrics.ts";
import type { RevocationList } from "./revocations.ts";
import { bearerToken, etagMatches, strongETag } from "../../common/http.ts";

export const CSR_BODY_LIMIT = 32 * 1024;

export interface CAEndpointDeps {
  issue: (token: string | undefined, csr: unknown) => Promise<Issued>;
  bundle: () => string | undefined;
  revocations: RevocationList;
  metrics: CAMetrics;
  events: EventRecorder;
  issuance: IssuanceStatus;
  log: Logger;
}

export function caRoutes(app: FastifyInstance, deps: CAEndpointDeps) {
  // Label values from requests stay finite: namespaces of pods that got a certificate (at most
  // 1,000 distinct, then "other"), rejection reasons (code constants, capped anyway).
  const namespaces = new BoundedLabel(1000, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  const reasons = new BoundedLabel(64);
  app.post("/v1/certificates", { bodyLimit: CSR_BODY_LIMIT }, async (req, reply) => {
    const end = deps.metrics.signDuration.startTimer();
    const token = bearerToken(req.headers.authorization);
    const body = req.body as { csr?: unknown } | undefined;
    try {
      const issued = await deps.issue(token, body && typeof body === "object" ? body.csr : undefined);
      const { namespace, name } = issued.pod.metadata;
      deps.metrics.issued.inc({ namespace: namespaces.value(namespace) });
      deps.issuance.record(namespace, issued.identity.metadata.name!, new Date());
      deps.log.info({ pod: `${namespace}/${name}`, spiffeID: issued.spiffeID, serial: issued.serial, notAfter: issued.notAfter }, "certificate issued");
      const { pod: _pod, identity: _identity, ...response } = issued;
      return response;
    } catch (err) {
      if (!(err instanceof SignRejection)) throw err;
      deps.metrics.rejections.inc({ reason: reasons.value(err.reason) });
      const pod = err.pod ? `${err.pod.metadata.namespace}/${err.pod.metadata.name}` : undefined;
      // The message can quote the CSR's names (up to the 32 KiB body): cut it for logs and Events.
      const message = clip(err.message, 1024)!;
      deps.log.warn({ reason: err.reason, pod, remote: req.ip }, message);
      if (err.pod) {
        void deps.events.emit({ apiVersion: "v1", kind: "Pod", metadata: err.pod.metadata }, "Warning", `Certificate${err.reason}`, message);
      }
      return reply.code(err.status).send({ error: { reason: err.reason, message: clip(err.message, 4096) } });
    } finally {
      end();
    }
  });

  app.get("/v1/bundle", async (req, reply) => {
    const pem = deps.bundle();
    if (!pem) return reply.code(503).send({ error: { reason: "CAUnavailable", message: "the CA is not loaded" } });
    const etag = strongETag(pem);
    reply.header("etag", etag).header("cache-control", "no-cache");
    if (etagMatches(req.headers["if-none-match"], etag)) return reply.code(304).send();
    return reply.type("application/x-pem-file").send(pem);
  });

  app.get("/v1/revocations", async (req, reply) => {
    const { etag, json } = deps.revocations;
    reply.header("etag", etag).header("cache-control", "no-cache");
    if (etagMatches(req.headers["if-none-match"], etag)) return reply.code(304).send();
    return reply.type("application/json").send(json);
  });
}
