// Two workloads call each other through their enforcers (mTLS both ways, APIPolicy, audit),
// the examples' frontend → orders, in a namespace of their own.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { auditRecords, call, deployDemo, namespace } from "../harness/node.ts";

describe("e2e: calls between two workloads through their enforcers", function () {
  this.timeout(180_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  let pods: Awaited<ReturnType<typeof deployDemo>>;
  before(async () => {
    ns = await namespace("e2e-mesh");
    const n = ns.name;
    // One more peer for the hostile case: "impostor" must present frontend's identity but is
    // answered by orders' enforcer.
    const peers = `'{"orders.${n}.svc": "spiffe://cluster.local/ns/${n}/sa/orders"}'`;
    const withImpostor = `'{"orders.${n}.svc": "spiffe://cluster.local/ns/${n}/sa/orders", "impostor.${n}.svc": {"spiffeID": "spiffe://cluster.local/ns/${n}/sa/frontend", "address": "orders.${n}.svc:15443"}}'`;
    pods = await deployDemo(n, { orders: "ghcr.io/acme/e2e-app:1.0", frontend: "ghcr.io/acme/e2e-app:1.0" }, { [peers]: withImpostor });
  });
  after(async () => ns?.remove());

  it("allows what APIPolicy allows, denies the rest, and audits every attempt", async () => {
    const base = `http://orders.${ns.name}.svc`;
    const fe = pods.frontend.metadata.name;
    const ok = await waitFor("the first call through the enforcers", async () => {
      const r = await call(ns.name, fe, "GET", `${base}/healthz`);
      return r.status === 200 ? r : undefined;
    }, 30_000, 1000);
    assert.match(ok.out, /"name":"orders"/);
    const noJWT = await call(ns.name, fe, "GET", `${base}/v1/orders`);
    assert.equal(noJWT.status, 401, noJWT.out);
    assert.match(noJWT.out, /JWTMissing/);
    const noRule = await call(ns.name, fe, "DELETE", `${base}/v1/orders/42`);
    assert.equal(noRule.status, 403, noRule.out);
    assert.match(noRule.out, /NoRuleAllows/);

    const records = await waitFor("three audit records", async () => {
      const a = (await auditRecords(ns.name, pods.orders.metadata.name)).filter((r) => r.direction === "inbound" && r.path !== undefined);
      return a.length >= 3 ? a : undefined;
    }, 15_000, 500);
    const caller = `spiffe://cluster.local/ns/${ns.name}/sa/frontend`;
    const seen = records.slice(-3).map((r) => [r.caller, r.method, r.path, r.decision, r.reason ?? r.rule]);
    assert.deepEqual(seen.map((s) => s.slice(0, 4)), [
      [caller, "GET", "/healthz", "allow"],
      [caller, "GET", "/v1/orders", "deny"],
      [caller, "DELETE", "/v1/orders/42", "deny"],
    ]);
  });

  it("refuses a destination that presents another identity than the one expected", async () => {
    const r = await call(ns.name, pods.frontend.metadata.name, "GET", `http://impostor.${ns.name}.svc/healthz`);
    assert.equal(r.status, 502, r.out);
    assert.match(r.out, /PeerIdentityMismatch/);
  });

  it("refuses a destination no peer entry names", async () => {
    const r = await call(ns.name, pods.frontend.metadata.name, "GET", `http://frontend.${ns.name}.svc/healthz`);
    assert.equal(r.status, 502, r.out);
    assert.match(r.out, /UnknownDestination/);
  });
});
