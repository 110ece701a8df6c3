// One real control plane (etcd + kube-apiserver from hack/) per test run, started on first
// use so unit-only runs never pay for it. CRDs are installed once; each test gets its own
// namespace, because namespaces never finish deleting without a controller-manager.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Kube, loadKubeConfig, resourcePath, Resources } from "../../common/kube.ts";
import { run, waitFor } from "./exec.ts";

export const repoRoot = path.resolve(import.meta.dirname, "../..");
const script = path.join(repoRoot, "hack/controlplane.sh");
const stateDir = process.env.TENET_TEST_STATE_DIR ?? path.join(repoRoot, ".tenet/test-controlplane");
const env = { TENET_STATE_DIR: stateDir };

export interface TestCluster {
  kubeconfig: string;
  kube: Kube;
  binDir: string;
  kubectl(args: string[], opts?: { input?: string; allowFail?: boolean }): Promise<{ code: number; stdout: string; stderr: string }>;
  restartAPIServer(): Promise<void>;
  stopAPIServer(): Promise<void>;
}

export const CRD_NAMES = ["serviceidentities.tenet.dev", "apipolicies.tenet.dev", "runtimerules.tenet.dev", "incidents.tenet.dev"];

let starting: Promise<TestCluster> | undefined;

export function cluster(): Promise<TestCluster> {
  starting ??= start();
  return starting;
}

async function start(): Promise<TestCluster> {
  const t0 = Date.now();
  await run("bash", [script, "reset"], { env });
  const { stdout } = await run("bash", [script, "start"], { env });
  const kubeconfig = stdout.trim().split("\n").pop()!;
  const binDir = (await run("bash", [script, "bin"], { env })).stdout.trim();
  const kube = new Kube(loadKubeConfig(kubeconfig));
  const kubectl = (args: string[], opts: { input?: string; allowFail?: boolean } = {}) =>
    run(path.join(binDir, "kubectl"), ["--kubeconfig", kubeconfig, ...args], opts);
  // The real install: CRDs, namespace, ServiceAccount, RBAC (operators in tests run as that
  // ServiceAccount, so missing RBAC fails a test), Deployment (never scheduled here).
  await kubectl(["apply", "-k", path.join(repoRoot, "manifests")]);
  // The VulnerabilityReport CRD that Trivy Operator installs (our own faithful copy, test/fixtures/crds).
  await kubectl(["apply", "--server-side", "-f", path.join(repoRoot, "test/fixtures/crds/aquasecurity.github.io_vulnerabilityreports.yaml")]);
  await kubectl(["wait", "--for=condition=Established", "--timeout=30s", ...CRD_NAMES.map((n) => `crd/${n}`)]);
  // Discovery of freshly established CRDs can lag a moment behind the condition.
  await waitFor("tenet.dev discovery", () => kube.get("/apis/tenet.dev/v1alpha1").then((r) => r.resources?.length >= 3));
  process.stderr.write(`      [harness] control plane + CRDs ready in ${Date.now() - t0} ms (${kubeconfig})\n`);
  return {
    kubeconfig,
    kube,
    binDir,
    kubectl,
    restartAPIServer: async () => void (await run("bash", [script, "restart-apiserver"], { env })),
    stopAPIServer: async () => void (await run("bash", [script, "stop-apiserver"], { env })),
  };
}

/**
 * A kubeconfig that authenticates as the operator's ServiceAccount (tenet-system/tenet-operator)
 * with a bound token, so tests exercise exactly the RBAC that manifests/ grants.
 */
export async function operatorKubeconfig(): Promise<string> {
  const c = await cluster();
  const out = path.join(path.dirname(c.kubeconfig), "operator.kubeconfig");
  const tr = await c.kube.create(resourcePath(Resources.serviceAccounts, "tenet-system", "tenet-operator", "token"), {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: 3 * 3600 },
  });
  const ca = path.join(path.dirname(c.kubeconfig), "pki/ca.crt");
  writeFileSync(
    out,
    `apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "${c.kube.serverURL.replace(/\/$/, "")}", certificate-authority: "${ca}"}}]
users: [{name: tenet-operator, user: {token: "${tr.status.token}"}}]
contexts: [{name: local, context: {cluster: local, user: tenet-operator}}]
current-context: local
`,
    { mode: 0o600 },
  );
  return out;
}

export async function removeWebhookConfigurations() {
  if (!starting) return;
  const { kube } = await starting;
  let removed = false;
  for (const plural of ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]) {
    removed = (await kube.delete(resourcePath({ group: "admissionregistration.k8s.io", version: "v1", plural }, undefined, "tenet")).then(() => true, () => false)) || removed;
  }
  if (!removed) return;
  // The API server drops deleted webhooks asynchronously: wait until pods admit without them.
  await kube.create(resourcePath(Resources.serviceAccounts, "default"), { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } }).catch(() => undefined);
  // Annotated for injection, so a still-active mutating webhook would show itself by injecting.
  const probe = { apiVersion: "v1", kind: "Pod", metadata: { generateName: "probe-", annotations: { "tenet.dev/inject": "true" } }, spec: { containers: [{ name: "c", image: "x" }] } };
  await waitFor("webhooks to be gone", () => kube.create(resourcePath(Resources.pods, "default"), probe, { dryRun: "All" }).then((p) => !p.spec.initContainers), 10_000, 100);
}

export async function stopCluster() {
  if (!starting) return;
  starting = undefined;
  await run("bash", [script, "stop"], { env, allowFail: true });
}

/** A fresh namespace with the ServiceAccounts a test needs ("default" always). */
export async function newNamespace(prefix: string, serviceAccounts: string[] = []): Promise<string> {
  const { kube } = await cluster();
  const name = `${prefix}-${randomBytes(3).toString("hex")}`.toLowerCase().slice(0, 63);
  await kube.create(resourcePath(Resources.namespaces), { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { "tenet.dev/test": "true" } } });
  for (const sa of ["default", ...serviceAccounts]) {
    await kube.create(resourcePath(Resources.serviceAccounts, name), { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa } });
  }
  return name;
}
