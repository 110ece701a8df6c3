// New scan data quarantines a running pod: from another pod its traffic is really cut
// (NetworkPolicy, enforced by kube-router), its certificate is revoked so peers' enforcers
// refuse it; release restores the traffic.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { apply, call, deployDemo, exec, kube, kubectl, namespace, VICTIM, victimReport } from "../harness/node.ts";


describe("e2e: quarantine of a running pod", function () {
  this.timeout(240_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  let pods: Awaited<ReturnType<typeof deployDemo>>;
  const cm = `e2e-victim-${process.pid}`;
  before(async () => {
    ns = await namespace("e2e-q");
    pods = await deployDemo(ns.name, { orders: VICTIM, frontend: "ghcr.io/acme/e2e-app:1.0" });
  });
  after(async () => {
    await kubectl(["delete", "configmap", cm, "-n", "tenet-system", "--ignore-not-found"], { allowFail: true });
    await ns?.remove();
  });

  const direct = () => exec(ns.name, pods.frontend.metadata.name, "frontend", ["node", "/app/fetch.js", `http://${pods.orders.status.podIP}:8080/healthz`, "2000"]);
  const viaEnforcers = () => call(ns.name, pods.frontend.metadata.name, "GET", `http://orders.${ns.name}.svc/healthz`);
  /** How many serials the frontend's enforcer holds as revoked (its gauge). */
  const revokedSerials = async () => {
    const m = await exec(ns.name, pods.frontend.metadata.name, "frontend", ["node", "/app/fetch.js", "http://127.0.0.1:15021/metrics", "2000"]);
    return Number(/^tenet_enforcer_revoked_serials (\d+)/m.exec(m.stdout)?.[1] ?? -1);
  };
  const victim = () => kube().get(`/api/v1/namespaces/${ns.name}/pods/${pods.orders.metadata.name}`);

  it("cuts the quarantined pod's traffic from another pod and revokes its certificates", async () => {
    // Captured: the frontend's enforcer carries it over mTLS once orders is in its mesh document (≤ 5 s).
    await waitFor("before: the frontend pod reaches orders' port", async () => (await direct()).code === 0, 30_000, 1000);
    await waitFor("a call through the enforcers", async () => (await viaEnforcers()).status === 200, 30_000, 1000);

    // The revocation list is cluster-wide: earlier tests' serials are on it already.
    const revokedBefore = await revokedSerials();
    await apply(victimReport(cm, true));
    const quarantined = await waitFor("the quarantine label", async () => {
      const p = await victim();
      return p.metadata.labels?.["tenet.dev/quarantined"] === "true" ? p : undefined;
    }, 60_000, 500);
    assert.equal(quarantined.metadata.labels["tenet.dev/posture"], "violating");
    const np = await kube().get(`/apis/networking.k8s.io/v1/namespaces/${ns.name}/networkpolicies/tenet-quarantine`);
    assert.deepEqual(np.spec.podSelector.matchLabels, { "tenet.dev/quarantined": "true" });

    // Sent from a pod: node-local traffic bypasses NetworkPolicy.
    const cut = await waitFor("traffic to the quarantined pod cut", async () => ((await direct()).code !== 0 ? true : undefined), 20_000, 500);
    assert.ok(cut);
    const serials = Object.keys(JSON.parse(quarantined.metadata.annotations["tenet.dev/certificates"] ?? "{}"));
    assert.ok(serials.length > 0);
    // The revocation list is sharded (tenet-revocations-0 … -15, operator/ca/revocations.ts).
    let stored = "";
    for (let i = 0; i < 16; i++) stored += JSON.stringify((await kube().get(`/api/v1/namespaces/tenet-system/configmaps/tenet-revocations-${i}`)).data) + "\n";
    for (const s of serials) assert.ok(stored.includes(s.toLowerCase().replace(/^0+/, "")), `serial ${s} is in the revocation list`);
    // The frontend's enforcer learned of the revocation (its gauge) and refuses the pod.
    await waitFor("the peer enforcer to hold the revoked serials", async () => (await revokedSerials()) >= revokedBefore + serials.length, 60_000, 1000);
    const refused = await viaEnforcers();
    assert.notEqual(refused.status, 200, `through the enforcers: ${refused.out}`);
  });

  it("restores the traffic once the pod is released (a new scan finds it clean)", async () => {
    await apply(victimReport(cm, false));
    await waitFor("the release", async () => (await victim()).metadata.labels?.["tenet.dev/quarantined"] === undefined, 60_000, 500);
    await waitFor("traffic to the released pod", async () => (await direct()).code === 0, 30_000, 500);
    // Its enforcer asked for a new certificate when the old one was revoked; the CA issues it
    // once the pod is released, and peers accept the pod again.
    await waitFor("a call through the enforcers again", async () => (await viaEnforcers()).status === 200, 120_000, 2000);
  });
});
