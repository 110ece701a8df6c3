import { strict as assert } from "node:assert";
import { resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { createObject, eventsFor, getObject, patchSpec, pod, ready, tenet, waitReady } from "./helpers.ts";

const ordersAPI = {
  name: "orders",
  paths: ["/orders", "/orders/*"],
  methods: { GET: "read", POST: "create" },
};

describe("first controllers (real API server, operator process)", function () {
  this.timeout(120_000);
  let ns: string;
  let operator: OperatorProcess;

  beforeEach(async () => {
    ns = await newNamespace("ctl", ["orders"]);
    operator = await OperatorProcess.start({
      kubeconfig: await operatorKubeconfig(),
      namespace: "tenet-system",
      identity: `op-${ns}`,
      env: { TENET_LEASE_NAME: `lease-${ns}` },
    });
  });

  it("ServiceIdentity: Ready=False while its selector matches nothing, then counts pods as they come and go", async () => {
    const { kube } = await cluster();
    await createObject(kube, tenet("ServiceIdentity", ns, "orders", { selector: { matchLabels: { app: "orders" } }, serviceAccountName: "orders" }));
    const empty = await waitReady(kube, "ServiceIdentity", ns, "orders", (r) => r.status === "False");
    assert.equal(ready(empty).reason, "NoMatchingPods");
    assert.match(ready(empty).message, /spec\.selector \(app=orders\) matches no pod running as service account "orders"/);
    assert.equal(empty.status.matchedPods, 0);

    await kube.create(resourcePath(Resources.pods, ns), pod("orders-1", { app: "orders" }, "orders"));
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-2", { app: "orders" }, "orders"));
    await kube.create(resourcePath(Resources.pods, ns), pod("other", { app: "orders" }, "default")); // wrong service account
    const two = await waitReady(kube, "ServiceIdentity", ns, "orders", (r, o) => r.status === "True" && o.status.matchedPods === 2);
    assert.equal(two.status.spiffeID, `spiffe://cluster.local/ns/${ns}/sa/orders`);
    assert.equal(ready(two).reason, "IdentityReady");

    await kube.delete(resourcePath(Resources.pods, ns, "orders-1"), { gracePeriodSeconds: 0 });
    await waitReady(kube, "ServiceIdentity", ns, "orders", (_r, o) => o.status.matchedPods === 1);

    const events = await eventsFor(kube, ns, "orders");
    assert.ok(events.some((e) => e.type === "Warning" && e.reason === "NoMatchingPods"), "a Warning Event explains the first state");
    assert.ok(events.some((e) => e.type === "Normal" && e.reason === "IdentityReady"), "a Normal Event records the recovery");
  });

  it("ServiceIdentity: two identities claiming the same pod are both reported, naming each other", async () => {
    const { kube } = await cluster();
    await kube.create(resourcePath(Resources.pods, ns), pod("web-1", { app: "web", tier: "frontend" }));
    await createObject(kube, tenet("ServiceIdentity", ns, "by-app", { selector: { matchLabels: { app: "web" } } }));
    await createObject(kube, tenet("ServiceIdentity", ns, "by-tier", { selector: { matchLabels: { tier: "frontend" } } }));
    const a = await waitReady(kube, "ServiceIdentity", ns, "by-app", (r) => r.reason === "OverlappingIdentities");
    assert.match(ready(a).message, /pod web-1 is also selected by ServiceIdentity by-tier/);
    await waitReady(kube, "ServiceIdentity", ns, "by-tier", (r) => r.reason === "OverlappingIdentities");
  });

  it("APIPolicy: a rule naming an undeclared API is Ready=False with the field and the fix; fixing it flips Ready and observedGeneration", async () => {
    const { kube } = await cluster();
    await createObject(
      kube,
      tenet("APIPolicy", ns, "orders", {
        selector: { matchLabels: { app: "orders" } },
        apis: [ordersAPI],
        rules: [{ name: "frontend-pays", from: [{ namespaces: [ns] }], to: [{ api: "payments", scopes: ["create"] }] }],
      }),
    );
    const bad = await waitReady(kube, "APIPolicy", ns, "orders", (r) => r.status === "False");
    assert.equal(ready(bad).reason, "UnknownAPI");
    assert.match(ready(bad).message, /spec\.rules\[0\] \(frontend-pays\)\.to\[0\]\.api "payments" is not declared in spec\.apis \(declared: orders\); declare it or fix the name/);
    assert.equal(ready(bad).observedGeneration, bad.metadata.generation);
    const firstTransition = ready(bad).lastTransitionTime;

    await patchSpec(kube, "APIPolicy", ns, "orders", {
      rules: [{ name: "frontend-pays", from: [{ namespaces: [ns] }], to: [{ api: "orders", scopes: ["delete"] }] }],
    });
    const stillBad = await waitReady(kube, "APIPolicy", ns, "orders", (r) => r.reason === "UnknownScope");
    assert.match(ready(stillBad).message, /scopes\[0\] "delete" is not a scope of API "orders" \(its scopes: read, create\)/);
    assert.equal(ready(stillBad).lastTransitionTime, firstTransition, "lastTransitionTime moves only when the status flips");
    assert.equal(stillBad.status.observedGeneration, 2);

    await patchSpec(kube, "APIPolicy", ns, "orders", {
      rules: [{ name: "frontend-pays", from: [{ namespaces: [ns] }], to: [{ api: "orders", scopes: ["read"] }] }],
    });
    const good = await waitReady(kube, "APIPolicy", ns, "orders", (r) => r.status === "True");
    assert.equal(ready(good).reason, "PolicyValid");
    assert.equal(good.status.observedGeneration, 3);
    const events = await eventsFor(kube, ns, "orders");
    assert.ok(events.some((e) => e.type === "Warning" && e.reason === "UnknownAPI" && /payments/.test(e.message)));
  });

  it("RuntimeRule: an expired CVE exemption makes it Ready=False, and one that expires later flips it at its expiry", async () => {
    const { kube } = await cluster();
    const past = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
    await createObject(
      kube,
      tenet("RuntimeRule", ns, "expired", {
        selector: {},
        vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-0001", expires: past, reason: "vendor fix pending" }] },
      }),
    );
    const expired = await waitReady(kube, "RuntimeRule", ns, "expired", (r) => r.status === "False");
    assert.equal(ready(expired).reason, "ExemptionExpired");
    assert.match(ready(expired).message, /spec\.vulnerabilities\.exemptions\[0\] \(CVE-2024-0001\) expired at .* extend its expires date or remove it/);

    const soon = new Date(Date.now() + 6_000).toISOString().replace(/\.\d+Z$/, "Z");
    await createObject(
      kube,
      tenet("RuntimeRule", ns, "expiring", {
        selector: {},
        vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-0002", expires: soon, reason: "until the patch release" }] },
      }),
    );
    await waitReady(kube, "RuntimeRule", ns, "expiring", (r) => r.status === "True");
    // No edit happens: the controller must wake itself up at the expiry instant.
    await waitReady(kube, "RuntimeRule", ns, "expiring", (r) => r.reason === "ExemptionExpired", 20_000);
  });

  it("a broken object does not stop the others in the same namespace", async () => {
    const { kube } = await cluster();
    const bad = (i: number) =>
      tenet("APIPolicy", ns, `broken-${i}`, { selector: {}, apis: [ordersAPI], rules: [{ name: "r", to: [{ api: `nope-${i}` }] }] });
    for (let i = 0; i < 5; i++) await createObject(kube, bad(i));
    await createObject(kube, tenet("APIPolicy", ns, "fine", { selector: {}, apis: [ordersAPI], rules: [{ name: "r", to: [{ api: "orders" }] }] }));
    await waitReady(kube, "APIPolicy", ns, "fine", (r) => r.status === "True");
    for (let i = 0; i < 5; i++) await waitReady(kube, "APIPolicy", ns, `broken-${i}`, (r) => r.reason === "UnknownAPI");
    assert.ok(operator.running, "the operator is still running");
    assert.equal(await operator.metricSum("tenet_reconcile_total", 'result="error"'), 0, "invalid objects are reported, not retried as errors");
  });

  it("writes status only when it changed", async () => {
    const { kube } = await cluster();
    await createObject(kube, tenet("APIPolicy", ns, "stable", { selector: {}, apis: [ordersAPI] }));
    await waitReady(kube, "APIPolicy", ns, "stable", (r) => r.status === "True");
    // An unrelated pod change re-reconciles every policy in the namespace...
    await kube.create(resourcePath(Resources.pods, ns), pod("unrelated", { x: "y" }));
    await waitFor("the pod to be counted", async () => (await getObject(kube, "APIPolicy", ns, "stable")).status.workloads === 1);
    const before = (await getObject(kube, "APIPolicy", ns, "stable")).metadata.resourceVersion;
    const reconciles = () => operator.metricSum("tenet_reconcile_total", 'controller="apipolicy"');
    const count = await reconciles();
    await kube.patch(resourcePath(Resources.pods, ns, "unrelated"), "merge", { metadata: { labels: { touched: "1" } } });
    await waitFor("the operator to reconcile after the pod change", async () => (await reconciles()) > count);
    const after = (await getObject(kube, "APIPolicy", ns, "stable")).metadata.resourceVersion;
    assert.equal(after, before, "...but an unchanged status is not written again");
  });

  it("serves /healthz, /readyz and Prometheus metrics for queues, reconciles and leadership", async () => {
    const base = `http://127.0.0.1:${operator.healthPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    // Not ready until the CA endpoint and webhooks serve, which can be after the caches sync.
    await waitFor("/readyz to answer 200", async () => (await fetch(`${base}/readyz`)).status === 200);
    await waitFor("leadership", () => operator.isLeader);
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of ["tenet_workqueue_depth", "tenet_reconcile_total", "tenet_reconcile_duration_seconds", "tenet_leader 1", "tenet_informer_restarts_total", "tenet_process_resident_memory_bytes"]) {
      assert.ok(text.includes(name), `${name} in /metrics`);
    }
  });
});
