// Issue 11 item 4: the pod's owner (a namespace editor) cannot undo a quarantine — not by
// tenet.dev/release, not by emptying the recorded certificate serials or relabelling, not by
// deleting or editing the tenet-quarantine NetworkPolicy. Real API server, the operator process,
// an editor that is a ServiceAccount with full rights on pods, NetworkPolicies and Tenet's kinds.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Kube, resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { createObject, pod, tenet, vulnerabilityReport } from "./helpers.ts";

const VR = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };
const NP = { group: "networking.k8s.io", version: "v1", plural: "networkpolicies" };
const RB = { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings" };
const RR = { group: "tenet.dev", version: "v1alpha1", plural: "runtimerules" };
const CRITICAL = [{ id: "CVE-2024-3094", severity: "CRITICAL" }];

/** A client for ServiceAccount `sa` of `ns`, with what the built-in ClusterRole `edit` gives on
 * pods and NetworkPolicies (the control plane here runs no aggregation controller, so `edit`
 * itself is empty), all rights on Tenet's kinds — and, like `edit`, nothing on runtimerules/release. */
async function editorClient(admin: Kube, kubeconfigPath: string, ns: string, sa: string): Promise<Kube> {
  await admin.create(resourcePath(Resources.serviceAccounts, ns), { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa } });
  const all = ["get", "list", "watch", "create", "update", "patch", "delete"];
  await admin.create(resourcePath({ ...RB, plural: "roles" }, ns), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "namespace-editor" },
    rules: [
      { apiGroups: [""], resources: ["pods"], verbs: all },
      { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: all },
      { apiGroups: ["tenet.dev"], resources: ["runtimerules", "serviceidentities", "apipolicies"], verbs: all },
    ],
  });
  await admin.create(resourcePath(RB, ns), {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: `${sa}-edit` },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "namespace-editor" },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: ns }],
  });
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

describe("quarantine guard: the pod's owner cannot undo a quarantine (real API server, operator process)", function () {
  this.timeout(300_000);
  let kube: Kube;
  let editor: Kube;
  let ns: string;
  const podPath = (name: string) => resourcePath(Resources.pods, ns, name);
  const getPod = (name: string) => kube.get(podPath(name));

  beforeEach(async () => {
    const c = await cluster();
    kube = c.kube;
    ns = await newNamespace("qguard");
    editor = await editorClient(kube, c.kubeconfig, ns, "editor");
  });

  async function quarantinedPod(name: string) {
    const operator = await OperatorProcess.start({
      kubeconfig: await operatorKubeconfig(),
      namespace: "tenet-system",
      identity: `qg-${ns}`,
      env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LEASE_DURATION_MS: "4000", TENET_RENEW_DEADLINE_MS: "3000", TENET_RETRY_PERIOD_MS: "500" },
    });
    await operator.waitForHTTPS();
    await operator.waitForLog("webhooks applied", (l) => l.msg === "webhook configurations applied");
    await createObject(kube, tenet("RuntimeRule", ns, "manual", { selector: { matchLabels: { app: "guard" } }, vulnerabilities: { thresholds: { critical: 0 } }, quarantine: { autoRelease: false } }));
    await kube.create(resourcePath(VR, ns), vulnerabilityReport("app", "acme/guard", "1.0", []));
    await kube.create(podPath(""), pod(name, { app: "guard" }, "default", "ghcr.io/acme/guard:1.0"));
    await waitFor(`${name} clean`, async () => (await getPod(name)).metadata.labels?.["tenet.dev/posture"] === "clean", 30_000, 200);
    const vr = await kube.get(resourcePath(VR, ns, "app"));
    await kube.replace(resourcePath(VR, ns, "app"), { ...vulnerabilityReport("app", "acme/guard", "1.0", CRITICAL), metadata: { ...vr.metadata } });
    await waitFor(`${name} quarantined`, async () => (await getPod(name)).metadata.labels?.["tenet.dev/quarantined"] === "true", 30_000, 200);
    await waitFor("quarantine NetworkPolicy", () => kube.get(resourcePath(NP, ns, "tenet-quarantine")).catch(() => undefined), 10_000, 200);
    return operator;
  }

  it("(b) refuses an editor who empties the recorded certificate serials or changes Tenet's posture and quarantine labels", async () => {
    await quarantinedPod("q-0");
    const only = /only Tenet's own ServiceAccount writes them/;
    await assert.rejects(editor.patch(podPath("q-0"), "merge", { metadata: { annotations: { "tenet.dev/certificates": "{}" } } }), only);
    await assert.rejects(editor.patch(podPath("q-0"), "merge", { metadata: { labels: { "tenet.dev/quarantined": null } } }), only);
    await assert.rejects(editor.patch(podPath("q-0"), "merge", { metadata: { labels: { "tenet.dev/posture": "clean" } } }), only);
    await assert.rejects(editor.patch(podPath("q-0"), "merge", { metadata: { annotations: { "tenet.dev/released": "0123456789abcdef" } } }), only);
    // Not through the status subresource either (a merge patch there changes labels too); even an
    // administrator is refused: only Tenet writes these keys.
    await assert.rejects(kube.patch(resourcePath(Resources.pods, ns, "q-0", "status"), "merge", { metadata: { labels: { "tenet.dev/quarantined": null } } }), only);
    // Other metadata stays the editor's to change, and the pod is still quarantined.
    await editor.patch(podPath("q-0"), "merge", { metadata: { labels: { team: "shop" } } });
    assert.equal((await getPod("q-0")).metadata.labels["tenet.dev/quarantined"], "true");
  });

  it("(a) refuses tenet.dev/release from an editor (no update on runtimerules/release); an administrator may release", async () => {
    await quarantinedPod("q-1");
    await assert.rejects(editor.patch(podPath("q-1"), "merge", { metadata: { annotations: { "tenet.dev/release": "trust me" } } }), /runtimerules\/release/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await getPod("q-1")).metadata.labels["tenet.dev/quarantined"], "true", "still quarantined");
    await kube.patch(podPath("q-1"), "merge", { metadata: { annotations: { "tenet.dev/release": "INC-7 accepted by security" } } });
    await waitFor("released by the administrator", async () => (await getPod("q-1")).metadata.labels["tenet.dev/quarantined"] === undefined, 20_000, 200);
  });

  it("(c) keeps a pod quarantined when its owner relabels it so that no RuntimeRule selects it", async () => {
    await quarantinedPod("q-3");
    await waitFor("quarantined-by recorded", async () => (await getPod("q-3")).metadata.annotations?.["tenet.dev/quarantined-by"] === JSON.stringify([`${ns}/manual`]), 10_000, 200);
    // With autoRelease, a pod no rule selects used to be released at once.
    await kube.patch(resourcePath(RR, ns, "manual"), "merge", { spec: { quarantine: { autoRelease: true } } });
    await editor.patch(podPath("q-3"), "merge", { metadata: { labels: { app: "elsewhere" } } });
    await new Promise((r) => setTimeout(r, 3000));
    const p = await getPod("q-3");
    assert.equal(p.metadata.labels.app, "elsewhere");
    assert.equal(p.metadata.labels["tenet.dev/quarantined"], "true", "still quarantined");
  });

  it("(d) restores a deleted or edited tenet-quarantine NetworkPolicy within seconds", async () => {
    await quarantinedPod("q-2");
    const npPath = resourcePath(NP, ns, "tenet-quarantine");
    const before = await kube.get(npPath);
    await editor.delete(npPath);
    const t0 = Date.now();
    await waitFor("NetworkPolicy recreated", async () => {
      const np = await kube.get(npPath).catch(() => undefined);
      return np && np.metadata.uid !== before.metadata.uid ? np : undefined;
    }, 5_000, 100);
    assert.ok(Date.now() - t0 < 5_000);
    // An edit that opens it up (allow all ingress, select nothing) is undone too.
    await editor.patch(npPath, "merge", { spec: { ingress: [{}], podSelector: { matchLabels: { "tenet.dev/quarantined": "nope" } } } });
    await waitFor("NetworkPolicy spec restored", async () => {
      const np = await kube.get(npPath);
      return !np.spec.ingress?.length && np.spec.podSelector?.matchLabels?.["tenet.dev/quarantined"] === "true" ? np : undefined;
    }, 5_000, 100);
  });
});
