// The informer against an API server that is away for a minute: it backs off exponentially with
// jitter (not every 250 ms), announces nothing while it is away, and re-announces its cache once
// when the watch is back. Time is the FakeClock the informer accepts.
import { strict as assert } from "node:assert";
import { pino } from "pino";
import { KubeError } from "../../common/kube.ts";
import { FakeClock } from "../../operator/runtime/clock.ts";
import type { KubeObject } from "../../common/objects.ts";
import { Informer, type ChangeType } from "../../operator/runtime/informer.ts";

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function fakeKube(clock: FakeClock) {
  const open = new Set<(err: Error) => void>();
  const state = {
    down: false,
    watchCalls: [] as number[],
    /** The API server goes away: open watches fail, new ones are refused. */
    goDown() {
      state.down = true;
      for (const fail of open) fail(new KubeError(0, "TransportError", "socket hang up"));
      open.clear();
    },
  };
  const kube = {
    async listPages(_path: string, _q: unknown, onPage: (items: unknown[]) => void) {
      if (state.down) throw new KubeError(0, "TransportError", "connect ECONNREFUSED");
      onPage([{ metadata: { name: "a", namespace: "n", resourceVersion: "1" } }]);
      onPage([{ metadata: { name: "b", namespace: "n", resourceVersion: "2" } }]);
      return { resourceVersion: "10" };
    },
    async watch(_path: string, _q: unknown, _onEvent: unknown, signal: AbortSignal, onOpen?: () => void) {
      state.watchCalls.push(clock.now());
      if (state.down) throw new KubeError(0, "TransportError", "connect ECONNREFUSED");
      onOpen?.();
      // Open until aborted, or until the API server goes away.
      await new Promise<void>((resolve, reject) => {
        signal.addEventListener("abort", () => resolve());
        open.add(reject);
      });
    },
  };
  return { kube: kube as any, state };
}

describe("informer backoff (fake clock)", () => {
  it("backs off exponentially with jitter up to 30 s while the watch fails, and re-announces its cache once after recovery", async () => {
    const clock = new FakeClock();
    const { kube, state } = fakeKube(clock);
    const inf = new Informer<KubeObject>(kube, pino({ level: "silent" }), { name: "pods", resource: { version: "v1", plural: "pods" }, clock, watchTimeoutSeconds: 3600, random: () => 0.5 } as any);
    const announced: string[] = [];
    inf.onChange((t: ChangeType, o) => t === "resync" && announced.push(o.metadata.name));
    await inf.start();
    await flush();
    assert.equal(state.watchCalls.length, 1, "one watch while all is well");

    state.goDown();
    await flush();
    const downAt = clock.now();
    for (let t = 0; t < 120_000; t += 100) {
      clock.advance(100);
      await flush();
    }
    const during = state.watchCalls.filter((at) => at >= downAt);
    assert.ok(during.length >= 5 && during.length <= 14, `${during.length} watch attempts in 2 minutes (every 250 ms would be ~480)`);
    const gaps = during.slice(1).map((at, i) => at - during[i]);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1] || gaps[i] >= 15_000, `gaps grow: ${gaps.join(", ")}`);
    assert.ok(Math.max(...gaps) <= 30_000, `capped at 30 s: ${gaps.join(", ")}`);
    assert.ok(gaps.some((g) => g % 250 !== 0), `jittered: ${gaps.join(", ")}`);
    assert.deepEqual(announced, [], "nothing is re-announced while the API server is away");

    state.down = false;
    for (let t = 0; t < 31_000; t += 100) {
      clock.advance(100);
      await flush();
    }
    assert.deepEqual(announced.sort(), ["a", "b"], "the cache is re-announced exactly once after recovery");
    const after = state.watchCalls.length;
    for (let t = 0; t < 60_000; t += 1000) {
      clock.advance(1000);
      await flush();
    }
    assert.equal(state.watchCalls.length, after, "one healthy watch, no more attempts");
    assert.deepEqual(announced.sort(), ["a", "b"]);
    inf.stop();
  });

  it("starts again from a short delay once a watch has been healthy", async () => {
    const clock = new FakeClock();
    const { kube, state } = fakeKube(clock);
    const inf = new Informer<KubeObject>(kube, pino({ level: "silent" }), { name: "pods", resource: { version: "v1", plural: "pods" }, clock, watchTimeoutSeconds: 3600, random: () => 0.5 } as any);
    await inf.start();
    await flush();
    const downs: number[] = [];
    for (let round = 0; round < 2; round++) {
      downs.push(clock.now());
      state.goDown();
      await flush();
      for (let t = 0; t < 60_000; t += 100) {
        clock.advance(100);
        await flush();
      }
      state.down = false;
      for (let t = 0; t < 31_000; t += 100) {
        clock.advance(100);
        await flush();
      }
      // Healthy for a while.
      for (let t = 0; t < 60_000; t += 1000) {
        clock.advance(1000);
        await flush();
      }
    }
    // The second outage started from the short delay again: its first retry came within a second.
    const firstRetry = state.watchCalls.find((at) => at > downs[1])!;
    assert.ok(firstRetry - downs[1] <= 1000, `first retry after ${firstRetry - downs[1]} ms`);
    inf.stop();
  });
});
