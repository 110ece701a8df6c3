// The Mutating/ValidatingWebhookConfigurations Tenet registers, as pure desired state, and
// their failure modes (see docs/admission.md):
//   inject.tenet.dev            namespaces labelled tenet.dev/inject=enabled · failurePolicy Fail:
//                               no pod in an opted-in namespace starts without its enforcer
//   inject-annotated.tenet.dev  pods annotated tenet.dev/inject: "true" elsewhere · Ignore: a Tenet
//                               outage must not block every namespace (the operator flags
//                               opted-in pods that lack an enforcer)
//   validate.tenet.dev          pods and workload templates · Fail: nothing unchecked is admitted;
//                               updates that do not change the spec are not sent (matchConditions)
// kube-system and Tenet's own namespace are always exempt, by the immutable
// kubernetes.io/metadata.name label, so a broken Tenet can always be repaired.
// webhookConfigController (leader only) applies them, with the serving CA's bundle as caBundle
// (never the workload CA's: it signs names tenants choose; issue 11 item 2).
import { isNotFound, resourcePath, type Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { FieldManagers, INJECT_NAMESPACE_LABEL, NAMESPACE_NAME_LABEL, OPERATOR_NAME, PART_OF_TENET, WEBHOOK_CONFIG_NAME } from "../../common/names.ts";
import type { OperatorConfig } from "../config.ts";
import { GUARDED_ANNOTATIONS, GUARDED_LABELS } from "../../admission/protect.ts";
import { Controller } from "../runtime/controller.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";

export interface WebhookEndpoint {
  /** Local runs: https://127.0.0.1:<port>. In a cluster: undefined → the Service. */
  baseURL?: string;
  service: { namespace: string; name: string; port: number };
  caBundlePEM: string;
  timeoutSeconds: number;
}

function clientConfig(ep: WebhookEndpoint, path: string) {
  const caBundle = Buffer.from(ep.caBundlePEM).toString("base64");
  return ep.baseURL ? { url: `${ep.baseURL}${path}`, caBundle } : { service: { ...ep.service, path }, caBundle };
}

export function desiredWebhookConfigurations(ep: WebhookEndpoint, tenetNamespace: string, tenetUsernames: readonly string[] = []) {
  const exempt = { key: NAMESPACE_NAME_LABEL, operator: "NotIn", values: [...new Set(["kube-system", tenetNamespace])] };
  const common = { sideEffects: "None", admissionReviewVersions: ["v1"], timeoutSeconds: ep.timeoutSeconds, matchPolicy: "Equivalent" };
  const podCreate = [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }];
  const mutating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIG_NAME, labels: { ...PART_OF_TENET } },
    webhooks: [
      {
        name: "inject.tenet.dev",
        clientConfig: clientConfig(ep, "/mutate"),
        rules: podCreate,
        failurePolicy: "Fail",
        reinvocationPolicy: "Never",
        namespaceSelector: { matchLabels: { [INJECT_NAMESPACE_LABEL]: "enabled" }, matchExpressions: [exempt] },
        ...common,
      },
      {
        name: "inject-annotated.tenet.dev",
        clientConfig: clientConfig(ep, "/mutate"),
        rules: podCreate,
        failurePolicy: "Ignore",
        reinvocationPolicy: "Never",
        namespaceSelector: { matchExpressions: [exempt, { key: INJECT_NAMESPACE_LABEL, operator: "NotIn", values: ["enabled"] }] },
        ...common,
      },
    ],
  };
  const validating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIG_NAME, labels: { ...PART_OF_TENET } },
    webhooks: [
      {
        name: "validate.tenet.dev",
        clientConfig: clientConfig(ep, "/validate"),
        rules: [
          { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods", "pods/ephemeralcontainers"], scope: "Namespaced" },
          // A merge patch through pods/status changes labels and annotations as well. The kubelet's
          // status writes leave spec and Tenet's keys alone, so matchConditions keep them away.
          { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["pods/status"], scope: "Namespaced" },
          { apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments", "statefulsets", "daemonsets", "replicasets"], scope: "Namespaced" },
          { apiGroups: ["batch"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["jobs", "cronjobs"], scope: "Namespaced" },
        ],
        failurePolicy: "Fail",
        namespaceSelector: { matchExpressions: [exempt] },
        // Updates that leave the spec alone (labels, annotations) are not sent at all: they cannot
        // change a decision, and they keep working while Tenet is down — unless they touch the
        // labels and annotations Tenet's quarantine rests on (admission/protect.ts).
        matchConditions: [
          { name: "spec-or-tenet-metadata-changed", expression: specOrTenetMetadataChanged() },
          // Tenet's own metadata-only writes (posture labels, certificate serials) are not sent: the
          // webhook would admit them anyway (admission/protect.ts lets Tenet write its keys, and an
          // unchanged spec is not re-judged), and each one cost a round trip on rescans and issuance.
          ...(tenetUsernames.length ? [{ name: "not-tenet-metadata-write", expression: notTenetMetadataWrite(tenetUsernames) }] : []),
        ],
        ...common,
      },
    ],
  };
  return { mutating, validating };
}

/** CEL: not an update, or the spec changed, or one of the guarded labels/annotations appeared,
 * disappeared or changed. Presence and value are compared separately (an empty value counts). */
export function specOrTenetMetadataChanged(): string {
  const has = (o: string, f: string) => `(has(${o}.metadata.${f}) && k in ${o}.metadata.${f})`;
  const differs = (f: string) => `${has("object", f)} != ${has("oldObject", f)} || (${has("object", f)} && ${has("oldObject", f)} && object.metadata.${f}[k] != oldObject.metadata.${f}[k])`;
  const list = (keys: readonly string[]) => `[${keys.map((k) => `'${k}'`).join(", ")}]`;
  return [
    "request.operation != 'UPDATE'",
    "object.spec != oldObject.spec",
    `${list(GUARDED_LABELS)}.exists(k, ${differs("labels")})`,
    `${list(GUARDED_ANNOTATIONS)}.exists(k, ${differs("annotations")})`,
  ].join(" || ");
}

/** CEL: not an update by one of Tenet's own usernames that leaves the spec alone. */
export function notTenetMetadataWrite(usernames: readonly string[]): string {
  return `!(request.operation == 'UPDATE' && object.spec == oldObject.spec && request.userInfo.username in [${usernames.map((u) => JSON.stringify(u)).join(", ")}])`;
}

/** The CA's side the configurations need: the bundle (their caBundle), and when it changes. */
export interface TrustBundle {
  readonly authorities?: { bundlePem: string };
  onChange(cb: () => void): void;
}

/**
 * Leader only: applies both configurations, with the current trust bundle as caBundle; again
 * whenever the bundle changes. Waits (requeue) until there is a bundle and the server listens.
 */
export function webhookConfigController(ctx: { kube: Kube; cfg: OperatorConfig; log: Logger; metrics: RuntimeMetrics; trust: TrustBundle; server: { port(): number } }): Controller {
  const { kube, cfg } = ctx;
  const controller = new Controller({
    name: "webhooks",
    log: ctx.log,
    metrics: ctx.metrics,
    workers: 1,
    reconcile: async (_key, rlog) => {
      const bundle = ctx.trust.authorities?.bundlePem;
      const port = ctx.server.port();
      if (!bundle || !port) return { requeueAfterMs: 2000 };
      const { mutating, validating } = desiredWebhookConfigurations(
        {
          baseURL: cfg.webhookHost ? `https://${cfg.webhookHost}:${port}` : undefined,
          service: { namespace: cfg.namespace, name: OPERATOR_NAME, port: 443 },
          caBundlePEM: bundle,
          timeoutSeconds: cfg.webhookTimeoutSeconds,
        },
        cfg.namespace,
        cfg.operatorUsernames,
      );
      // Owned by Tenet's ClusterRole, so that uninstalling Tenet (kubectl delete -k manifests/)
      // garbage-collects them: left behind with failurePolicy Fail they would refuse every pod
      // write in the cluster. The ClusterRole's deletion also takes away the rights to recreate them.
      const owner = await kube
        .request("GET", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${encodeURIComponent(cfg.clusterRoleName)}`)
        .catch((e) => (isNotFound(e) ? undefined : Promise.reject(e)));
      const ownerReferences = owner?.metadata?.uid
        ? [{ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: cfg.clusterRoleName, uid: owner.metadata.uid }]
        : undefined;
      if (!ownerReferences) rlog.warn({ clusterRole: cfg.clusterRoleName }, "Tenet's ClusterRole was not found: the webhook configurations have no owner and must be deleted by hand after an uninstall");
      for (const c of [mutating, validating]) (c.metadata as any).ownerReferences = ownerReferences;
      const group = { group: "admissionregistration.k8s.io", version: "v1" };
      await kube.apply(resourcePath({ ...group, plural: "mutatingwebhookconfigurations" }, undefined, WEBHOOK_CONFIG_NAME), mutating, FieldManagers.operator);
      await kube.apply(resourcePath({ ...group, plural: "validatingwebhookconfigurations" }, undefined, WEBHOOK_CONFIG_NAME), validating, FieldManagers.operator);
      rlog.info({ url: cfg.webhookHost ? `https://${cfg.webhookHost}:${port}` : `service ${cfg.namespace}/${OPERATOR_NAME}` }, "webhook configurations applied");
    },
  });
  ctx.trust.onChange(() => controller.enqueue("webhooks"));
  controller.enqueue("webhooks");
  return controller;
}
