// The AdmissionReview transport: strict decoding (content type, size, shape; nesting depth in
// operator/server/json.ts; reviews of one template parsed once, review-cache.ts), the request uid
// echoed, always an admission.k8s.io/v1 answer, written by reviewAnswer. Handlers are plain functions
// (request → result) that never see fastify; a handler that throws becomes a deliberate
// denial that names the error, never a silent allow.
import type { FastifyInstance } from "fastify";
import { Counter, Histogram, type Registry } from "prom-client";
import { BoundedLabel, clip, clipList, oneOf } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import { strictJSON } from "../server/json.ts";
import { ReviewCache } from "./review-cache.ts";
import { ADMISSION_KINDS, type AdmissionHandler, type AdmissionRequest, type AdmissionResult } from "../../admission/review.ts";

// The request and result types live with the handlers (admission/review.ts), shared with `tenet check`.
export type { AdmissionHandler, AdmissionRequest, AdmissionResult } from "../../admission/review.ts";
export { ADMISSION_KINDS } from "../../admission/review.ts";

/** The largest AdmissionReview we accept: a pod with big annotations fits; a flood does not. */
export const ADMISSION_BODY_LIMIT = 3 * 1024 * 1024;

export class AdmissionMetrics {
  readonly requests: Counter;
  readonly duration: Histogram;
  /** Reasons are code constants; bounded anyway, so no future handler can grow the label set. */
  private readonly reasons = new BoundedLabel(64);
  /** Requests counted in plain numbers, written to the counter when it is read (a labelled inc costs more than a decision). */
  private readonly counts = new Map<string, { labels: Record<string, string>; n: number }>();
  private readonly timers = new Map<string, { startTimer(): () => void }>();
  private readonly caches: { webhook: string; cache: ReviewCache }[] = [];
  private readonly answers: { cache: string; counts: { hits: number; misses: number } }[] = [];
  constructor(registry: Registry) {
    const counts = this.counts;
    this.requests = new Counter({
      name: "tenet_admission_requests_total",
      help: "Admission requests by webhook, kind, decision (allowed/denied/error) and reason.",
      labelNames: ["webhook", "kind", "decision", "reason"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, n } of counts.values()) this.inc(labels, n);
      },
    });
    this.duration = new Histogram({
      name: "tenet_admission_duration_seconds",
      help: "Time to answer an AdmissionReview, by webhook.",
      labelNames: ["webhook"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [registry],
    });
    const caches = this.caches;
    new Counter({
      name: "tenet_admission_review_cache_total",
      help: "AdmissionReviews by webhook and how they were parsed: hit (a template parsed before), miss (parsed; a text is kept from its second review on, never one with a pod's random ServiceAccount token volume), unkeyed (not of the API server's shape, too large, or with a duplicate uid: parsed every time).",
      labelNames: ["webhook", "result"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { webhook, cache } of caches) {
          this.inc({ webhook, result: "hit" }, cache.hits);
          this.inc({ webhook, result: "miss" }, cache.misses);
          this.inc({ webhook, result: "unkeyed" }, cache.unkeyed);
        }
      },
    });
    const answers = this.answers;
    new Counter({
      name: "tenet_admission_cache_total",
      help: "Injection patches (cache=patch) and RuntimeRule verdicts (cache=verdict) answered from the cache (hit) or computed (miss); replicas that differ only in their ServiceAccount token volume's name share an entry, kept from its second sighting on.",
      labelNames: ["cache", "result"],
      registers: [registry],
      collect() {
        this.reset();
        for (const { cache, counts } of answers) {
          this.inc({ cache, result: "hit" }, counts.hits);
          this.inc({ cache, result: "miss" }, counts.misses);
        }
      },
    });
  }

  /** Reports a handler's cache (admission/patch-cache.ts, verdict-cache.ts): its hits and misses, read when the metrics are. */
  answerCache(cache: "patch" | "verdict", counts: { hits: number; misses: number }) {
    this.answers.push({ cache, counts });
  }

  /** Counts one request with every label bounded: kind to ADMISSION_KINDS, reason to at most 64 values. */
  count(webhook: string, kind: unknown, decision: "allowed" | "denied" | "rejected", reason: unknown) {
    const labels = { webhook, kind: kind === "unknown" ? "unknown" : oneOf(kind, ADMISSION_KINDS), decision, reason: this.reasons.value(reason) };
    // The set is finite (every label is bounded), so the map is too.
    const id = `${labels.webhook}|${labels.kind}|${labels.decision}|${labels.reason}`;
    const c = this.counts.get(id);
    if (c) c.n++;
    else this.counts.set(id, { labels, n: 1 });
  }

  /** Starts the duration timer of a webhook (its child histogram, kept). */
  timer(webhook: string): () => void {
    let h = this.timers.get(webhook);
    if (!h) this.timers.set(webhook, (h = this.duration.labels({ webhook })));
    return h.startTimer();
  }

  /** Reports a route's review cache (its hits and misses, read when the metrics are). */
  reviewCache(webhook: string, cache: ReviewCache) {
    this.caches.push({ webhook, cache });
  }
}

/** Checks the envelope; returns a readable problem or undefined. */
function envelopeProblem(body: any): string | undefined {
  if (!body || typeof body !== "object" || Array.isArray(body)) return "body must be an AdmissionReview object";
  if (body.apiVersion !== "admission.k8s.io/v1") return `apiVersion must be admission.k8s.io/v1, got ${clip(JSON.stringify(body.apiVersion), 64)}`;
  if (body.kind !== "AdmissionReview") return `kind must be AdmissionReview, got ${clip(JSON.stringify(body.kind), 64)}`;
  const r = body.request;
  if (!r || typeof r !== "object") return "request is missing";
  if (typeof r.uid !== "string" || !r.uid) return "request.uid is missing";
  if (!r.kind || typeof r.kind.kind !== "string") return "request.kind is missing";
  if (!r.resource || typeof r.resource.resource !== "string") return "request.resource is missing";
  if (!["CREATE", "UPDATE", "DELETE", "CONNECT"].includes(r.operation)) return `request.operation ${clip(JSON.stringify(r.operation), 64)} is not one of CREATE, UPDATE, DELETE, CONNECT`;
  if (r.object !== undefined && r.object !== null && typeof r.object !== "object") return "request.object must be an object";
  return undefined;
}

export function admissionRoute(app: FastifyInstance, opts: { path: string; webhook: string; handler: AdmissionHandler; log: Logger; metrics: AdmissionMetrics }) {
  // Its own scope, for its own JSON parser: the server's strict parse, behind the review cache.
  void app.register(async (scope) => {
    const parse = strictJSON(scope);
    const keys = new WeakMap<object, string>();
    const reviews = new ReviewCache(parse);
    opts.metrics.reviewCache(opts.webhook, reviews);
    scope.removeContentTypeParser("application/json");
    scope.addContentTypeParser("application/json", { parseAs: "string" }, (req, text, done) => {
      let review;
      try {
        review = reviews.review(text as string);
      } catch (err) {
        return done(err as Error, undefined);
      }
      if (review.key !== undefined) keys.set(review.body as object, review.key);
      done(null, review.body);
    });
    scope.post(opts.path, { bodyLimit: ADMISSION_BODY_LIMIT }, async (req, reply) => {
      const end = opts.metrics.timer(opts.webhook);
      const body = req.body as any;
      const problem = envelopeProblem(body);
      if (problem) {
        end();
        opts.metrics.count(opts.webhook, "unknown", "rejected", "MalformedReview");
        return reply.code(400).send({ error: { reason: "MalformedReview", message: problem } });
      }
      const request = body.request as AdmissionRequest;
      // A child logger per request costs more than most decisions: build it only to log. Every
      // field comes from the caller, so each is cut to a fixed length.
      const log = () =>
        opts.log.child({
          webhook: opts.webhook,
          uid: clip(request.uid, 64),
          kind: clip(request.kind.kind, 64),
          namespace: clip(request.namespace, 64),
          name: clip(request.name ?? request.object?.metadata?.generateName, 256),
          operation: request.operation,
        });
      let result: AdmissionResult;
      try {
        result = await opts.handler(request, keys.get(body));
      } catch (err) {
        log().error({ err: clip(String((err as Error)?.stack ?? err), 4096) }, "admission handler failed; denying");
        result = { allowed: false, reason: "InternalError", message: `Tenet could not evaluate this request (${clip(String((err as Error)?.message ?? err), 512)}); it is refused rather than admitted unchecked. Retry, or see the tenet-operator logs.` };
      }
      end();
      opts.metrics.count(opts.webhook, request.kind.kind, result.allowed ? "allowed" : "denied", result.reason);
      if (!result.allowed) log().info({ reason: result.reason, message: clip(result.message, 4096) }, "denied");
      else if (result.warnings?.length) log().info({ reason: result.reason, warnings: clipList(result.warnings) }, "admitted with warnings");
      else if (opts.log.isLevelEnabled("debug")) log().debug({ reason: result.reason, patched: !!result.patch?.length }, "admitted");
      return reply.type("application/json; charset=utf-8").send(reviewAnswer(request.uid, result));
    });
  });
}

/** The patch members of cached (frozen) patches, encoded once: the answer then copies bytes instead of encoding 3 KB of base64 per request. */
const patchMembers = new WeakMap<object, Buffer>();

/**
 * The AdmissionReview answer's JSON, written directly: the same text JSON.stringify gives for
 * { apiVersion, kind, response: { uid, allowed, status?, patchType?, patch?, warnings? } }
 * (test/unit/admission-review-cache.test.ts), without walking an object. The patch is base64: no
 * escaping. An answer with a patch is bytes (its patch member encoded once per cached patch).
 */
export function reviewAnswer(uid: string, result: AdmissionResult): string | Buffer {
  let head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)},"allowed":${result.allowed ? "true" : "false"}`;
  if (!result.allowed) head += `,"status":{"code":403,"reason":"Forbidden","message":${JSON.stringify(result.message ?? "denied by Tenet")}}`;
  const tail = `${result.warnings?.length ? `,"warnings":${JSON.stringify(result.warnings.map((w) => w.slice(0, 400)))}` : ""}}}`;
  const patch = result.patch;
  if (!patch?.length) return head + tail;
  let member = patchMembers.get(patch);
  if (!member) {
    member = Buffer.from(`,"patchType":"JSONPatch","patch":"${result.encodedPatch ?? Buffer.from(JSON.stringify(patch)).toString("base64")}"`);
    if (Object.isFrozen(patch)) patchMembers.set(patch, member);
  }
  return Buffer.concat([Buffer.from(head), member, Buffer.from(tail)]);
}
