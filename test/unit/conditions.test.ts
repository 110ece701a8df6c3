import { strict as assert } from "node:assert";
import { setCondition } from "../../operator/runtime/conditions.ts";

describe("conditions", () => {
  const t1 = new Date("2026-01-01T00:00:00.123Z");
  const t2 = new Date("2026-01-02T00:00:00Z");

  it("stamps lastTransitionTime (RFC 3339, whole seconds) on a new condition", () => {
    const [c] = setCondition([], { type: "Ready", status: "False", reason: "A", message: "m", observedGeneration: 1 }, t1);
    assert.equal(c.lastTransitionTime, "2026-01-01T00:00:00Z");
  });

  it("keeps lastTransitionTime when only reason, message or generation change", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "A", message: "m", observedGeneration: 1 }, t1);
    const [c] = setCondition(first, { type: "Ready", status: "False", reason: "B", message: "n", observedGeneration: 2 }, t2);
    assert.equal(c.lastTransitionTime, "2026-01-01T00:00:00Z");
    assert.equal(c.reason, "B");
    assert.equal(c.observedGeneration, 2);
  });

  it("moves lastTransitionTime when the status flips, and leaves other conditions alone", () => {
    const first = setCondition([{ type: "Other", status: "True", reason: "X", message: "" }], { type: "Ready", status: "False", reason: "A", message: "m" }, t1);
    const next = setCondition(first, { type: "Ready", status: "True", reason: "Ok", message: "fine" }, t2);
    assert.equal(next.find((c) => c.type === "Ready")!.lastTransitionTime, "2026-01-02T00:00:00Z");
    assert.deepEqual(next[0], { type: "Other", status: "True", reason: "X", message: "" });
  });
});
