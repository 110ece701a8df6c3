// The signals feature, wired: the intake routes (every replica), sender authentication
// (TokenReview + SubjectAccessReview, cached per token), attribution from the pod cache, the
// pipeline (queue, correlation), responses and the Incident writer; and the in-process sink
// through which admission denials and posture changes become signals too.
// Correlation state lives in the replica that received the events (docs/signals.md).
import type { FastifyInstance } from "fastify";
import type { Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { TOKEN_AUDIENCE } from "../../common/names.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { RuntimeRule, ServiceIdentity } from "../../crds/types.gen.ts";
import { digestID } from "../../signals/fields.ts";
import { priorityRank, type Signal } from "../../signals/event.ts";
import { authenticatePod, SignRejection } from "../ca/issuer.ts";
import { TokenReviewCache } from "../ca/token-reviews.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { OperatorConfig } from "../config.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import { Attributor } from "./attribution.ts";
import { IncidentWriter, type CachedIncident } from "./incidents.ts";
import { IntakeRejection, signalRoutes } from "./intake.ts";
import { SignalMetrics } from "./metrics.ts";
import { SignalPipeline } from "./pipeline.ts";
import { Responder } from "./responses.ts";

/** The permission a sender of Falco events needs (ClusterRole tenet-signal-sender). */
export const SENDER_PERMISSION = { group: "tenet.dev", resource: "signals" } as const;

/** Tenet's own decisions, as signals (admission and posture call these; never block). */
export interface SignalSink {
  admissionDenied(a: { namespace: string; serviceAccount: string; labels?: Record<string, string>; rule: string; reason: string; message: string }): void;
  postureViolating(pod: CachedPod, detail: { rule?: string; reason: string; message: string }): void;
}

export interface SignalsFeature {
  routes(app: FastifyInstance): void;
  sink: SignalSink;
  informers: Informer<any>[];
  /** The Incidents cache (Tenet's own, by label), also read by the PolicyReports. */
  incidents: Informer<CachedIncident>;
  pipeline: SignalPipeline;
  stop(): Promise<void>;
}

export function createSignals(ctx: {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  pods: Informer<CachedPod>;
  identities: Informer<ServiceIdentity & TenetObject>;
  rules: Informer<RuntimeRule & TenetObject>;
  now?: () => number;
}): SignalsFeature {
  const now = ctx.now ?? Date.now;
  const log = ctx.log.child({ component: "signals" });
  const metrics = new SignalMetrics(ctx.metrics.registry);
  const attributor = new Attributor(ctx.pods, ctx.identities, ctx.cfg.trustDomain);
  const incidents = new IncidentWriter(ctx.kube, log, now);
  const responder = new Responder({ kube: ctx.kube, log, events: ctx.events, pods: ctx.pods, incidents, metrics, now });
  const pipeline = new SignalPipeline({ log, rules: ctx.rules, attributor, responder, metrics, now, queueLimit: ctx.cfg.signalQueueLimit });
  const senders = { create: new TokenReviewCache<string>(), list: new TokenReviewCache<string>() };

  async function authorizeSender(token: string | undefined, verb: "create" | "list"): Promise<string> {
    if (!token) throw new IntakeRejection(401, "MissingToken", 'no bearer token: send a ServiceAccount token with audience "tenet" in the Authorization header (docs/signals.md)');
    const cached = senders[verb].get(token);
    if (cached) return cached;
    const review = await ctx.kube.create("/apis/authentication.k8s.io/v1/tokenreviews", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: [TOKEN_AUDIENCE] } });
    const st = review.status ?? {};
    if (!st.authenticated || !(st.audiences ?? []).includes(TOKEN_AUDIENCE)) {
      throw new IntakeRejection(401, "InvalidToken", `the token was not accepted by the API server for audience "${TOKEN_AUDIENCE}" (forged, expired, or for another audience): project the sender's ServiceAccount token with audience: tenet`);
    }
    const user = st.user ?? {};
    const sar = await ctx.kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: { user: user.username, groups: user.groups, uid: user.uid, extra: user.extra, resourceAttributes: { verb, ...SENDER_PERMISSION } },
    });
    if (sar.status?.allowed !== true) {
      throw new IntakeRejection(403, "SenderForbidden", `${user.username ?? "this user"} may not ${verb} signals: bind it to the ClusterRole tenet-signal-sender (apiGroups [tenet.dev], resources [signals], verbs [create, list])`);
    }
    senders[verb].set(token, user.username);
    return user.username;
  }

  async function podOf(token: string | undefined): Promise<CachedPod> {
    try {
      return await authenticatePod(token, { kube: ctx.kube, pods: ctx.pods });
    } catch (err) {
      if (err instanceof SignRejection) throw new IntakeRejection(err.status, err.reason, err.status === 401 ? err.message : "the token is not bound to a running pod");
      throw err;
    }
  }

  const own = (s: Omit<Signal, "id" | "tags" | "count" | "claim" | "fields"> & { fields?: Signal["fields"] }): Signal => ({
    ...s,
    id: digestID("tenet", s.time, s.rule, s.output),
    tags: [s.layer],
    count: 1,
    claim: {},
    fields: s.fields ?? {},
  });
  const sink: SignalSink = {
    admissionDenied(a) {
      const t = now();
      const signal = own({ source: "tenet", layer: "admission", rule: "AdmissionDenied", priority: priorityRank("warning"), time: t, output: `${a.rule}: ${a.message}`.slice(0, 1024), fields: { reason: a.reason, rule: a.rule } });
      if (pipeline.hasRoom(1)) pipeline.enqueue([{ signal, attribution: attributor.ofServiceAccount(a.namespace, a.serviceAccount), labels: a.labels, receivedAt: t }]);
    },
    postureViolating(pod, detail) {
      if (detail.reason === "RuntimeSignal") return; // our own response: not new evidence
      const t = now();
      const signal = own({ source: "tenet", layer: "posture", rule: "PostureViolating", priority: priorityRank("warning"), time: t, output: `${detail.rule ?? ""} ${detail.reason}: ${detail.message}`.slice(0, 1024), fields: { reason: detail.reason, rule: detail.rule ?? null } });
      if (pipeline.hasRoom(1)) pipeline.enqueue([{ signal, attribution: attributor.ofPod(pod), labels: pod.metadata.labels, receivedAt: t }]);
    },
  };

  return {
    routes: (app) => signalRoutes(app, { log, metrics, pipeline, attributor, authorizeSender, authenticatePod: podOf, now }),
    sink,
    informers: [incidents.informer],
    incidents: incidents.informer,
    pipeline,
    async stop() {
      pipeline.stop();
      await incidents.flush();
      incidents.stop();
    },
  };
}
