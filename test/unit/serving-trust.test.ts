// Issue 11 item 2: tenants cannot obtain a certificate for Tenet's own name. ServiceIdentity DNS
// names are limited to the namespace's own Services (refused at issuance); the operator's serving
// certificate comes from a serving CA of its own; the enforcer's operator client trusts only that.
import { strict as assert } from "node:assert";
import { createCA } from "../../operator/ca/keypair.ts";
import { issueForWorkload, SignRejection } from "../../operator/ca/issuer.ts";
import { loadAuthorities, planAuthorities, defaultCAPolicy } from "../../operator/ca/authorities.ts";
import { dnsNameProblem } from "../../operator/ca/dns-names.ts";
import { makeCSR } from "../harness/pki.ts";

const scope = { namespace: "shop", tenetNamespace: "tenet-system", clusterDomain: "cluster.local" };

function issuerDeps(dnsNames: string[]) {
  const pod = { metadata: { name: "orders-0", namespace: "shop", uid: "uid-1", resourceVersion: "1", labels: { app: "orders" } }, spec: { serviceAccountName: "orders", containers: [{ name: "app", image: "orders:1" }] }, status: {} };
  const si = { apiVersion: "tenet.dev/v1alpha1", kind: "ServiceIdentity", metadata: { name: "orders", namespace: "shop" }, spec: { selector: { matchLabels: { app: "orders" } }, certificate: { dnsNames } } };
  const kube: any = {
    async create() {
      return { status: { authenticated: true, audiences: ["tenet"], user: { username: "system:serviceaccount:shop:orders", extra: { "authentication.kubernetes.io/pod-name": ["orders-0"], "authentication.kubernetes.io/pod-uid": ["uid-1"] } } } };
    },
  };
  const { state } = planAuthorities(undefined, new Date(), defaultCAPolicy);
  const authorities = loadAuthorities(state);
  return {
    kube,
    pods: { get: (k: string) => (k === "shop/orders-0" ? pod : undefined) } as any,
    identities: { listNamespace: (ns: string) => (ns === "shop" ? [si] : []) } as any,
    authorities: () => authorities,
    caError: () => undefined,
    trustDomain: "cluster.local",
    maxTTLSeconds: 86_400,
    tenetNamespace: "tenet-system",
    clusterDomain: "cluster.local",
  };
}

describe("serving trust vs workload trust (issue 11 item 2)", () => {
  describe("ServiceIdentity DNS names: only the namespace's own Services", () => {
    for (const name of ["tenet-operator.tenet-system.svc", "tenet-operator.tenet-system.svc.cluster.local", "tenet-operator.tenet-system", "tenet-operator", "*.svc", "*.shop.svc", "*.tenet-system.svc", "billing.other.svc", "billing.other", "example.com", "orders.shop.svc.evil.example"]) {
      it(`refuses a ServiceIdentity listing ${name} at issuance, with a 4xx naming the field and the fix`, async () => {
        const token = `tok-${Math.random()}`;
        const deps = issuerDeps(["orders.shop.svc", name]);
        const { pem: csr } = await makeCSR({ uris: ["spiffe://cluster.local/ns/shop/sa/orders"] });
        await assert.rejects(issueForWorkload(token, csr, deps), (err: unknown) => {
          assert.ok(err instanceof SignRejection, String(err));
          assert.ok(err.status >= 400 && err.status < 500, `status ${err.status}`);
          assert.equal(err.reason, "DNSNameNotAllowed");
          assert.match(err.message, /spec\.certificate\.dnsNames\[1\]/);
          assert.ok(err.message.includes(JSON.stringify(name)), err.message);
          assert.match(err.message, /<service>\.shop\.svc/);
          return true;
        });
      });
    }
    it("still issues for the namespace's own Service names, in all four forms", async () => {
      const names = ["orders", "orders.shop", "orders.shop.svc", "orders.shop.svc.cluster.local"];
      const deps = issuerDeps(names);
      const { pem: csr } = await makeCSR({ uris: ["spiffe://cluster.local/ns/shop/sa/orders"] });
      const issued = await issueForWorkload(`tok-${Math.random()}`, csr, deps);
      assert.match(issued.certificate, /BEGIN CERTIFICATE/);
    });
    it("lets only Tenet's own namespace use the operator's Service name", () => {
      assert.equal(dnsNameProblem("tenet-operator.tenet-system.svc", { ...scope, namespace: "tenet-system" }), undefined);
      assert.match(dnsNameProblem("tenet-operator", scope)!, /Tenet's own Service/);
      assert.match(dnsNameProblem("TENET-OPERATOR.tenet-system.svc.", scope)!, /namespace tenet-system/);
    });
  });
});
void createCA;
