import { strict as assert } from "node:assert";
import { resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace } from "../harness/controlplane.ts";

// What the later issues rely on: the local control plane is a real one.
describe("local control plane", function () {
  this.timeout(60_000);

  it("issues pod-bound service-account tokens for audience tenet and reviews them (TokenRequest + TokenReview)", async () => {
    const { kube } = await cluster();
    const ns = await newNamespace("cp", ["orders"]);
    const p = await kube.create(resourcePath(Resources.pods, ns), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "orders-0" },
      spec: { serviceAccountName: "orders", containers: [{ name: "app", image: "ghcr.io/acme/orders:1" }] },
    });
    const tr = await kube.create(resourcePath(Resources.serviceAccounts, ns, "orders", "token"), {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { audiences: ["tenet"], expirationSeconds: 600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "orders-0", uid: p.metadata.uid } },
    });
    const review = await kube.create("/apis/authentication.k8s.io/v1/tokenreviews", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token: tr.status.token, audiences: ["tenet"] },
    });
    assert.equal(review.status.authenticated, true);
    assert.equal(review.status.user.username, `system:serviceaccount:${ns}:orders`);
    assert.deepEqual(review.status.user.extra["authentication.kubernetes.io/pod-name"], ["orders-0"]);

    const wrongAudience = await kube.create("/apis/authentication.k8s.io/v1/tokenreviews", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token: tr.status.token, audiences: ["someone-else"] },
    });
    assert.notEqual(wrongAudience.status.authenticated, true);
    assert.match(wrongAudience.status.error, /audience/);
  });

  it("enforces RBAC: the operator's ServiceAccount cannot read Secrets it was not granted", async () => {
    const { kube } = await cluster();
    const review = await kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: { user: "system:serviceaccount:tenet-system:tenet-operator", groups: ["system:serviceaccounts"], resourceAttributes: { verb: "list", resource: "secrets" } },
    });
    assert.equal(review.status.allowed, false);
  });
});
