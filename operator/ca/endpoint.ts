// HTTP routes of the CA, served over HTTPS by every replica:
//   POST /v1/certificates   {"csr": PEM} + Authorization: Bearer <projected token>  → certificate
//   GET  /v1/bundle         the trust bundle (PEM), with ETag
//   GET  /v1/revocations    the revocation list (JSON): serials only, the full list or, with
//                           ?since=<version>, what was added and removed since; ETag = the
//                           version, If-None-Match → 304. Needs the pod's projected token
//                           (Bearer, audience "tenet"), verified as for /v1/policy.
import type { FastifyInstance } from "fastify";
import { BoundedLabel, clip } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Issued } from "./issuer.ts";
import { SignRejection } from "./issuer.ts";
import type { IssuanceStatus } from "./issuance-status.ts";
import type { CAMetrics } from "./metrics.ts";
import { parseSince, SinceError, type RevocationList } from "./revocations.ts";
import type { CachedPod } from "../cache/pods.ts";
import { bearerToken, etagMatches, strongETag } from "../../common/http.ts";

export const CSR_BODY_LIMIT = 32 * 1024;

export interface CAEndpointDeps {
  issue: (token: string | undefined, csr: unknown) => Promise<Issued>;
  bundle: () => string | undefined;
  revocations: RevocationList;
  /** The pod a projected token is bound to (TokenReview, cached); throws SignRejection. */
  authenticate: (token: string | undefined) => Promise<CachedPod>;
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
    try {
      await deps.authenticate(bearerToken(req.headers.authorization));
    } catch (err) {
      if (!(err instanceof SignRejection)) throw err;
      deps.log.warn({ reason: err.reason, remote: req.ip }, clip(err.message, 1024)!);
      // The message names no pod: a caller learns nothing from a refusal but that it was refused.
      return reply.code(err.status).send({ error: { reason: err.reason, message: err.status === 401 ? err.message : "the token is not bound to a running pod" } });
    }
    const raw = (req.query as Record<string, unknown> | undefined)?.since;
    let since: number[] | undefined;
    if (raw !== undefined) {
      try {
        if (typeof raw !== "string") throw new SinceError("since must be given once");
        since = parseSince(raw, deps.revocations.shardCount);
      } catch (err) {
        if (!(err instanceof SinceError)) throw err;
        return reply.code(400).send({ error: { reason: "BadSince", message: err.message } });
      }
    }
    const etag = deps.revocations.etag;
    reply.header("etag", etag).header("cache-control", "no-cache");
    if (etagMatches(req.headers["if-none-match"], etag)) return reply.code(304).send();
    return reply.type("application/json").send(deps.revocations.answer(since));
  });
}
