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
import { mutate } from "./handlers/mutate.ts";
import { validate } from "./handlers/validate.ts";
import { PatchCache } from "./handlers/patch-cache.ts";
import { VerdictCache } from "./handlers/verdict-cache.ts";
import { protectTenetMetadata, releaseReview } from "./handlers/protect.ts";
import { AdmissionMetrics, admissionRoute } from "./transport.ts";
import { webhookConfigController, type TrustBundle } from "./webhook-config.ts";

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
  /** The CA's trust bundle: the webhook configurations' caBundle. */
  trust: TrustBundle;
  /** The secure server the webhooks are served on (its port, for local runs by URL). */
  server: { port(): number };
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

  // The pods of one template share their patch and their verdict: computed once (handlers/*-cache.ts).
  const patches = new PatchCache();
  const verdicts = new VerdictCache();
  const rulesIn = (namespace: string): RuleRef[] =>
    ctx.rules.listNamespace(namespace).map((r) => ({ namespace, name: r.metadata.name, spec: r.spec }));

  return {
    controller,
    routes(app) {
      admissionRoute(app, {
        path: "/mutate",
        webhook: "mutate",
        log,
        metrics,
        handler: (req) => mutate(req, { namespaceLabels: (ns) => ctx.namespaces.get(ns)?.metadata.labels, config: injection, patches }),
      });
      admissionRoute(app, {
        path: "/validate",
        webhook: "validate",
        log,
        metrics,
        handler: async (req) =>
          (await protectTenetMetadata(req, protectDeps)) ??
          validate(req, {
            rules: rulesIn,
            scans: ctx.scans,
            now: () => new Date(),
            injection,
            verdicts,
            // Events go out after the answer: never a remote call on the request path.
            report: (_req, owner, verdict) =>
              setImmediate(() => {
                for (const rv of verdict.rules) {
                  if (rv.decision === "allow") continue;
                  const [ns, name] = rv.rule.split("/");
                  const rule = ctx.rules.get(`${ns}/${name}`);
                  if (!rule) continue;
                  const denied = rv.decision === "deny";
                  void ctx.events.emit(
                    { apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", metadata: rule.metadata as any },
                    denied ? "Warning" : "Normal",
                    denied ? "AdmissionDenied" : "AdmittedWithWarnings",
                    // owner names the object as the caller sent it: bounded, like every Event message.
                    clip(`${owner}: ${rv.message}`, 1024)!,
                  );
                }
              }),
          }),
      });
    },
  };
}
