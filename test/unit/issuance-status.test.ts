// ServiceIdentity status.certificatesIssued: batched increments written with a resourceVersion
// guard, from the informer's copy when it is current (one PATCH, no GET), from a fresh read when
// it lags (a conflict), never losing or doubling an increment.
import { strict as assert } from "node:assert";
import { KubeError } from "../../common/kube.ts";
import { createLogger } from "../../common/logger.ts";
import { IssuanceStatus } from "../../operator/ca/issuance-status.ts";

const PATH = "/apis/tenet.dev/v1alpha1/namespaces/shop/serviceidentities/orders";

/** One ServiceIdentity behind a resourceVersion-checking API. */
function fakeKube() {
  const calls: string[] = [];
  let obj = { metadata: { name: "orders", namespace: "shop", resourceVersion: "1" }, status: { certificatesIssued: 0 } as { certificatesIssued: number; lastIssued?: string } };
  const kube: any = {
    get current() {
      return obj;
    },
    calls,
    async get(p: string) {
      calls.push(`GET ${p}`);
      if (p !== PATH) throw new KubeError(404, "NotFound", p);
      return structuredClone(obj);
    },
    async patch(p: string, _type: string, body: any) {
      calls.push(`PATCH ${p}`);
      if (body.metadata.resourceVersion !== obj.metadata.resourceVersion) throw new KubeError(409, "Conflict", "the object has been modified");
      obj = { metadata: { ...obj.metadata, resourceVersion: String(Number(obj.metadata.resourceVersion) + 1) }, status: { ...obj.status, ...body.status } };
      return structuredClone(obj);
    },
  };
  return kube;
}

describe("IssuanceStatus (ServiceIdentity certificatesIssued)", () => {
  const log = createLogger("test", { level: "silent" });
  const at = new Date("2026-12-02T03:00:00.123Z");

  it("writes from the informer's current copy with one PATCH and no GET", async () => {
    const kube = fakeKube();
    const status = new IssuanceStatus(kube, log, () => structuredClone(kube.current), 60_000);
    for (let i = 0; i < 3; i++) status.record("shop", "orders", at);
    await status.flush();
    assert.deepEqual(kube.calls, [`PATCH ${PATH}/status`]);
    assert.equal(kube.current.status.certificatesIssued, 3);
    assert.equal(kube.current.status.lastIssued, "2026-12-02T03:00:00Z");
    await status.stop();
  });

  it("reads the object again when the cached copy lags, and loses no increment", async () => {
    const kube = fakeKube();
    const stale = structuredClone(kube.current); // never updated: the informer is behind every write
    const status = new IssuanceStatus(kube, log, () => structuredClone(stale), 60_000);
    status.record("shop", "orders", at);
    await status.flush();
    status.record("shop", "orders", at);
    status.record("shop", "orders", at);
    await status.flush();
    assert.equal(kube.current.status.certificatesIssued, 3, "1 + 2, each counted once");
    assert.deepEqual(kube.calls, [`PATCH ${PATH}/status`, `PATCH ${PATH}/status`, `GET ${PATH}`, `PATCH ${PATH}/status`]);
    await status.stop();
  });

  it("drops the count of a ServiceIdentity that is gone, without retrying forever", async () => {
    const kube = fakeKube();
    const status = new IssuanceStatus(kube, log, () => undefined, 60_000);
    status.record("shop", "deleted", at);
    await status.flush();
    assert.deepEqual(kube.calls, ["GET /apis/tenet.dev/v1alpha1/namespaces/shop/serviceidentities/deleted"]);
    await status.stop();
    assert.equal(kube.calls.length, 1);
  });
});
