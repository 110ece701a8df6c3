// Shared by the webhook benchmark's server and load generator: the cached scan data and the
// AdmissionReview it sends (a Deployment-made pod with 3 containers, all images scanned).
export const BENCH_NAMESPACE = "shop";
export const REPORTS = 1000;
export const RULES = 10;
const digest = (i: number) => "sha256:" + i.toString(16).padStart(64, "0");

/** A Trivy Operator VulnerabilityReport for ghcr.io/acme/svc-<i>, with a few findings. */
export function vulnerabilityReport(i: number) {
  const vulns = Array.from({ length: 8 }, (_, k) => ({
    vulnerabilityID: `CVE-2024-${1000 + ((i + k) % 50)}`,
    severity: ["CRITICAL", "HIGH", "MEDIUM", "LOW"][k % 4],
    resource: `lib${k}`,
    installedVersion: "1.0.0",
    fixedVersion: k % 3 ? "1.0.1" : "",
    title: `finding ${k}`,
  }));
  return {
    apiVersion: "aquasecurity.github.io/v1alpha1",
    kind: "VulnerabilityReport",
    metadata: { name: `replicaset-svc-${i}-app`, namespace: BENCH_NAMESPACE },
    report: {
      artifact: { repository: `acme/svc-${i}`, tag: "1.0.0", digest: digest(i) },
      registry: { server: "ghcr.io" },
      summary: { criticalCount: 2, highCount: 2, mediumCount: 2, lowCount: 2, unknownCount: 0 },
      vulnerabilities: vulns,
    },
  };
}

/** The token volume the API server's ServiceAccount admission plugin adds to every pod, as it writes it. */
export function serviceAccountVolume(name: string) {
  return {
    name,
    projected: {
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
      ],
      defaultMode: 420,
    },
  };
}

/** Five characters as the API server's name generator picks them (utilrand.String). */
export function randomSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  let s = "";
  for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

/**
 * The review of one pod of template `template` (0 for the default; others differ in their
 * pod-template-hash and generateName), members in the order the API server writes them. `token`:
 * the name of the ServiceAccount token volume (the fixed "kube-api-access-x" with a token-only
 * projection, or a real kube-api-access-xxxxx with the plugin's three sources); `name`: the
 * generated name, which /validate sees (names are generated after the mutating webhooks).
 */
export function podReview(uid: string, template = 0, token = "kube-api-access-x", name?: string) {
  const hash = template === 0 ? "7c9f8d6b5" : `t${template.toString(16).padStart(8, "0")}`;
  const image = (i: number) => `ghcr.io/acme/svc-${i}:1.0.0@${digest(i)}`;
  const container = (name: string, i: number) => ({
    name,
    image: image(i),
    ports: [{ containerPort: 8080 + i, protocol: "TCP" }],
    env: [{ name: "LOG_LEVEL", value: "info" }, { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    volumeMounts: [{ name: token, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true }],
  });
  return {
    kind: "AdmissionReview",
    apiVersion: "admission.k8s.io/v1",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      namespace: BENCH_NAMESPACE,
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller", groups: ["system:serviceaccounts", "system:authenticated"] },
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          ...(name !== undefined ? { name } : {}),
          generateName: `orders-${hash}-`,
          namespace: BENCH_NAMESPACE,
          labels: { app: "orders", "pod-template-hash": hash, tier: "backend" },
          annotations: { "tenet.dev/commit": "9f1c2ab" },
          ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `orders-${hash}`, uid: "0c3e1d2a-1111-4c3b-9d1e-2f3a4b5c6d7e", controller: true, blockOwnerDeletion: true }],
        },
        spec: {
          serviceAccountName: "orders",
          securityContext: { runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 },
          containers: [container("app", 1), container("worker", 2), container("metrics", 3)],
          volumes: [token === "kube-api-access-x" ? { name: token, projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3607 } }] } } : serviceAccountVolume(token)],
        },
      },
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}
