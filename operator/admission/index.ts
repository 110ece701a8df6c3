// The admission feature, wired: caches the webhooks decide from (namespaces, RuntimeRules,
// scan data), the /mutate and /validate routes, Events for audit warnings and denials, and
// the leader's controller that keeps the webhook configurations (and their caBundle) current.
import type { FastifyInstance } from "fastify";
import type { Kube } from "../../common/kube.ts";
import { resourcePath, Resources } from "../../common/kube.ts";
import { clip } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import type { RuntimeRule } from "../../crds/types.gen.ts";
import { repositoryOf } from "../../policy/images.ts";
import { ScanIndex, ScanParseError, fromTrivyJSON, fromVulnerabilityReport } from "../../policy/scans.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import { AdmissionMetrics, admissionRoute } from "../../webhook/admission.ts";
import { mutate } from "../../webhook/handlers/mutate.ts";
import { validate } from "../../webhook/handlers/validate.ts";
import type { InjectionConfig } from "../../webhook/inject.ts";
import type { OperatorConfig } from "../config.ts";
import type { TenetObject } from "../controllers/status-reconciler.ts";
import { Controller } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import { Informer, type KubeObject } from "../runtime/informer.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import { desiredWebhookConfigurations, WEBHOOK_CONFIG_NAME } from "./webhook-config.ts";

export const TRIVY_REPORT_LABEL = "tenet.dev/trivy-report";

const VulnerabilityReports = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };

interface NamespaceInfo extends KubeObject {}
export interface ScanSource extends KubeObject {
  keys: string[];
  /** Image repositories the source describes (policy/images.ts repositoryOf), so rescans find the pods to re-evaluate. */
  repositories: string[];
}

export interface AdmissionFeature {
  informers: Informer<any>[];
  controller: Controller;
  scans: ScanIndex;
  /** The caches admission decides from, shared with rescans (operator/posture). */
  sources: { namespaces: Informer<KubeObject>; reports: Informer<ScanSource>; trivyConfigMaps: Informer<ScanSource> };
  routes(app: FastifyInstance): void;
  /** Call when the trust bundle or the serving port changes. */
  refreshConfigurations(): void;
}

export function createAdmission(ctx: {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  rules: Informer<RuntimeRule & TenetObject>;
  injection: InjectionConfig;
  bundle: () => string | undefined;
  securePort: () => number;
}): AdmissionFeature {
  const { kube, cfg } = ctx;
  const log = ctx.log.child({ component: "admission" });
  const scans = new ScanIndex();
  const metrics = new AdmissionMetrics(ctx.metrics.registry);

  const namespaces = new Informer<NamespaceInfo>(kube, log, {
    name: "namespaces",
    resource: Resources.namespaces,
    transform: (raw) => ({ metadata: { name: raw.metadata.name, resourceVersion: raw.metadata.resourceVersion, labels: raw.metadata.labels } }),
  });

  // Scan data: keep only the parsed record; a malformed report is logged and skipped, never fatal.
  const scanSource = (source: string, parse: (raw: any) => { key: string; record: ReturnType<typeof fromTrivyJSON> }[]) => (raw: any): ScanSource => {
    const meta = { name: raw.metadata.name, namespace: raw.metadata.namespace, resourceVersion: raw.metadata.resourceVersion, uid: raw.metadata.uid };
    const keys: string[] = [];
    const repositories: string[] = [];
    try {
      for (const { key, record } of parse(raw)) {
        scans.upsert(key, record);
        keys.push(key);
        repositories.push(repositoryOf(record.image));
      }
    } catch (err) {
      const why = err instanceof ScanParseError ? err.message : String(err);
      log.warn({ source: `${source} ${meta.namespace}/${meta.name}`, err: why }, "ignoring unreadable scan report");
    }
    return { metadata: meta, keys, repositories };
  };
  const reports = new Informer<ScanSource>(kube, log, {
    name: "vulnerabilityreports",
    resource: VulnerabilityReports,
    optional: true,
    transform: scanSource("VulnerabilityReport", (raw) => [{ key: `vr/${raw.metadata.namespace}/${raw.metadata.name}`, record: fromVulnerabilityReport(raw) }]),
  });
  const trivyConfigMaps = new Informer<ScanSource>(kube, log, {
    name: "trivy-reports",
    resource: Resources.configMaps,
    namespace: cfg.namespace,
    labelSelector: `${TRIVY_REPORT_LABEL}=true`,
    transform: scanSource("ConfigMap", (raw) =>
      Object.entries(raw.data ?? {}).map(([file, text]) => {
        const source = `ConfigMap ${raw.metadata.namespace}/${raw.metadata.name} key ${file}`;
        let doc: unknown;
        try {
          doc = JSON.parse(String(text));
        } catch {
          throw new ScanParseError(`${source} is not JSON`);
        }
        return { key: `cm/${raw.metadata.name}/${file}`, record: fromTrivyJSON(doc, source) };
      }),
    ),
  });
  for (const inf of [reports, trivyConfigMaps]) {
    inf.onChange((type, obj, old) => {
      const stale = (old?.keys ?? []).filter((k) => type === "delete" || !obj.keys.includes(k));
      for (const k of type === "delete" ? obj.keys : stale) scans.remove(k);
    });
  }

  const rulesIn = (namespace: string): RuleRef[] =>
    ctx.rules.listNamespace(namespace).map((r) => ({ namespace, name: r.metadata.name, spec: r.spec }));

  const controller = new Controller({
    name: "webhooks",
    log: ctx.log,
    metrics: ctx.metrics,
    workers: 1,
    reconcile: async (_key, rlog) => {
      const bundle = ctx.bundle();
      const port = ctx.securePort();
      if (!bundle || !port) return { requeueAfterMs: 2000 };
      const { mutating, validating } = desiredWebhookConfigurations(
        {
          baseURL: cfg.webhookHost ? `https://${cfg.webhookHost}:${port}` : undefined,
          service: { namespace: cfg.namespace, name: "tenet-operator", port: 443 },
          caBundlePEM: bundle,
          timeoutSeconds: cfg.webhookTimeoutSeconds,
        },
        cfg.namespace,
      );
      const group = { group: "admissionregistration.k8s.io", version: "v1" };
      await kube.apply(resourcePath({ ...group, plural: "mutatingwebhookconfigurations" }, undefined, WEBHOOK_CONFIG_NAME), mutating, "tenet-operator");
      await kube.apply(resourcePath({ ...group, plural: "validatingwebhookconfigurations" }, undefined, WEBHOOK_CONFIG_NAME), validating, "tenet-operator");
      rlog.info({ url: cfg.webhookHost ? `https://${cfg.webhookHost}:${port}` : `service ${cfg.namespace}/tenet-operator` }, "webhook configurations applied");
    },
  });

  return {
    informers: [namespaces, reports, trivyConfigMaps],
    controller,
    scans,
    sources: { namespaces, reports, trivyConfigMaps },
    refreshConfigurations: () => controller.enqueue("webhooks"),
    routes(app) {
      admissionRoute(app, {
        path: "/mutate",
        webhook: "mutate",
        log,
        metrics,
        handler: (req) => mutate(req, { namespaceLabels: (ns) => namespaces.get(ns)?.metadata.labels, config: ctx.injection }),
      });
      admissionRoute(app, {
        path: "/validate",
        webhook: "validate",
        log,
        metrics,
        handler: (req) =>
          validate(req, {
            rules: rulesIn,
            scans,
            now: () => new Date(),
            enforcerImage: ctx.injection.image,
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
