// The operator as its real Deployment on the real node: two replicas, one leader, failover,
// and what failurePolicy promises when no replica is left.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { admissionAnswers, isReady, kubectl, namespace, operators } from "../harness/node.ts";

describe("e2e: the operator Deployment", function () {
  this.timeout(240_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  before(async () => {
    ns = await namespace("e2e-op");
  });
  after(async () => {
    await kubectl(["-n", "tenet-system", "scale", "deployment/tenet-operator", "--replicas=2"], { allowFail: true });
    await kubectl(["-n", "tenet-system", "rollout", "status", "deployment/tenet-operator", "--timeout=120s"], { allowFail: true });
    await ns?.remove();
  });

  it("runs two Ready replicas, exactly one of which holds the leader Lease", async () => {
    // Right after an install or a rollout the Lease may still name a replica that is going away
    // (it releases the Lease when it stops): wait until the leader is one of the running replicas.
    const { pods, leader } = await waitFor("two Ready replicas, one of them the leader", async () => {
      const o = await operators();
      return o.pods.filter(isReady).length === 2 && o.pods.some((p: any) => p.metadata.name === o.leader) ? o : undefined;
    }, 90_000, 500);
    assert.equal(pods.length, 2);
    assert.equal(pods.filter((p: any) => p.metadata.name === leader).length, 1, `leader ${leader} is one of ${pods.map((p: any) => p.metadata.name)}`);
  });

  it("hands over when the leader's pod is deleted, and admission keeps answering throughout", async () => {
    const { leader } = await operators();
    const deleting = kubectl(["-n", "tenet-system", "delete", "pod", leader!, "--wait=true"]);
    const answers: { ok: boolean; output: string }[] = [];
    let done = false;
    void deleting.finally(() => (done = true));
    while (!done) {
      answers.push(await admissionAnswers(ns.name));
      await new Promise((r) => setTimeout(r, 300));
    }
    const next = await waitFor("a new leader", async () => {
      const o = await operators();
      return o.leader && o.leader !== leader && o.pods.some((p: any) => p.metadata.name === o.leader) ? o.leader : undefined;
    }, 60_000, 500);
    assert.notEqual(next, leader);
    const failed = answers.filter((a) => !a.ok);
    assert.ok(answers.length > 0, "no admission request was sent during the failover");
    assert.deepEqual(failed, [], `admission failed during the failover: ${failed.map((f) => f.output).join(" | ")}`);
    await waitFor("two Ready replicas again", async () => (await operators()).pods.filter(isReady).length === 2, 120_000, 500);
  });

  it("with both replicas gone, refuses pods (failurePolicy Fail) but kube-system still admits them", async () => {
    await kubectl(["-n", "tenet-system", "scale", "deployment/tenet-operator", "--replicas=0"]);
    await waitFor("no operator pod left", async () => (await kubectl(["-n", "tenet-system", "get", "pods", "-l", "app.kubernetes.io/name=tenet-operator", "-o", "name"])).stdout.trim() === "", 90_000, 500);
    const refused = await waitFor("admission refusing", async () => {
      const a = await admissionAnswers(ns.name);
      return a.ok ? undefined : a;
    }, 30_000, 500);
    assert.match(refused.output, /failed calling webhook "(inject|validate)\.tenet\.dev"/);
    const system = await admissionAnswers("kube-system");
    assert.ok(system.ok, `kube-system must admit pods while Tenet is down: ${system.output}`);
    await kubectl(["-n", "tenet-system", "scale", "deployment/tenet-operator", "--replicas=2"]);
    await kubectl(["-n", "tenet-system", "rollout", "status", "deployment/tenet-operator", "--timeout=120s"]);
    await waitFor("admission answering again", async () => (await admissionAnswers(ns.name)).ok, 60_000, 500);
  });
});
