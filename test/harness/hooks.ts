// Mocha root hooks: processes a test started never outlive it; the control plane stops
// when the run ends.
import { removeWebhookConfigurations, stopCluster } from "./controlplane.ts";
import { killAllOperators } from "./operator.ts";

export const mochaHooks = {
  async afterEach() {
    await killAllOperators();
    // A webhook pointing at a stopped operator would refuse the next test's pods.
    await removeWebhookConfigurations();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await stopCluster();
  },
};
