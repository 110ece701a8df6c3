import { strict as assert } from "node:assert";
import { resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { createObject, tenet, waitReady } from "./helpers.ts";

const api = { name: "health", paths: ["/healthz"], methods: { GET: "read" } };

describe("leader election with two replicas (real processes, real Lease)", function () {
  this.timeout(120_000);

  async function twoReplicas(ns: string) {
    const kubeconfig = await operatorKubeconfig();
    const env = { TENET_LEASE_NAME: `lease-${ns}` };
    const a = await OperatorProcess.start({ kubeconfig, namespace: "tenet-system", identity: `a-${ns}`, env });
    const b = await OperatorProcess.start({ kubeconfig, namespace: "tenet-system", identity: `b-${ns}`, env });
    const leader = await waitFor("one replica to lead", () => [a, b].find((p) => p.isLeader));
    return { leader, follower: leader === a ? b : a };
  }

  it("runs the controllers on exactly one replica while both run", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-single");
    const { leader, follower } = await twoReplicas(ns);
    for (let i = 0; i < 5; i++) await createObject(kube, tenet("APIPolicy", ns, `p${i}`, { selector: {}, apis: [api] }));
    for (let i = 0; i < 5; i++) await waitReady(kube, "APIPolicy", ns, `p${i}`, (r) => r.status === "True");
    assert.ok((await leader.metricSum("tenet_reconcile_total")) >= 5);
    assert.equal(await follower.metricSum("tenet_reconcile_total"), 0, "the follower reconciled nothing");
    assert.equal(await follower.metricSum("tenet_leader"), 0);
    assert.equal(await leader.metricSum("tenet_leader"), 1);
    assert.ok(follower.hasLog((l) => l.msg === "caches synced"), "the follower keeps warm caches");
  });

  it("fails over within 20 s when the leader is killed with SIGKILL", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-kill");
    const { leader, follower } = await twoReplicas(ns);
    await leader.kill("SIGKILL");
    const killedAt = Date.now();
    await createObject(kube, tenet("APIPolicy", ns, "after-crash", { selector: {}, apis: [api] }));
    // The bound is the requirement itself (lease duration 15 s + one retry period).
    await waitReady(kube, "APIPolicy", ns, "after-crash", (r) => r.status === "True", 20_000);
    assert.ok(follower.isLeader, "the survivor took the lease");
    const lease = await kube.get(resourcePath(Resources.leases, "tenet-system", `lease-${ns}`));
    assert.equal(lease.spec.holderIdentity, follower.identity);
    assert.equal(lease.spec.leaseTransitions, 1);
    process.stderr.write(`      [leader] failover after SIGKILL took ${Date.now() - killedAt} ms\n`);
  });

  it("hands over at once on SIGTERM: the leader releases the Lease instead of letting it expire", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-term");
    const { leader, follower } = await twoReplicas(ns);
    assert.equal(await leader.kill("SIGTERM"), 0, "graceful shutdown exits 0");
    assert.ok(leader.hasLog((l) => l.msg === "released leadership"));
    await waitFor("the follower to lead", () => follower.isLeader, 20_000);
    assert.ok(
      follower.hasLog((l) => l.msg === "acquired the lease" && l.previousHolder === "(none)"),
      "the follower found a released lease (it did not wait for expiry)",
    );
    await createObject(kube, tenet("APIPolicy", ns, "after-handover", { selector: {}, apis: [api] }));
    await waitReady(kube, "APIPolicy", ns, "after-handover", (r) => r.status === "True");
  });
});
