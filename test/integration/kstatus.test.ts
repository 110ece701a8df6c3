// Flux's health checks (kstatus, the real library: test/harness/kstatus.ts) on every tenet.dev kind
// as the real operator writes its status on the real API server: InProgress until the operator has
// seen a generation, Current when Ready, Failed (Stalled) when only a spec change helps,
// InProgress (Reconciling) while waiting for pods; observedGeneration catches up after each change.
import { strict as assert } from "node:assert";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { kstatus } from "../harness/kstatus.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { createObject, getObject, patchSpec, pod, tenet } from "./helpers.ts";

type Kind = "ServiceIdentity" | "APIPolicy" | "RuntimeRule";

describe("kstatus: Ready, Stalled, Reconciling and observedGeneration on every tenet.dev kind (real API server, operator process)", function () {
  this.timeout(180_000);
  let kube: Kube;
  let ns: string;

  const statusOf = async (kind: Kind, name: string) => {
    const obj = await getObject(kube, kind, ns, name);
    return { obj, ks: (await kstatus(obj))[0] };
  };
  /** Waits until kstatus says `want` for the object's current generation (observedGeneration caught up). */
  const waitStatus = (kind: Kind, name: string, want: string) =>
    waitFor(`${kind} ${name} kstatus ${want}`, async () => {
      const { obj, ks } = await statusOf(kind, name);
      return ks.status === want && obj.status?.observedGeneration === obj.metadata.generation ? { obj, ks } : undefined;
    }, 30_000, 200);
  const cond = (obj: any, type: string) => obj.status?.conditions?.find((c: any) => c.type === type);

  before(async () => {
    ({ kube } = await cluster());
  });

  it("InProgress before the operator has seen an object: status defaults to observedGeneration 0", async () => {
    ns = await newNamespace("kstatus-new");
    await createObject(kube, tenet("RuntimeRule", ns, "r", { selector: {} }));
    await createObject(kube, tenet("APIPolicy", ns, "p", { selector: {}, apis: [{ name: "a", paths: ["/a"], methods: { GET: "read" } }], rules: [] }));
    await createObject(kube, tenet("ServiceIdentity", ns, "s", { selector: { matchLabels: { app: "x" } } }));
    for (const kind of ["RuntimeRule", "APIPolicy", "ServiceIdentity"] as const) {
      const { obj, ks } = await statusOf(kind, { RuntimeRule: "r", APIPolicy: "p", ServiceIdentity: "s" }[kind]);
      assert.equal(obj.status?.observedGeneration, 0, `${kind}: ${JSON.stringify(obj.status)}`);
      assert.equal(ks.status, "InProgress", `${kind}: ${ks.message}`);
    }
  });

  it("each kind goes Current → Failed (Stalled) on a spec error → Current again, with observedGeneration following every change", async () => {
    ns = await newNamespace("kstatus");
    await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `ks-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}` } });
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }));

    const cases: { kind: Kind; good: unknown; bad: unknown; reason: string }[] = [
      {
        kind: "RuntimeRule",
        good: { selector: { matchLabels: { app: "orders" } }, vulnerabilities: { thresholds: { critical: 0 } } },
        // An exemption that has expired: only a new expiry date (or removing it) makes the rule valid again.
        bad: { selector: { matchLabels: { app: "orders" } }, vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-3094", expires: "2020-01-01T00:00:00Z", reason: "vendor fix pending" }] } },
        reason: "ExemptionExpired",
      },
      {
        kind: "APIPolicy",
        good: { selector: { matchLabels: { app: "orders" } }, apis: [{ name: "orders", paths: ["/v1/orders"], methods: { GET: "read" } }], rules: [{ name: "r", from: [{ spiffeIDs: [`spiffe://cluster.local/ns/${ns}/sa/default`] }], to: [{ api: "orders", scopes: ["read"] }] }] },
        bad: { selector: { matchLabels: { app: "orders" } }, apis: [{ name: "orders", paths: ["/v1/orders"], methods: { GET: "read" } }], rules: [{ name: "r", from: [{ spiffeIDs: [`spiffe://cluster.local/ns/${ns}/sa/default`] }], to: [{ api: "billing", scopes: ["read"] }] }] },
        reason: "UnknownAPI",
      },
      {
        kind: "ServiceIdentity",
        good: { selector: { matchLabels: { app: "orders" } } },
        bad: { selector: { matchLabels: { app: "orders" } }, serviceAccountName: "default" },
        reason: "OverlappingIdentities",
      },
    ];
    for (const c of cases) {
      const name = c.kind.toLowerCase();
      await createObject(kube, tenet(c.kind, ns, name, c.good));
      let { obj } = await waitStatus(c.kind, name, "Current");
      assert.equal(cond(obj, "Ready").status, "True");
      assert.equal(cond(obj, "Ready").observedGeneration, obj.metadata.generation);
      assert.equal(cond(obj, "Stalled"), undefined);

      if (c.kind === "ServiceIdentity") {
        // Overlap needs a second identity claiming the same pod (the spec change below stays on this one).
        await createObject(kube, tenet("ServiceIdentity", ns, "other", { selector: { matchLabels: { app: "orders" } } }));
      }
      await patchSpec(kube, c.kind, ns, name, c.bad);
      ({ obj } = await waitStatus(c.kind, name, "Failed"));
      assert.equal(obj.metadata.generation, 2);
      assert.deepEqual([cond(obj, "Ready").status, cond(obj, "Ready").reason, cond(obj, "Ready").observedGeneration], ["False", c.reason, 2]);
      assert.deepEqual([cond(obj, "Stalled").status, cond(obj, "Stalled").reason, cond(obj, "Stalled").observedGeneration], ["True", c.reason, 2]);
      assert.equal(cond(obj, "Stalled").message, cond(obj, "Ready").message);

      if (c.kind === "ServiceIdentity") await kube.delete(resourcePath(Resources.serviceIdentities, ns, "other"));
      await kube.patch(resourcePath({ RuntimeRule: Resources.runtimeRules, APIPolicy: Resources.apiPolicies, ServiceIdentity: Resources.serviceIdentities }[c.kind], ns, name), "json", [
        { op: "replace", path: "/spec", value: c.good },
      ]);
      ({ obj } = await waitStatus(c.kind, name, "Current"));
      assert.equal(obj.metadata.generation, 3);
      assert.equal(cond(obj, "Ready").observedGeneration, 3);
      assert.equal(cond(obj, "Stalled"), undefined, `${c.kind}: Stalled is removed once Ready`);
    }
  });

  it("a ServiceIdentity waiting for its pods is InProgress (Reconciling), and Current once they come", async () => {
    ns = await newNamespace("kstatus-wait");
    await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `ksw-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}` } });
    await createObject(kube, tenet("ServiceIdentity", ns, "web", { selector: { matchLabels: { app: "web" } } }));
    let { obj } = await waitFor("Reconciling=True", async () => {
      const s = await statusOf("ServiceIdentity", "web");
      return cond(s.obj, "Reconciling")?.status === "True" ? s : undefined;
    }, 30_000, 200);
    assert.equal((await kstatus(obj))[0].status, "InProgress");
    assert.equal(cond(obj, "Reconciling").reason, "NoMatchingPods");
    assert.equal(cond(obj, "Stalled"), undefined);
    await kube.create(resourcePath(Resources.pods, ns), pod("web-0", { app: "web" }));
    ({ obj } = await waitStatus("ServiceIdentity", "web", "Current"));
    assert.equal(cond(obj, "Reconciling"), undefined);
  });
});
