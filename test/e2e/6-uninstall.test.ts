// Uninstalling Tenet leaves the cluster working: its webhook configurations go with it (they
// are owned by its ClusterRole), so pods can be created again. Reinstalls Tenet afterwards.
import assert from "node:assert/strict";
import path from "node:path";
import { repoRoot } from "../harness/controlplane.ts";
import { run, waitFor } from "../harness/exec.ts";
import { admissionAnswers, kubectl, namespace } from "../harness/node.ts";

describe("e2e: uninstall", function () {
  this.timeout(300_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  before(async () => {
    ns = await namespace("e2e-un");
  });
  after(async () => {
    await run("bash", [path.join(repoRoot, "hack/node.sh"), "install"], { allowFail: true });
    await ns?.remove();
  });

  it("kubectl delete -k removes Tenet and its webhooks; pods are admitted again", async () => {
    await run("bash", [path.join(repoRoot, "hack/node.sh"), "uninstall"]);
    for (const kind of ["mutatingwebhookconfiguration", "validatingwebhookconfiguration"]) {
      const r = await kubectl(["get", kind, "tenet"], { allowFail: true });
      assert.notEqual(r.code, 0, `${kind} tenet is gone`);
    }
    const a = await waitFor("pods admitted without Tenet", async () => {
      const x = await admissionAnswers(ns.name);
      return x.ok ? x : undefined;
    }, 30_000, 500);
    assert.ok(a.ok, a.output);
    const r = await kubectl(["run", "after-tenet", "-n", ns.name, "--image=ghcr.io/acme/e2e-app:1.0", "--image-pull-policy=Never", "--restart=Never", "--command", "--", "node", "-e", "console.log(1)"]);
    assert.equal(r.code, 0);
    const phase = await waitFor("the pod to run", async () => {
      const p = (await kubectl(["get", "pod", "after-tenet", "-n", ns.name, "-o", "jsonpath={.status.phase}"])).stdout;
      return p === "Succeeded" || p === "Failed" ? p : undefined;
    }, 60_000, 500);
    assert.equal(phase, "Succeeded");
  });
});
