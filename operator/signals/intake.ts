// The signal intake on the operator's HTTPS server (every replica):
//   POST /v1/signals/falco       Falco http_output / falcosidekick webhook: one event or an array.
//                                Bearer: a ServiceAccount token (audience "tenet") whose user may
//                                `create` `signals` in API group tenet.dev (SubjectAccessReview).
//   POST /v1/signals/enforcer    an enforcer's batch, with its pod's projected token: the pod it
//                                reports for is the pod the token is bound to, and no other.
//   GET  /v1/signals/unattributed  the last signals no pod was found for (needs `list signals`).
// Bodies are parsed here (signals/json.ts keeps evt.time exact), bounded in size, depth and
// entries; a full queue answers 429 with Retry-After and loses nothing it accepted.
import type { FastifyInstance, FastifyReply } from "fastify";
import { clip } from "../../common/bounded.ts";
import { bearerToken } from "../../common/http.ts";
import type { Logger } from "../../common/logger.ts";
import { parseBatch, parseFalcoEvent, type ParsedBatch } from "../../signals/falco.ts";
import { parseEnforcerEvent, readEnforcerReport } from "../../signals/enforcer.ts";
import { SignalFormatError } from "../../signals/fields.ts";
import { parseSignalJSON, SignalJSONError } from "../../signals/json.ts";
import type { SignalSource } from "../../signals/event.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { Attributor } from "./attribution.ts";
import type { SignalMetrics } from "./metrics.ts";
import type { SignalPipeline } from "./pipeline.ts";

export const FALCO_BODY_LIMIT = 1024 * 1024;
export const ENFORCER_BODY_LIMIT = 256 * 1024;
export const RETRY_AFTER_SECONDS = 1;

/** A refusal with an HTTP status and a reason code. */
export class IntakeRejection extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface IntakeDeps {
  log: Logger;
  metrics: SignalMetrics;
  pipeline: SignalPipeline;
  attributor: Attributor;
  /** A sender of Falco events: may this token `verb` signals.tenet.dev? Throws IntakeRejection. */
  authorizeSender: (token: string | undefined, verb: "create" | "list") => Promise<string>;
  /** The pod a projected token is bound to. Throws IntakeRejection. */
  authenticatePod: (token: string | undefined) => Promise<CachedPod>;
  now: () => number;
}

export function signalRoutes(app: FastifyInstance, deps: IntakeDeps) {
  const { log, metrics, pipeline } = deps;
  // Our own parser for these routes only: the server's would round evt.time.
  void app.register(async (scope) => {
    scope.removeContentTypeParser("application/json");
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => done(null, body));

    const refuse = (reply: FastifyReply, source: SignalSource, err: unknown) => {
      if (err instanceof IntakeRejection) {
        metrics.received.inc({ source, outcome: err.status === 401 ? "unauthenticated" : "forbidden" });
        log.warn({ source, reason: err.reason }, clip(err.message, 512)!);
        return reply.code(err.status).send({ error: { reason: err.reason, message: err.message } });
      }
      throw err;
    };
    const parse = (text: unknown) => {
      try {
        return parseSignalJSON(String(text ?? ""));
      } catch (err) {
        if (err instanceof SignalJSONError) throw new IntakeRejection(400, "MalformedBody", err.message);
        throw err;
      }
    };
    const accept = (reply: FastifyReply, source: SignalSource, batch: ParsedBatch, queued: Parameters<SignalPipeline["enqueue"]>[0]) => {
      if (batch.rejected.length) metrics.received.inc({ source, outcome: "rejected" }, batch.rejected.length);
      const rejected = batch.rejected.slice(0, 20);
      if (!queued.length && batch.rejected.length) {
        return reply.code(400).send({ error: { reason: "MalformedEvents", message: `no event could be read; the first: entry ${rejected[0].index}: ${rejected[0].message}` }, rejected });
      }
      if (!pipeline.hasRoom(queued.length)) {
        metrics.received.inc({ source, outcome: "throttled" }, queued.length);
        return reply
          .code(429)
          .header("retry-after", String(RETRY_AFTER_SECONDS))
          .send({ error: { reason: "Overloaded", message: `the signal queue is full (${pipeline.depth} waiting); nothing of this batch was accepted: send it again after ${RETRY_AFTER_SECONDS}s` } });
      }
      pipeline.enqueue(queued);
      metrics.received.inc({ source, outcome: "accepted" }, queued.length);
      return reply.code(202).send({ accepted: queued.length, rejected });
    };

    scope.post("/v1/signals/falco", { bodyLimit: FALCO_BODY_LIMIT }, async (req, reply) => {
      try {
        await deps.authorizeSender(bearerToken(req.headers.authorization), "create");
        const batch = batchOf(() => parseBatch(parse(req.body), parseFalcoEvent));
        const now = deps.now();
        return accept(reply, "falco", batch, batch.signals.map((signal) => ({ signal, receivedAt: now })));
      } catch (err) {
        if (err instanceof IntakeRejection && err.status === 400) return reply.code(400).send({ error: { reason: err.reason, message: err.message } });
        return refuse(reply, "falco", err);
      }
    });

    scope.post("/v1/signals/enforcer", { bodyLimit: ENFORCER_BODY_LIMIT }, async (req, reply) => {
      try {
        const pod = await deps.authenticatePod(bearerToken(req.headers.authorization));
        const body = parse(req.body);
        const report = batchOf(() => readEnforcerReport(body));
        const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
        const claim = report.pod;
        if (claim && (claim.namespace !== pod.metadata.namespace || claim.name !== pod.metadata.name)) {
          throw new IntakeRejection(403, "NotYourPod", `an enforcer reports for its own pod only: this token is bound to pod ${ref}, the report names ${clip(`${claim.namespace}/${claim.name}`, 300)}`);
        }
        const batch = batchOf(() => parseBatch(report.events, parseEnforcerEvent));
        const attribution = deps.attributor.ofPod(pod);
        const now = deps.now();
        return accept(reply, "enforcer", batch, batch.signals.map((signal) => ({ signal, attribution, labels: pod.metadata.labels, receivedAt: now })));
      } catch (err) {
        if (err instanceof IntakeRejection && err.status === 400) return reply.code(400).send({ error: { reason: err.reason, message: err.message } });
        return refuse(reply, "enforcer", err);
      }
    });

    scope.get("/v1/signals/unattributed", async (req, reply) => {
      try {
        await deps.authorizeSender(bearerToken(req.headers.authorization), "list");
      } catch (err) {
        return refuse(reply, "falco", err);
      }
      return { items: pipeline.recentUnattributed() };
    });
  });
}

function batchOf<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof SignalFormatError) throw new IntakeRejection(400, "MalformedEvents", err.message);
    throw err;
  }
}
