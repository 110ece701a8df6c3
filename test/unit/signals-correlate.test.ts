// Detection (signals/detection.ts) and correlation (signals/correlate.ts) with a fake clock:
// matching by rule, priority comparisons, tags and fields; event_count, value_count and
// temporal_ordered windows, their edges, out-of-order events, duplicates by uuid, late and
// future events, bounded state; and the problems a status condition reports.
import { strict as assert } from "node:assert";
import type { RuntimeRuleDetection } from "../../crds/types.gen.ts";
import { compileDetection, goDuration, priorityRange } from "../../signals/detection.ts";
import { Correlator, type Firing } from "../../signals/correlate.ts";
import { priorityRank, type AttributedSignal } from "../../signals/event.ts";

const T0 = Date.UTC(2026, 2, 2, 9, 0, 0);
const ID = "spiffe://cluster.local/ns/shop/sa/orders";
let seq = 0;
function ev(p: Partial<AttributedSignal> & { at: number }): AttributedSignal {
  const { at, ...rest } = p;
  return {
    id: `e${++seq}`,
    source: "falco",
    layer: "runtime",
    rule: "Terminal shell in container",
    priority: priorityRank("warning"),
    time: T0 + at,
    tags: [],
    fields: {},
    output: "",
    count: 1,
    claim: {},
    attribution: { namespace: "shop", pod: "orders-0", spiffeID: ID },
    ...rest,
  };
}
const denial = (at: number, extra: Partial<AttributedSignal> = {}) => ev({ at, source: "enforcer", layer: "api", rule: "APIDenied", priority: priorityRank("notice"), fields: { reason: "Forbidden" }, ...extra });

function engine(detection: RuntimeRuleDetection, opts: { now?: number; maxEntriesPerWindow?: number; maxWindows?: number } = {}) {
  let now = T0 + (opts.now ?? 0);
  const c = new Correlator({ now: () => now, maxEntriesPerWindow: opts.maxEntriesPerWindow, maxWindows: opts.maxWindows });
  const d = compileDetection({ detection });
  assert.deepEqual(d.problems, []);
  return {
    c,
    set: (ms: number) => (now = T0 + ms),
    /** Sends events in order; returns the names that fired for each. */
    send: (...es: AttributedSignal[]): string[][] =>
      es.map((e) => {
        const a = c.admit(e);
        if (a === "duplicate") return ["(duplicate)"];
        return c.evaluate("shop/rule", d, e, a === "late").map((f: Firing) => `${f.kind}:${f.name}`);
      }),
  };
}

describe("signals: matching", () => {
  const range: [string | undefined, string[]][] = [
    [">=warning", ["emergency", "alert", "critical", "error", "warning"]],
    [">warning", ["emergency", "alert", "critical", "error"]],
    ["<=notice", ["notice", "informational", "debug"]],
    ["<notice", ["informational", "debug"]],
    ["=error", ["error"]],
    ["critical", ["emergency", "alert", "critical"]],
    [undefined, ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"]],
  ];
  for (const [expr, want] of range) {
    it(`priority ${expr ?? "(any)"} admits ${want.join(", ")}`, () => {
      const [lo, hi] = priorityRange(expr)!;
      const all = ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"];
      assert.deepEqual(all.filter((p) => priorityRank(p) >= lo && priorityRank(p) <= hi), want);
    });
  }

  const detection: RuntimeRuleDetection = {
    signals: [
      { name: "shell", source: "falco", rules: ["Terminal shell in container", "Run shell untrusted"], priority: ">=warning" },
      { name: "sensitive", source: "falco", rules: ["Read sensitive file*"], tags: ["mitre_credential_access"] },
      { name: "bash-by-root", source: "falco", fields: [{ field: "proc.name", operator: "In", values: ["bash"] }, { field: "user.name", operator: "StartsWith", values: ["ro"] }, { field: "container.image.repository", operator: "DoesNotExist" }] },
      { name: "denied", source: "enforcer", rules: ["APIDenied"], fields: [{ field: "reason", operator: "NotIn", values: ["Unauthenticated"] }] },
    ],
  };
  const fired = (e: AttributedSignal) => new Correlator({ now: () => e.time }).evaluate("r", compileDetection({ detection }), e).map((f) => f.name);
  const table: [string, AttributedSignal, string[]][] = [
    ["a Warning shell", ev({ at: 0 }), ["shell"]],
    ["a Notice shell is below >=warning", ev({ at: 0, priority: priorityRank("notice") }), []],
    ["a Critical second listed rule", ev({ at: 0, rule: "Run shell untrusted", priority: priorityRank("critical") }), ["shell"]],
    ["a glob rule with its tag", ev({ at: 0, rule: "Read sensitive file untrusted", tags: ["filesystem", "mitre_credential_access"] }), ["sensitive"]],
    ["a glob rule without the tag", ev({ at: 0, rule: "Read sensitive file untrusted", tags: ["filesystem"] }), []],
    ["the rule name is matched whole", ev({ at: 0, rule: "Terminal shell in container (copy)" }), []],
    ["fields: In, StartsWith, a null value counts as absent", ev({ at: 0, rule: "x", fields: { "proc.name": "bash", "user.name": "root", "container.image.repository": null } }), ["bash-by-root"]],
    ["fields: a present value fails DoesNotExist", ev({ at: 0, rule: "x", fields: { "proc.name": "bash", "user.name": "root", "container.image.repository": "alpine" } }), []],
    ["an enforcer denial that is not Unauthenticated", denial(0), ["denied"]],
    ["an Unauthenticated denial", denial(0, { fields: { reason: "Unauthenticated" } }), []],
    ["a Falco event never matches an enforcer signal", ev({ at: 0, rule: "APIDenied" }), []],
  ];
  for (const [name, e, want] of table) it(name, () => assert.deepEqual(fired(e), want));
});

describe("signals: correlation windows (fake clock)", () => {
  const shellThenDenials: RuntimeRuleDetection = {
    signals: [
      { name: "shell", source: "falco", rules: ["Terminal shell in container"], priority: ">=warning" },
      { name: "denied", source: "enforcer", rules: ["APIDenied"] },
    ],
    correlations: [
      { name: "denials", type: "event_count", signals: ["denied"], timespan: "5m", condition: { gte: 5 } },
      { name: "shell-then-denials", type: "temporal_ordered", signals: ["shell", "denials"], timespan: "5m" },
    ],
  };

  it("event_count fires on the 5th denial within 5 minutes, then counts afresh", () => {
    const { send } = engine({ signals: shellThenDenials.signals, correlations: [shellThenDenials.correlations![0]] });
    const r = send(denial(0), denial(60_000), denial(120_000), denial(180_000), denial(240_000), denial(241_000));
    assert.deepEqual(r.map((x) => x.includes("correlation:denials")), [false, false, false, false, true, false]);
  });

  it("window edges: events exactly 5 minutes apart are in one window, 1 ms more is not", () => {
    const c2 = { name: "two", type: "event_count" as const, signals: ["denied"], timespan: "5m", condition: { gte: 2 } };
    const a = engine({ signals: shellThenDenials.signals, correlations: [c2] }, { now: 400_000 });
    assert.ok(a.send(denial(0), denial(300_000))[1].includes("correlation:two"), "inclusive at exactly the timespan");
    const b = engine({ signals: shellThenDenials.signals, correlations: [c2] }, { now: 400_000 });
    assert.ok(!b.send(denial(0), denial(300_001))[1].includes("correlation:two"), "1 ms past the timespan");
  });

  it("a burst entry counts every occurrence it stands for", () => {
    const { send } = engine({ signals: shellThenDenials.signals, correlations: [shellThenDenials.correlations![0]] });
    assert.ok(send(denial(0, { count: 3 }), denial(1000, { count: 2 }))[1].includes("correlation:denials"));
  });

  it("temporal_ordered: a Warning shell, then 5 API denials from the same identity within 5 minutes", () => {
    const { send } = engine(shellThenDenials, { now: 400_000 });
    const fromReplica = (at: number) => denial(at, { attribution: { namespace: "shop", pod: "orders-1", spiffeID: ID } });
    const r = send(ev({ at: 100_000 }), denial(110_000), fromReplica(120_000), denial(130_000), fromReplica(140_000), denial(150_000));
    assert.deepEqual(r[5], ["signal:denied", "correlation:denials", "correlation:shell-then-denials"], "grouped by identity across replicas");
  });

  it("temporal_ordered: the wrong order does not fire", () => {
    const { send } = engine(shellThenDenials, { now: 400_000 });
    const r = send(denial(100_000), denial(101_000), denial(102_000), denial(103_000), denial(104_000), ev({ at: 105_000 }));
    assert.ok(!r.flat().includes("correlation:shell-then-denials"));
  });

  it("out of order: a shell that arrives after the denials but happened before them fires", () => {
    const { send } = engine(shellThenDenials, { now: 400_000 });
    const r = send(denial(110_000), denial(111_000), denial(112_000), denial(113_000), denial(114_000), ev({ at: 100_000 }));
    assert.ok(r[5].includes("correlation:shell-then-denials"), JSON.stringify(r));
  });

  it("another identity's events never complete the correlation", () => {
    const { send } = engine(shellThenDenials, { now: 400_000 });
    const other = (at: number) => denial(at, { attribution: { namespace: "shop", pod: "cart-0", spiffeID: "spiffe://cluster.local/ns/shop/sa/cart" } });
    const r = send(ev({ at: 100_000 }), other(110_000), other(111_000), other(112_000), other(113_000), other(114_000)).flat();
    assert.ok(r.includes("correlation:denials"), "the other identity's own count fires");
    assert.ok(!r.includes("correlation:shell-then-denials"));
  });

  it("duplicates by uuid count once", () => {
    const { send } = engine({ signals: shellThenDenials.signals, correlations: [{ name: "two", type: "event_count", signals: ["denied"], timespan: "5m", condition: { gte: 2 } }] });
    const d = denial(0, { id: "6f1c0a52-3d1e-4b7a-9e55-0c7b2f4d8a11" });
    assert.deepEqual(send(d, { ...d }, { ...d, time: T0 + 10 }), [["signal:denied"], ["(duplicate)"], ["(duplicate)"]]);
  });

  it("value_count: distinct paths probed by one identity", () => {
    const { send } = engine({
      signals: [{ name: "denied", source: "enforcer", rules: ["APIDenied"] }],
      correlations: [{ name: "scan", type: "value_count", signals: ["denied"], field: "path", timespan: "1m", condition: { gte: 3 } }],
    });
    const p = (at: number, path: string) => denial(at, { fields: { reason: "Forbidden", path } });
    const r = send(p(0, "/a"), p(1, "/a"), p(2, "/b"), p(3, "/b"), p(4, "/c"));
    assert.deepEqual(r.map((x) => x.includes("correlation:scan")), [false, false, false, false, true]);
  });

  it("late events fire single-signal matches but join no window; future events count as now", () => {
    const { c, send, set } = engine({ signals: shellThenDenials.signals, correlations: [{ name: "two", type: "event_count", signals: ["denied"], timespan: "5m", condition: { gte: 2 } }] });
    set(3_600_000);
    const late = denial(0);
    assert.equal(c.admit({ ...late, id: "probe" }), "late");
    assert.deepEqual(send(late, denial(1)), [["signal:denied"], ["signal:denied"]]);
    const future = denial(3_600_000 + 3_600_000);
    assert.deepEqual(send(future, denial(3_600_000 - 1000))[1], ["signal:denied", "correlation:two"]);
    assert.equal(future.time, T0 + 3_600_000, "clamped to the clock");
  });

  it("state stays bounded: entries per window and windows overall", () => {
    const { c, send } = engine({ signals: shellThenDenials.signals, correlations: [{ name: "many", type: "event_count", signals: ["denied"], timespan: "1h", condition: { gte: 100 } }] }, { maxEntriesPerWindow: 10, maxWindows: 5 });
    assert.ok(!send(...Array.from({ length: 200 }, (_, i) => denial(i))).flat().includes("correlation:many"), "only 10 entries are kept");
    for (let i = 0; i < 50; i++) send(denial(i, { attribution: { namespace: "shop", pod: `p${i}`, spiffeID: `spiffe://cluster.local/ns/shop/sa/s${i}` } }));
    assert.ok(c.windowCount <= 5);
  });
});

describe("signals: detections that make no sense (status conditions)", () => {
  const problems = (detection: RuntimeRuleDetection) => compileDetection({ detection }).problems.map((p) => `${p.reason}: ${p.message}`);
  it("a correlation that refers to a later one", () => {
    const p = problems({ signals: [{ name: "a", source: "falco" }], correlations: [{ name: "x", type: "temporal_ordered", signals: ["a", "y"], timespan: "1m" }, { name: "y", type: "event_count", signals: ["a"], timespan: "1m", condition: { gte: 2 } }] });
    assert.match(p.join("\n"), /InvalidDetection: spec.detection.correlations\[0\] \(x\).signals refers to y, defined after it/);
  });
  it("a priority comparison nothing satisfies", () => {
    assert.match(problems({ signals: [{ name: "a", source: "falco", priority: ">emergency" }] }).join(), /NeverMatches: .*signals\[0\] \(a\).priority ">emergency" admits no priority/);
  });
  it("an enforcer rule name no enforcer event has, and a field it never carries", () => {
    const p = problems({ signals: [{ name: "a", source: "enforcer", rules: ["TLSRefsed"], fields: [{ field: "proc.name", operator: "Exists" }] }] }).join("\n");
    assert.match(p, /rules \["TLSRefsed"\] match no enforcer event; enforcer events are named TLSRefused, PlaintextAttempt, APIDenied, Burst/);
    assert.match(p, /enforcer events have no field "proc.name"/);
  });
  it("a value_count over enforcer events of a field they do not carry", () => {
    const p = problems({ signals: [{ name: "a", source: "enforcer" }], correlations: [{ name: "v", type: "value_count", signals: ["a"], field: "fd.sip", timespan: "1m", condition: { gte: 2 } }] });
    assert.match(p.join(), /field "fd.sip": enforcer events have no such field/);
  });
  it("a quarantine under enforcement audit is a label", () => {
    const d = compileDetection({ enforcement: "audit", detection: { signals: [{ name: "a", source: "falco" }], responses: [{ name: "r", on: ["a"], action: "quarantine" }] } });
    assert.equal(d.responses[0].action, "label");
  });
  it("Go durations", () => {
    assert.equal(goDuration("5m", 0), 300_000);
    assert.equal(goDuration("1h30m", 0), 5_400_000);
    assert.equal(goDuration("1.5s", 0), 1500);
    assert.ok(Number.isNaN(goDuration("5 minutes", 0)));
  });
});

describe("signals: the RuntimeRule status names a detection that makes no sense", () => {
  it("Ready=False, reason NeverMatches, naming the field and the fix", async () => {
    const { planRuntimeRule } = await import("../../operator/controllers/runtimerule.ts");
    const plan = planRuntimeRule({ apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", metadata: { name: "r", namespace: "shop" }, spec: { selector: {}, detection: { signals: [{ name: "a", source: "falco", priority: "<debug" }] } } } as any, [], new Date());
    assert.equal(plan.verdict.ready, false);
    assert.equal(plan.verdict.reason, "NeverMatches");
    assert.match(plan.verdict.message, /spec\.detection\.signals\[0\] \(a\)\.priority "<debug" admits no priority/);
  });
});
