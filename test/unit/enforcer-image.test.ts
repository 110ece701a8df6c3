import assert from "node:assert/strict";
import { EnforcerImageError, enforcerImageFor } from "../../operator/enforcer-image.ts";

describe("the enforcer image follows the operator's", () => {
  for (const [operator, enforcer] of [
    ["tenet-operator:dev", "tenet-enforcer:dev"],
    ["tenet.local/tenet-operator:dev", "tenet.local/tenet-enforcer:dev"],
    ["registry.example:5000/platform/tenet-operator:v0.2.0", "registry.example:5000/platform/tenet-enforcer:v0.2.0"],
    ["mirror.example/tenet-operator:v1@sha256:" + "a".repeat(64), "mirror.example/tenet-enforcer:v1"],
  ]) {
    it(`${operator} → ${enforcer}`, () => assert.equal(enforcerImageFor(operator), enforcer));
  }
  it("refuses an operator image with another name, naming the setting that fixes it", () => {
    assert.throws(() => enforcerImageFor("example/tenet:1"), (e: Error) => e instanceof EnforcerImageError && /TENET_ENFORCER_IMAGE/.test(e.message));
  });
  it("refuses a digest-only reference: the enforcer's digest cannot be derived", () => {
    assert.throws(() => enforcerImageFor("example/tenet-operator@sha256:" + "b".repeat(64)), /no tag/);
  });
  it("does not take a registry port for a tag", () => {
    assert.throws(() => enforcerImageFor("localhost:5000/tenet-operator"), /no tag/);
  });
});
