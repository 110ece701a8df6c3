import { strict as assert } from "node:assert";
import { pino } from "pino";
import { KubeError } from "../../common/kube.ts";
import { Controller, TerminalError } from "../../operator/runtime/controller.ts";
import { RuntimeMetrics } from "../../operator/runtime/metrics.ts";

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), "condition never became true");
};

describe("Controller loop", () => {
  const make = (reconcile: (key: string) => Promise<any>) => {
    const metrics = new RuntimeMetrics(false);
    const c = new Controller({ name: "t", reconcile, log: pino({ level: "silent" }), metrics, workers: 2, backoff: { baseMs: 1, maxMs: 10 } });
    return { c, metrics };
  };

  it("keeps reconciling other keys while one key keeps failing, and retries the failing one with backoff", async () => {
    const calls: string[] = [];
    const { c } = make(async (key) => {
      calls.push(key);
      if (key === "bad") throw new Error("boom");
    });
    c.start();
    c.enqueue("bad");
    for (let i = 0; i < 20; i++) c.enqueue(`ok-${i}`);
    await until(() => calls.filter((k) => k.startsWith("ok-")).length === 20 && calls.filter((k) => k === "bad").length >= 3);
    assert.ok(c.queue.retries("bad") >= 2, "the failing key backs off");
    await c.stop();
  });

  it("does not retry a terminal error, and requeues a conflict quietly", async () => {
    let terminal = 0;
    let conflicts = 0;
    const { c, metrics } = make(async (key) => {
      if (key === "terminal") {
        terminal++;
        throw new TerminalError("fix your object");
      }
      if (conflicts++ < 2) throw new KubeError(409, "Conflict", "the object has been modified");
    });
    c.start();
    c.enqueue("terminal");
    c.enqueue("conflicted");
    await until(() => conflicts >= 3);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(terminal, 1);
    const values = (await metrics.registry.getSingleMetric("tenet_reconcile_total")!.get()).values;
    const by = (result: string) => values.find((v) => v.labels.result === result)?.value;
    assert.equal(by("terminal"), 1);
    assert.equal(by("conflict"), 2);
    assert.equal(by("success"), 1);
    await c.stop();
  });

  it("requeues after the delay a reconcile asks for", async () => {
    let n = 0;
    const { c } = make(async () => (++n < 3 ? { requeueAfterMs: 5 } : undefined));
    c.start();
    c.enqueue("timed");
    await until(() => n === 3);
    await c.stop();
  });

  it("finishes in-flight reconciles before stop() resolves", async () => {
    let finished = false;
    const { c } = make(async () => {
      await new Promise((r) => setTimeout(r, 50));
      finished = true;
    });
    c.start();
    c.enqueue("slow");
    await new Promise((r) => setTimeout(r, 5));
    await c.stop();
    assert.ok(finished);
  });
});
