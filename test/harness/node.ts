// The e2e tier's view of the real node (hack/node.sh): Tenet installed as its Deployment, real
// pods. Traffic that a policy must stop is sent from a pod (kubectl exec), never from the node.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Kube, loadKubeConfig } from "../../common/kube.ts";
import { repoRoot } from "./controlplane.ts";
import { run, waitFor } from "./exec.ts";

const nodeDir = process.env.TENET_NODE_DIR ?? "/tmp/tenet-node";
export const kubeconfig = process.env.TENET_NODE_KUBECONFIG ?? path.join(nodeDir, "host.kubeconfig");
let binDir: string | undefined;
let client: Kube | undefined;

export function requireNode() {
  if (!existsSync(kubeconfig)) throw new Error(`no real node: ${kubeconfig} is missing; run hack/node.sh up && hack/node.sh install (hack/test.sh e2e does both)`);
}

export function kube(): Kube {
  requireNode();
  return (client ??= new Kube(loadKubeConfig(kubeconfig)));
}

export async function kubectl(args: string[], opts: { input?: string; allowFail?: boolean } = {}) {
  requireNode();
  binDir ??= (await run("bash", [path.join(repoRoot, "hack/controlplane.sh"), "bin"])).stdout.trim();
  return run(path.join(binDir, "kubectl"), ["--kubeconfig", kubeconfig, ...args], opts);
}

export const apply = (yaml: string) => kubectl(["apply", "-f", "-"], { input: yaml });

/** kubectl exec into a container; never throws on the command's own failure. */
export const exec = (namespace: string, pod: string, container: string, cmd: string[]) =>
  kubectl(["exec", "-n", namespace, pod, "-c", container, "--", ...cmd], { allowFail: true });

/** The Running pods matching a label selector, oldest first. */
export async function runningPods(namespace: string, selector: string): Promise<any[]> {
  const list = await kube().get(`/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`);
  return list.items
    .filter((p: any) => p.status?.phase === "Running" && !p.metadata.deletionTimestamp)
    .sort((a: any, b: any) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp));
}

export const isReady = (pod: any) => pod?.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");

export async function readyPod(namespace: string, selector: string, timeoutMs = 90_000): Promise<any> {
  return waitFor(`a Ready pod ${selector} in ${namespace}`, async () => (await runningPods(namespace, selector)).find(isReady), timeoutMs, 500);
}

/** A fresh namespace, opted into injection unless told otherwise; deleted by the returned function. */
export async function namespace(prefix: string, opts: { inject?: boolean } = {}) {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  const labels = opts.inject === false ? {} : { "tenet.dev/inject": "enabled" };
  await kube().create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
  await waitFor(`default ServiceAccount in ${name}`, () => kube().get(`/api/v1/namespaces/${name}/serviceaccounts/default`).then(() => true), 30_000, 200);
  return { name, remove: () => kubectl(["delete", "namespace", name, "--wait=false"], { allowFail: true }) };
}

/** The examples' manifests (examples/), moved to another namespace. */
export function example(file: string, ns: string, replace: Record<string, string> = {}): string {
  let text = readFileSync(path.join(repoRoot, "examples", file), "utf8")
    .replaceAll("namespace: demo", `namespace: ${ns}`)
    .replaceAll("/ns/demo/", `/ns/${ns}/`)
    .replaceAll(".demo.svc", `.${ns}.svc`);
  for (const [from, to] of Object.entries(replace)) text = text.replaceAll(from, to);
  return text;
}

/** Operator pods and which one holds the leader Lease. */
export async function operators() {
  const pods = await runningPods("tenet-system", "app.kubernetes.io/name=tenet-operator");
  const lease = await kube().get("/apis/coordination.k8s.io/v1/namespaces/tenet-system/leases/tenet-operator-leader").catch(() => undefined);
  return { pods, leader: lease?.spec?.holderIdentity as string | undefined };
}

/** Admission is answering: a server-side dry run of a pod create goes through the webhooks. */
export async function admissionAnswers(ns: string): Promise<{ ok: boolean; output: string }> {
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: `probe-${randomBytes(3).toString("hex")}`, namespace: ns }, spec: { containers: [{ name: "app", image: "ghcr.io/acme/e2e-app:1.0", command: ["node", "/app/server.js"] }] } };
  const r = await kubectl(["create", "--dry-run=server", "-o", "name", "-f", "-"], { input: JSON.stringify(pod), allowFail: true });
  return { ok: r.code === 0, output: (r.stdout + r.stderr).trim() };
}

/** The audit records an enforcer wrote (its container log), newest last. */
export async function auditRecords(namespace: string, pod: string): Promise<any[]> {
  const { stdout } = await kubectl(["logs", "-n", namespace, pod, "-c", "tenet-enforcer"]);
  return stdout.split("\n").filter((l) => l.includes('"log":"audit"')).map((l) => JSON.parse(l));
}

/** The examples' orders + frontend (identities, RuntimeRule, APIPolicy, workloads) in namespace ns. */
export async function deployDemo(ns: string, images: { orders: string; frontend: string }, replace: Record<string, string> = {}) {
  await apply(["frontend", "orders"].map((sa) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ${sa}, namespace: ${ns}}\n`).join("---\n"));
  for (const f of ["serviceidentity-orders.yaml", "serviceidentity-frontend.yaml", "runtimerule-baseline.yaml", "apipolicy-orders.yaml"]) await apply(example(f, ns));
  await apply(example("workloads.yaml", ns, { "ghcr.io/acme/orders:1.4.2": images.orders, "ghcr.io/acme/frontend:2.0.1": images.frontend, ...replace }));
  return { orders: await readyPod(ns, "app=orders"), frontend: await readyPod(ns, "app=frontend") };
}

/** frontend's app calls through its enforcer's outbound proxy: "STATUS BODY". */
export async function call(ns: string, frontend: string, method: string, url: string) {
  const r = await exec(ns, frontend, "frontend", ["node", "/app/call.js", method, url]);
  return { code: r.code, status: Number(r.stdout.split(" ")[0]) || 0, out: (r.stdout + r.stderr).trim() };
}

/** The app image under a second name, for scan data that names it alone (hack/node/images). */
export const VICTIM = "ghcr.io/acme/e2e-victim:1.0";
/** Trivy scan data for VICTIM in the operator's ConfigMap format: with a critical finding (the
 * examples' baseline RuntimeRule quarantines it) or none. */
export const victimReport = (name: string, vulnerable: boolean) => `
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: tenet-system, labels: {tenet.dev/trivy-report: "true"}}
data:
  victim.json: |
    {"SchemaVersion": 2, "ArtifactName": "${VICTIM}", "ArtifactType": "container_image",
     "Metadata": {"RepoTags": ["${VICTIM}"]},
     "Results": [{"Target": "${VICTIM} (debian 12.5)", "Class": "os-pkgs", "Type": "debian",
       "Vulnerabilities": ${vulnerable ? '[{"VulnerabilityID": "CVE-2024-6387", "PkgName": "openssh-client", "InstalledVersion": "1:9.2p1-2+deb12u2", "FixedVersion": "1:9.2p1-2+deb12u3", "Severity": "CRITICAL"}]' : "[]"}}]}
`;

// Within the examples' baseline RuntimeRule (applied by deployDemo): else the pods are quarantined.
export const podSecurity = (uid: number) => `securityContext: {runAsNonRoot: true, runAsUser: ${uid}, seccompProfile: {type: RuntimeDefault}}`;
export const containerSecurity = "securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}";
