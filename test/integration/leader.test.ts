import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { createObject, tenet, waitReady } from "./helpers.ts";

const api = { name: "health", paths: ["/healthz"], methods: { GET: "read" } };

describe("leader election with two replicas (real processes, real Lease)", function () {
  this.timeout(120_000);

  async function twoReplicas(ns: string) {
    const kubeconfig = await operatorKubeconfig();
    const env = { TENET_LEASE_NAME: `lease-${ns}` };
    const a = await OperatorProcess.start({ kubeconfig, namespace: "tenet-system", identity: `a-${ns}`, env });
    const b = await OperatorProcess.start({ kubeconfig, namespace: "tenet-system", identity: `b-${ns}`, env });
    const leader = await waitFor("one replica to lead", () => [a, b].find((p) => p.isLeader));
    return { leader, follower: leader === a ? b : a };
  }

  it("runs the controllers on exactly one replica while both run", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-single");
    const { leader, follower } = await twoReplicas(ns);
    for (let i = 0; i < 5; i++) await createObject(kube, tenet("APIPolicy", ns, `p${i}`, { selector: {}, apis: [api] }));
    for (let i = 0; i < 5; i++) await waitReady(kube, "APIPolicy", ns, `p${i}`, (r) => r.status === "True");
    assert.ok((await leader.metricSum("tenet_reconcile_total")) >= 5);
    assert.equal(await follower.metricSum("tenet_reconcile_total"), 0, "the follower reconciled nothing");
    assert.equal(await follower.metricSum("tenet_leader"), 0);
    assert.equal(await leader.metricSum("tenet_leader"), 1);
    assert.ok(follower.hasLog((l) => l.msg === "caches synced"), "the follower keeps warm caches");
  });

  it("fails over within 20 s when the leader is killed with SIGKILL", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-kill");
    const { leader, follower } = await twoReplicas(ns);
    await leader.kill("SIGKILL");
    const killedAt = Date.now();
    await createObject(kube, tenet("APIPolicy", ns, "after-crash", { selector: {}, apis: [api] }));
    // The bound is the requirement itself (lease duration 15 s + one retry period).
    await waitReady(kube, "APIPolicy", ns, "after-crash", (r) => r.status === "True", 20_000);
    assert.ok(follower.isLeader, "the survivor took the lease");
    const lease = await kube.get(resourcePath(Resources.leases, "tenet-system", `lease-${ns}`));
    assert.equal(lease.spec.holderIdentity, follower.identity);
    assert.equal(lease.spec.leaseTransitions, 1);
    process.stderr.write(`      [leader] failover after SIGKILL took ${Date.now() - killedAt} ms\n`);
  });

  it("hands over at once on SIGTERM: the leader releases the Lease instead of letting it expire", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-term");
    const { leader, follower } = await twoReplicas(ns);
    assert.equal(await leader.kill("SIGTERM"), 0, "graceful shutdown exits 0");
    assert.ok(leader.hasLog((l) => l.msg === "released leadership"));
    await waitFor("the follower to lead", () => follower.isLeader, 20_000);
    assert.ok(
      follower.hasLog((l) => l.msg === "acquired the lease" && l.previousHolder === "(none)"),
      "the follower found a released lease (it did not wait for expiry)",
    );
    await createObject(kube, tenet("APIPolicy", ns, "after-handover", { selector: {}, apis: [api] }));
    await waitReady(kube, "APIPolicy", ns, "after-handover", (r) => r.status === "True");
  });

  it("steps down before its lease runs out when its API server stalls: the renew deadline bounds each request", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("le-stall");
    const kubeconfig = await operatorKubeconfig();
    // The leader reaches the API server through a proxy the test can stall (like SIGSTOP of the
    // API server, but for this replica only): connections stay open, nothing comes back.
    const proxy = await stallableProxy(new URL(kube.serverURL));
    try {
      const viaProxy = kubeconfig.replace(/\.kubeconfig$/, `.${ns}.kubeconfig`);
      writeFileSync(viaProxy, readFileSync(kubeconfig, "utf8").replace(/server: "[^"]+"/, `server: "https://127.0.0.1:${proxy.port}"`), { mode: 0o600 });
      const env = { TENET_LEASE_NAME: `lease-${ns}` };
      const a = await OperatorProcess.start({ kubeconfig: viaProxy, namespace: "tenet-system", identity: `a-${ns}`, env });
      await waitFor("a to lead", () => a.isLeader, 20_000);
      const b = await OperatorProcess.start({ kubeconfig, namespace: "tenet-system", identity: `b-${ns}`, env });
      await new Promise((r) => setTimeout(r, 3000)); // a renews at least once while b watches
      proxy.stall();
      const lease = await kube.get(resourcePath(Resources.leases, "tenet-system", `lease-${ns}`));
      assert.equal(lease.spec.holderIdentity, a.identity);
      const lastRenew = Date.parse(lease.spec.renewTime);
      const leaseMs = lease.spec.leaseDurationSeconds * 1000;

      const lost = await a.waitForLog("a to step down", (l) => l.msg === "lost leadership: could not renew the lease in time", 40_000);
      await waitFor("b to take over", () => b.hasLog((l) => l.msg === "acquired the lease"), 40_000);
      const acquired = b.logs.find((l) => l.msg === "acquired the lease");
      const lostAt = Date.parse(lost.time);
      process.stderr.write(`      [leader] stalled leader stepped down ${lostAt - lastRenew} ms after its last renewal (lease ${leaseMs} ms); the other took over after ${Date.parse(acquired.time) - lastRenew} ms\n`);
      assert.ok(lostAt < lastRenew + leaseMs, `stepped down ${lostAt - lastRenew} ms after its last renewal: after its lease (${leaseMs} ms) ran out`);
      assert.ok(lostAt < Date.parse(acquired.time), "the stalled leader stopped before the other replica took over");
      assert.equal(await a.kill("SIGKILL").then(() => a.running), false);
    } finally {
      proxy.close();
    }
  });
});

/** A TCP proxy to the API server that can stop forwarding (both ways) without closing anything. */
async function stallableProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let stalled = false;
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("error", () => undefined);
    client.on("close", () => sockets.delete(client));
    if (stalled) return client.pause();
    const upstream = net.connect(Number(target.port || 443), target.hostname);
    sockets.add(upstream);
    upstream.on("error", () => client.destroy());
    upstream.on("close", () => sockets.delete(upstream));
    client.on("data", (d) => !stalled && upstream.write(d));
    upstream.on("data", (d) => !stalled && client.write(d));
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall() {
      stalled = true;
    },
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}
