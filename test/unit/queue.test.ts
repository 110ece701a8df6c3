import { strict as assert } from "node:assert";
import { FakeClock } from "../../operator/runtime/clock.ts";
import { WorkQueue } from "../../operator/runtime/queue.ts";

describe("WorkQueue", () => {
  let clock: FakeClock;
  let q: WorkQueue;
  beforeEach(() => {
    clock = new FakeClock();
    q = new WorkQueue({ baseMs: 100, maxMs: 1000 }, clock);
  });

  it("hands out a key added many times only once", async () => {
    q.add("a");
    q.add("a");
    q.add("b");
    q.add("a");
    assert.equal(q.depth, 2);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(q.depth, 0);
  });

  it("never gives a key to two workers at once, and re-queues it if it changed meanwhile", async () => {
    q.add("a");
    const k = await q.get();
    q.add("a"); // changed while being processed
    assert.equal(q.depth, 0, "not handed out again while in flight");
    q.done(k!);
    assert.equal(q.depth, 1, "re-queued once the worker is done");
    assert.equal(await q.get(), "a");
  });

  it("backs off exponentially per key and caps the delay", () => {
    const delays = [1, 2, 3, 4, 5].map(() => q.addRateLimited("a"));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000]);
    assert.equal(q.retries("a"), 5);
    assert.equal(q.addRateLimited("b"), 100, "another key's failures do not slow this one");
    q.forget("a");
    assert.equal(q.addRateLimited("a"), 100, "forget resets the backoff");
  });

  it("adds a delayed key only when its time comes, keeping the earliest delay", async () => {
    q.addAfter("a", 500);
    q.addAfter("a", 200);
    q.addAfter("a", 900);
    clock.advance(199);
    assert.equal(q.depth, 0);
    clock.advance(1);
    assert.equal(q.depth, 1);
    clock.advance(1000);
    assert.equal(q.depth, 1, "the later delays were folded into the first");
  });

  it("wakes a waiting worker when a key arrives, and releases waiters on shutdown", async () => {
    const waiting = q.get();
    q.add("x");
    assert.equal(await waiting, "x");
    const idle = q.get();
    q.shutdown();
    assert.equal(await idle, undefined);
    q.add("y");
    assert.equal(await q.get(), undefined, "nothing is queued after shutdown");
  });
});
