import { strict as assert } from "node:assert";
import { pino } from "pino";
import { resourcePath, Resources } from "../../common/kube.ts";
import { Informer, type ChangeType } from "../../operator/runtime/informer.ts";
import type { KubeObject } from "../../common/objects.ts";
import { toCachedPod, type CachedPod } from "../../operator/cache/pods.ts";
import { cluster, newNamespace } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";

const quiet = pino({ level: "silent" });

const pod = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels, annotations: { "tenet.dev/inject": "true", "big/unrelated": "x".repeat(2000) } },
  spec: { containers: [{ name: "app", image: "ghcr.io/acme/app:1.0" }] },
});

describe("informer (real API server)", function () {
  this.timeout(90_000);

  it("lists, then follows adds, updates and deletes, caching only the fields it keeps", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("inf");
    await kube.create(resourcePath(Resources.pods, ns), pod("before"));
    const inf = new Informer<CachedPod>(kube, quiet, { name: "pods", resource: Resources.pods, namespace: ns, transform: toCachedPod });
    const seen: string[] = [];
    inf.onChange((t: ChangeType, o: KubeObject) => seen.push(`${t}:${o.metadata.name}`));
    await inf.start();
    try {
      assert.deepEqual(seen, ["add:before"]);
      const cached = inf.get(`${ns}/before`)!;
      assert.deepEqual(cached.metadata.annotations, { "tenet.dev/inject": "true" }, "unrelated annotations are dropped on arrival");
      assert.deepEqual(cached.spec.containers, [{ name: "app", image: "ghcr.io/acme/app:1.0" }]);

      await kube.create(resourcePath(Resources.pods, ns), pod("after"));
      await kube.patch(resourcePath(Resources.pods, ns, "before"), "merge", { metadata: { labels: { v: "2" } } });
      await kube.delete(resourcePath(Resources.pods, ns, "after"), { gracePeriodSeconds: 0 });
      await waitFor("all three changes", () => seen.includes("delete:after"));
      // Deletion may first show as an update (deletionTimestamp set), then the delete.
      const relevant = seen.filter((e) => e !== "update:after");
      assert.deepEqual(relevant, ["add:before", "add:after", "update:before", "delete:after"]);
      assert.equal(inf.get(`${ns}/after`), undefined);
      assert.equal(inf.get(`${ns}/before`)!.metadata.labels!.v, "2");
    } finally {
      inf.stop();
    }
  });

  it("recovers after the API server restarts and catches up with what changed while it was down", async () => {
    const c = await cluster();
    const ns = await newNamespace("inf-restart");
    const inf = new Informer<CachedPod>(c.kube, quiet, { name: "pods", resource: Resources.pods, namespace: ns, transform: toCachedPod, maxBackoffMs: 1000 });
    const resyncs: string[] = [];
    inf.onChange((t: ChangeType, o: KubeObject) => t === "resync" && resyncs.push(o.metadata.name));
    await c.kube.create(resourcePath(Resources.pods, ns), pod("one"));
    await inf.start();
    try {
      await c.stopAPIServer();
      await new Promise((r) => setTimeout(r, 1500)); // let the watch fail and back off at least once
      await c.restartAPIServer();
      await c.kube.create(resourcePath(Resources.pods, ns), pod("two"));
      await waitFor("the informer to see a pod created after the restart", () => inf.get(`${ns}/two`), 20_000);
      assert.ok(resyncs.includes("one"), "cached objects are re-announced after reconnecting");
    } finally {
      inf.stop();
    }
  });

  it("relists when its resource version is too old (410 Gone)", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("inf-gone");
    const inf = new Informer<CachedPod>(kube, quiet, { name: "pods", resource: Resources.pods, namespace: ns, transform: toCachedPod });
    await inf.start();
    try {
      // Force a stale resource version: the server answers the next watch with 410 Gone.
      await waitFor("the watch to start", () => (inf as any).abort);
      (inf as any).resourceVersion = "1";
      (inf as any).abort.abort();
      await kube.create(resourcePath(Resources.pods, ns), pod("fresh"));
      await waitFor("the pod after a relist", () => inf.get(`${ns}/fresh`), 20_000);
    } finally {
      inf.stop();
    }
  });
});
