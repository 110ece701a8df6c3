// The admission feature, wired: the /mutate and /validate routes on the secure server, decided
// from the caches (namespaces, RuntimeRules, the scan index), Events for audit warnings and
// denials, and the leader's controller that keeps the webhook configurations (and their
// caBundle) current (webhook-config.ts).
import type { FastifyInstance } from "fastify";
import type { Kube } from "../../common/kube.ts";
import { clip } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { RuntimeRule } from "../../crds/types.gen.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import type { ScanIndex } from "../../scans/scan-index.ts";
import type { CachedNamespace } from "../cache/namespaces.ts";
import type { OperatorConfig } from "../config.ts";
import type { Controller } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import { mutate, type MutateDeps } from "../../admission/mutate.ts";
import { validate, type ValidateDeps } from "../../admission/validate.ts";
import { protectTenetMetadata, releaseReview } from "../../admission/protect.ts";
import { AdmissionMetrics, admissionRoute, type AdmissionRequest } from "./transport.ts";
import { PatchCache } from "../../admission/patch-cache.ts";
import { VerdictCache } from "../../admission/verdict-cache.ts";
import { webhookConfigController, type TrustBundle } from "./webhook-config.ts";
import type { SignalSink } from "../signals/index.ts";
import { recordDenial } from "../reports/admission.ts";

export interface AdmissionFeature {
  /** Leader only: applies the webhook configurations. */
  controller: Controller;
  /** POST /mutate, POST /validate. */
  routes(app: FastifyInstance): void;
}

export function createAdmission(ctx: {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  namespaces: Informer<CachedNamespace>;
  rules: Informer<RuntimeRule & TenetObject>;
  scans: ScanIndex;
  /** The serving CA's bundle: the webhook configurations' caBundle. */
  trust: TrustBundle;
  /** The secure server the webhooks are served on (its port, for local runs by URL). */
  server: { port(): number };
  /** Denials become runtime signals too (operator/signals/). */
  signals?: SignalSink;
}): AdmissionFeature {
  const { cfg } = ctx;
  const injection = cfg.injection;
  const log = ctx.log.child({ component: "admission" });
  const metrics = new AdmissionMetrics(ctx.metrics.registry);
  const controller = webhookConfigController(ctx);

  // Who Tenet is: its configured usernames, and what the API server says this process is
  // (SelfSubjectReview; needs no RBAC), so a renamed ServiceAccount still writes its own labels.
  const tenetUsers = new Set(cfg.operatorUsernames);
  void ctx.kube
    .create("/apis/authentication.k8s.io/v1/selfsubjectreviews", { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" })
    .then((r: any) => {
      const me = r?.status?.userInfo?.username;
      if (typeof me === "string" && me) tenetUsers.add(me);
      log.info({ usernames: [...tenetUsers] }, "Tenet's own identities for its pod metadata");
    })
    .catch((err) => log.warn({ err: (err as Error).message, usernames: [...tenetUsers] }, "SelfSubjectReview failed; Tenet's pod metadata is writable by the configured usernames only"));
  const protectDeps = {
    isTenet: (u: string | undefined) => !!u && tenetUsers.has(u),
    mayRelease: async (user: any, namespace: string) => {
      const r = await ctx.kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", releaseReview(user, namespace));
      return r?.status?.allowed === true;
    },
  };

  // The pods of one template share their patch and their verdict: computed once (admission/*-cache.ts).
  const patches = new PatchCache();
  const verdicts = new VerdictCache();
  metrics.answerCache("patch", patches);
  metrics.answerCache("verdict", verdicts);
  const rulesIn = (namespace: string): RuleRef[] =>
    ctx.rules.listNamespace(namespace).map((r) => ({ namespace, name: r.metadata.name, spec: r.spec }));

  // Built once, not per request.
  const mutateDeps: MutateDeps = { namespaceLabels: (ns) => ctx.namespaces.get(ns)?.metadata.labels, config: injection, patches };
  const validateDeps: ValidateDeps = {
    rules: rulesIn,
    scans: ctx.scans,
    now: () => new Date(),
    injection,
    verdicts,
    // Events go out after the answer: never a remote call on the request path.
    report: (req, owner, verdict) =>
      setImmediate(() => {
        // The denied object, for the leader's PolicyReports (operator/reports/admission.ts).
        const related = deniedObject(req);
        for (const rv of verdict.rules) {
          if (rv.decision === "allow") continue;
          const [ns, name] = rv.rule.split("/");
          const rule = ctx.rules.get(`${ns}/${name}`);
          if (!rule) continue;
          const denied = rv.decision === "deny";
          if (denied) ctx.signals?.admissionDenied({ namespace: ns, ...podTemplateOf(req.object), rule: rv.rule, reason: "AdmissionDenied", message: clip(`${owner}: ${rv.message}`, 512)! });
          void ctx.events.emit(
            { apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", metadata: rule.metadata as any },
            denied ? "Warning" : "Normal",
            denied ? "AdmissionDenied" : "AdmittedWithWarnings",
            // owner names the object as the caller sent it: bounded, like every Event message.
            clip(`${owner}: ${rv.message}`, 1024)!,
            denied ? { related, action: req.operation } : undefined,
          );
          if (denied) void recordDenial(ctx.events, cfg, rule, related, req.operation, clip(`${owner}: ${rv.message}`, 1024)!);
        }
      }),
  };

  return {
    controller,
    routes(app) {
      admissionRoute(app, {
        path: "/mutate",
        webhook: "mutate",
        log,
        metrics,
        handler: (req, key) => mutate(req, mutateDeps, key),
      });
      admissionRoute(app, {
        path: "/validate",
        webhook: "validate",
        log,
        metrics,
        handler: async (req, key) =>
          (await protectTenetMetadata(req, protectDeps)) ??
          validate(req, validateDeps, key),
      });
    },
  };
}

/** The ServiceAccount and labels of the pod (or pod template) a denied request would have run. */
function podTemplateOf(obj: any): { serviceAccount: string; labels?: Record<string, string> } {
  const spec = obj?.kind === "Pod" ? obj?.spec : obj?.spec?.template?.spec ?? obj?.spec?.jobTemplate?.spec?.template?.spec;
  const labels = obj?.kind === "Pod" ? obj?.metadata?.labels : obj?.spec?.template?.metadata?.labels;
  const sa = typeof spec?.serviceAccountName === "string" && spec.serviceAccountName ? spec.serviceAccountName : "default";
  return { serviceAccount: sa.slice(0, 253), labels: labels && typeof labels === "object" ? labels : undefined };
}

/** The object an admission request was about, as an Event's `related` reference (name "prefix*" for generateName). */
function deniedObject(req: AdmissionRequest) {
  const m = req.object?.metadata ?? {};
  const name = typeof m.name === "string" && m.name ? m.name : typeof m.generateName === "string" && m.generateName ? `${m.generateName}*` : "(unnamed)";
  const group = req.kind.group ? `${req.kind.group}/` : "";
  return { apiVersion: clip(`${group}${req.kind.version}`, 128)!, kind: clip(req.kind.kind, 63)!, namespace: req.namespace ?? m.namespace, name: clip(name, 253)! };
}
