// Deploying Tenet, on the real API server: the Helm chart, the kustomize base and the production
// overlay pass server-side dry-run; the Argo CD health checks (gopher-lua, as Argo CD runs them)
// judge statuses the real operator wrote; the Argo CD release action on a pod the real operator
// quarantined goes through Tenet's webhook only when Argo CD's ServiceAccount holds the release
// permission.
//
// The harness has already installed the base (operators in tests run as its ServiceAccount), so
// the cluster-wide objects (CRDs, ClusterRole, ClusterRoleBinding) are dry-run as updates of that
// install, with conflicts with the harness's own apply forced (a dry run persists nothing). The
// chart's namespaced objects go into a fresh namespace, so they are dry-run as creates.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Kube, resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig, repoRoot } from "../harness/controlplane.ts";
import { run, waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { argocdLuaBin, chartDir, helm, key, kustomize, objects } from "../harness/tools.ts";
import { createObject, eventsFor, getObject, patchSpec, pod, tenet, vulnerabilityReport, waitReady } from "./helpers.ts";

const customizations = path.join(repoRoot, "argocd/resource_customizations");
const VR = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };
const RBAC = { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles" };

async function dryRun(args: string[], input?: string) {
  const { kubectl } = await cluster();
  const r = await kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=tenet-deploy-test", "--dry-run=server", "--validate=strict", "-o", "json", ...args], { input, allowFail: true });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  return (out.kind === "List" ? out.items : [out]) as any[];
}

async function health(kind: string, obj: unknown) {
  const r = await run(await argocdLuaBin(), ["health", path.join(customizations, "tenet.dev", kind, "health.lua")], { input: JSON.stringify(obj) });
  return JSON.parse(r.stdout) as { status: string; message: string };
}

describe("deploying Tenet (real API server)", function () {
  this.timeout(900_000);

  it("the rendered chart passes server-side dry-run: its namespaced objects created in a fresh namespace", async () => {
    const ns = await newNamespace("helm");
    const { stdout } = await helm(["template", "tenet", chartDir, "--namespace", ns]);
    const rendered = objects(stdout);
    const accepted = await dryRun(["-f", "-"], stdout);
    assert.deepEqual(accepted.map(key).sort(), rendered.map(key).sort());
    const d = accepted.find((o) => o.kind === "Deployment");
    assert.equal(d.metadata.namespace, ns);
    assert.equal(d.spec.template.spec.containers[0].image, rendered.find((o) => o.kind === "Deployment").spec.template.spec.containers[0].image);
    assert.ok(accepted.filter((o) => o.kind === "CustomResourceDefinition").every((c) => c.metadata.annotations["helm.sh/resource-policy"] === "keep"));
  });

  it("the kustomize base and the production overlay pass server-side dry-run", async () => {
    const base = await dryRun(["-k", path.join(repoRoot, "manifests")]);
    assert.deepEqual(base.map(key).sort(), (await kustomize("manifests")).map(key).sort(), "every object of the base is accepted");
    const prod = await dryRun(["-k", path.join(repoRoot, "manifests/overlays/production")]);
    assert.deepEqual(prod.map(key).sort(), base.map(key).sort(), "the same objects as the base");
    const d = prod.find((o) => o.kind === "Deployment");
    assert.equal(d.spec.replicas, 3);
    const spec = d.spec.template.spec;
    assert.equal(spec.priorityClassName, "system-cluster-critical");
    assert.equal(spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey, "kubernetes.io/hostname");
    assert.deepEqual(spec.topologySpreadConstraints.map((t: any) => t.topologyKey).sort(), ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    assert.deepEqual(spec.containers[0].resources, { requests: { cpu: "250m", memory: "512Mi" }, limits: { memory: "1Gi" } });
    assert.equal(spec.containers[0].env.find((e: any) => e.name === "NODE_OPTIONS").value, "--max-old-space-size=768");
    const pdb = prod.find((o) => o.kind === "PodDisruptionBudget");
    assert.equal(pdb.spec.minAvailable, 2);
  });

  describe("Argo CD health of what the real operator wrote", () => {
    let operator: OperatorProcess | undefined;
    let kube: Kube;
    let ns: string;
    // The harness ends every operator after each test: one per test.
    beforeEach(async () => {
      kube = (await cluster()).kube;
      ns = await newNamespace("argo-health");
      operator = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `argo-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LEASE_DURATION_MS: "4000", TENET_RENEW_DEADLINE_MS: "3000", TENET_RETRY_PERIOD_MS: "500" } });
    });
    afterEach(async () => void (await operator?.kill()));

    it("ServiceIdentity: Progressing while it waits for its pods (kstatus Reconciling), Healthy once a pod runs as it", async () => {
      await createObject(kube, tenet("ServiceIdentity", ns, "orders", { selector: { matchLabels: { app: "orders" } } }));
      const lonely = await waitReady(kube, "ServiceIdentity", ns, "orders", (r) => r.reason === "NoMatchingPods");
      assert.deepEqual(await health("ServiceIdentity", lonely), { status: "Progressing", message: `NoMatchingPods: ${lonely.status.conditions[0].message}` });
      await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }));
      const covered = await waitReady(kube, "ServiceIdentity", ns, "orders", (r) => r.status === "True");
      const h = await health("ServiceIdentity", covered);
      assert.equal(h.status, "Healthy");
      assert.match(h.message, /1 pod\(s\) covered as spiffe:\/\/cluster\.local\/ns\/.*\/sa\/default/);
    });

    it("APIPolicy: Healthy when valid, Degraded with the operator's reason when broken", async () => {
      const apis = [{ name: "orders", paths: ["/v1/orders"], methods: { GET: "read" } }];
      await createObject(kube, tenet("APIPolicy", ns, "orders", { selector: { matchLabels: { app: "orders" } }, apis, rules: [{ name: "r", to: [{ api: "orders", scopes: ["read"] }] }] }));
      const valid = await waitReady(kube, "APIPolicy", ns, "orders", (r) => r.status === "True");
      assert.equal((await health("APIPolicy", valid)).status, "Healthy");
      await patchSpec(kube, "APIPolicy", ns, "orders", { rules: [{ name: "r", to: [{ api: "payments", scopes: ["create"] }] }] });
      const broken = await waitReady(kube, "APIPolicy", ns, "orders", (r) => r.status === "False");
      const h = await health("APIPolicy", broken);
      assert.equal(h.status, "Degraded");
      assert.ok(h.message.startsWith(`${broken.status.conditions.find((c: any) => c.type === "Ready").reason}: `), h.message);
      assert.match(h.message, /payments/);
    });

    it("RuntimeRule: Healthy, Degraded once an exemption expired, Progressing while the operator has not seen a new generation", async () => {
      const soon = new Date(Date.now() + 3000).toISOString();
      await createObject(kube, tenet("RuntimeRule", ns, "baseline", { selector: {}, vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-3094", expires: soon, reason: "INC-9" }] } }));
      const valid = await waitReady(kube, "RuntimeRule", ns, "baseline", (r) => r.status === "True");
      assert.equal((await health("RuntimeRule", valid)).status, "Healthy");
      const expired = await waitReady(kube, "RuntimeRule", ns, "baseline", (r) => r.reason === "ExemptionExpired");
      const h = await health("RuntimeRule", expired);
      assert.equal(h.status, "Degraded");
      assert.match(h.message, /^ExemptionExpired: spec\.vulnerabilities\.exemptions\[0\] \(CVE-2024-3094\) expired/);
      // The operator stopped: a spec change is not observed, and Argo CD is told to wait.
      await operator!.kill();
      operator = undefined;
      await patchSpec(kube, "RuntimeRule", ns, "baseline", { enforcement: "audit" });
      const pending = await getObject(kube, "RuntimeRule", ns, "baseline");
      assert.ok(pending.status.observedGeneration < pending.metadata.generation);
      assert.deepEqual(await health("RuntimeRule", pending), { status: "Progressing", message: `Waiting for the Tenet operator to observe generation ${pending.metadata.generation}` });
    });
  });

  describe("the Argo CD release action on a pod the real operator quarantined", () => {
    let operator: OperatorProcess | undefined;
    after(async () => void (await operator?.kill()));

    it("is offered, and releases only once Argo CD's ServiceAccount may update runtimerules/release", async () => {
      const c = await cluster();
      const kube = c.kube;
      const ns = await newNamespace("argo-release");
      operator = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `rel-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LEASE_DURATION_MS: "4000", TENET_RENEW_DEADLINE_MS: "3000", TENET_RETRY_PERIOD_MS: "500" } });
      await operator.waitForHTTPS();
      await operator.waitForLog("webhooks applied", (l) => l.msg === "webhook configurations applied");
      await createObject(kube, tenet("RuntimeRule", ns, "strict", { selector: { matchLabels: { app: "shop" } }, vulnerabilities: { thresholds: { critical: 0 } }, quarantine: { autoRelease: false } }));
      // Admitted clean, then a new scan finds a critical vulnerability: the operator quarantines it.
      await kube.create(resourcePath(VR, ns), vulnerabilityReport("shop", "acme/shop", "1.0", []));
      await kube.create(resourcePath(Resources.pods, ns), pod("shop-0", { app: "shop" }, "default", "ghcr.io/acme/shop:1.0"));
      const podPath = resourcePath(Resources.pods, ns, "shop-0");
      await waitFor("shop-0 clean", async () => (await kube.get(podPath)).metadata.labels?.["tenet.dev/posture"] === "clean", 30_000, 200);
      const vr = await kube.get(resourcePath(VR, ns, "shop"));
      await kube.replace(resourcePath(VR, ns, "shop"), { ...vulnerabilityReport("shop", "acme/shop", "1.0", [{ id: "CVE-2024-3094", severity: "CRITICAL" }]), metadata: { ...vr.metadata } });
      const quarantined = await waitFor("shop-0 quarantined", async () => {
        const p = await kube.get(podPath);
        return p.metadata.labels?.["tenet.dev/quarantined"] === "true" ? p : undefined;
      }, 30_000, 200);

      const lua = await argocdLuaBin();
      const actions = path.join(customizations, "Pod/actions");
      const offered = JSON.parse((await run(lua, ["discovery", path.join(actions, "discovery.lua")], { input: JSON.stringify(quarantined) })).stdout);
      assert.deepEqual(offered, [{ name: "tenet-release", params: [{ name: "reason" }] }]);
      const reason = "INC-12: accepted by security, fix rolling out";
      const after = JSON.parse((await run(lua, ["action", path.join(actions, "tenet-release/action.lua"), `reason=${reason}`], { input: JSON.stringify(quarantined) })).stdout);
      // Argo CD sends the difference as a merge patch, as its own ServiceAccount.
      const patch = { metadata: { annotations: { "tenet.dev/release": after.metadata.annotations["tenet.dev/release"] } } };
      assert.deepEqual({ ...after.metadata.annotations, "tenet.dev/release": undefined }, { ...quarantined.metadata.annotations, "tenet.dev/release": undefined }, "the action changes that annotation only");

      const argoNs = await newNamespace("argocd", ["argocd-server"]);
      const argo = await serviceAccountClient(kube, c.kubeconfig, argoNs, "argocd-server");
      await grant(kube, ns, `${argoNs}-pods`, [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "patch"] }], argoNs, "argocd-server");
      await assert.rejects(argo.patch(podPath, "merge", patch), (e: Error) => /may not release pods from quarantine/.test(e.message) && e.message.includes(`system:serviceaccount:${argoNs}:argocd-server`));
      assert.equal((await kube.get(podPath)).metadata.labels["tenet.dev/quarantined"], "true", "still quarantined");

      await grant(kube, ns, `${argoNs}-release`, [{ apiGroups: ["tenet.dev"], resources: ["runtimerules/release"], verbs: ["update"] }], argoNs, "argocd-server");
      await waitFor("the release permission to apply", () => argo.patch(podPath, "merge", patch).then(() => true), 10_000, 200);
      await waitFor("shop-0 released", async () => (await kube.get(podPath)).metadata.labels?.["tenet.dev/quarantined"] === undefined, 20_000, 200);
      const released = await waitFor("Released Event", async () => (await eventsFor(kube, ns, "shop-0")).find((e) => e.reason === "Released"), 10_000, 200);
      assert.ok(released.message.includes(reason), released.message);
    });
  });
});

async function grant(admin: Kube, ns: string, name: string, rules: unknown[], saNamespace: string, sa: string) {
  await admin.create(resourcePath(RBAC, ns), { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name }, rules });
  await admin.create(resourcePath({ ...RBAC, plural: "rolebindings" }, ns), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: saNamespace }],
  });
}

async function serviceAccountClient(admin: Kube, kubeconfigPath: string, ns: string, sa: string): Promise<Kube> {
  const tr = await admin.create(resourcePath(Resources.serviceAccounts, ns, sa, "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server: admin.serverURL.replace(/\/$/, ""), caData: readFileSync(path.join(path.dirname(kubeconfigPath), "pki/ca.crt")).toString("base64") }],
    users: [{ name: sa, token: tr.status.token }],
    contexts: [{ name: "local", cluster: "local", user: sa }],
    currentContext: "local",
  });
  return new Kube(kc);
}
