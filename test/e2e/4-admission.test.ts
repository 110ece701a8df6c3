// kubectl apply of a Deployment whose image is over the RuntimeRule's thresholds is refused,
// with the message that names the image, the counts, the threshold, the rule and the fix.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { apply, example, kubectl, namespace } from "../harness/node.ts";

describe("e2e: admission of a vulnerable image", function () {
  this.timeout(120_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  before(async () => {
    ns = await namespace("e2e-adm");
    await apply(example("runtimerule-baseline.yaml", ns.name));
    await apply(example("trivy-report-billing.yaml", ns.name)); // lives in tenet-system, shared and idempotent
  });
  after(async () => ns?.remove());

  it("refuses kubectl apply of the billing Deployment", async () => {
    const r = await waitFor("the refusal", async () => {
      const out = await kubectl(["apply", "-f", "-"], { input: example("rejected/deployment-billing.yaml", ns.name), allowFail: true });
      return out.code !== 0 ? out : undefined;
    }, 30_000, 1000);
    assert.match(r.stderr, new RegExp(`admission webhook "validate.tenet.dev" denied the request: Deployment ${ns.name}/billing refused by RuntimeRule ${ns.name}/baseline`));
    assert.match(r.stderr, /has 2 critical \(threshold 0\) vulnerabilities/);
    assert.match(r.stderr, /upgrade the image, or add an exemption/);
    const gone = await kubectl(["get", "deployment", "billing", "-n", ns.name], { allowFail: true });
    assert.notEqual(gone.code, 0, "nothing was created");
  });
});
