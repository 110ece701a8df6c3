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

export const WEBHOOK_CONFIG_NAME = "tenet";
const NAME_LABEL = "kubernetes.io/metadata.name";

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

export function desiredWebhookConfigurations(ep: WebhookEndpoint, tenetNamespace: string) {
  const exempt = { key: NAME_LABEL, operator: "NotIn", values: [...new Set(["kube-system", tenetNamespace])] };
  const common = { sideEffects: "None", admissionReviewVersions: ["v1"], timeoutSeconds: ep.timeoutSeconds, matchPolicy: "Equivalent" };
  const podCreate = [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }];
  const mutating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIG_NAME, labels: { "app.kubernetes.io/part-of": "tenet" } },
    webhooks: [
      {
        name: "inject.tenet.dev",
        clientConfig: clientConfig(ep, "/mutate"),
        rules: podCreate,
        failurePolicy: "Fail",
        reinvocationPolicy: "Never",
        namespaceSelector: { matchLabels: { "tenet.dev/inject": "enabled" }, matchExpressions: [exempt] },
        ...common,
      },
      {
        name: "inject-annotated.tenet.dev",
        clientConfig: clientConfig(ep, "/mutate"),
        rules: podCreate,
        failurePolicy: "Ignore",
        reinvocationPolicy: "Never",
        namespaceSelector: { matchExpressions: [exempt, { key: "tenet.dev/inject", operator: "NotIn", values: ["enabled"] }] },
        ...common,
      },
    ],
  };
  const validating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIG_NAME, labels: { "app.kubernetes.io/part-of": "tenet" } },
    webhooks: [
      {
        name: "validate.tenet.dev",
        clientConfig: clientConfig(ep, "/validate"),
        rules: [
          { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods", "pods/ephemeralcontainers"], scope: "Namespaced" },
          { apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments", "statefulsets", "daemonsets", "replicasets"], scope: "Namespaced" },
          { apiGroups: ["batch"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["jobs", "cronjobs"], scope: "Namespaced" },
        ],
        failurePolicy: "Fail",
        namespaceSelector: { matchExpressions: [exempt] },
        // Updates that leave the spec alone (labels, annotations — Tenet's own posture writes
        // among them) are not sent at all: they cannot change a decision, and they keep working
        // while Tenet is down.
        matchConditions: [{ name: "spec-changed", expression: "request.operation != 'UPDATE' || object.spec != oldObject.spec" }],
        ...common,
      },
    ],
  };
  return { mutating, validating };
}
