import { strict as assert } from "node:assert";
import { compileSelector, formatSelector } from "../../policy/selector.ts";

describe("label selectors", () => {
  const cases: [string, Parameters<typeof compileSelector>[0], Record<string, string> | undefined, boolean][] = [
    ["an empty selector matches every pod", {}, { app: "x" }, true],
    ["an empty selector matches a pod without labels", {}, undefined, true],
    ["matchLabels requires every label with its value", { matchLabels: { app: "orders", tier: "api" } }, { app: "orders", tier: "api", x: "y" }, true],
    ["matchLabels rejects a wrong value", { matchLabels: { app: "orders" } }, { app: "payments" }, false],
    ["In matches one of the values", { matchExpressions: [{ key: "tier", operator: "In", values: ["web", "api"] }] }, { tier: "api" }, true],
    ["In rejects a pod without the key", { matchExpressions: [{ key: "tier", operator: "In", values: ["web"] }] }, {}, false],
    ["NotIn accepts a pod without the key", { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["web"] }] }, {}, true],
    ["NotIn rejects a listed value", { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["web"] }] }, { tier: "web" }, false],
    ["Exists needs the key, any value", { matchExpressions: [{ key: "team", operator: "Exists" }] }, { team: "" }, true],
    ["DoesNotExist rejects the key", { matchExpressions: [{ key: "team", operator: "DoesNotExist" }] }, { team: "a" }, false],
    [
      "matchLabels and matchExpressions AND together",
      { matchLabels: { app: "orders" }, matchExpressions: [{ key: "tier", operator: "In", values: ["api"] }] },
      { app: "orders", tier: "web" },
      false,
    ],
  ];
  for (const [name, sel, labels, expected] of cases) {
    it(name, () => assert.equal(compileSelector(sel)(labels), expected));
  }

  it("refuses an unknown operator with a message naming it", () => {
    assert.throws(() => compileSelector({ matchExpressions: [{ key: "a", operator: "Like" }] }), /unknown selector operator "Like" for key "a"/);
  });

  it("formats like kubectl", () => {
    assert.equal(
      formatSelector({ matchLabels: { app: "orders" }, matchExpressions: [{ key: "tier", operator: "In", values: ["a", "b"] }, { key: "x", operator: "DoesNotExist" }] }),
      "app=orders,tier in (a,b),!x",
    );
    assert.equal(formatSelector({}), "(everything)");
  });
});
