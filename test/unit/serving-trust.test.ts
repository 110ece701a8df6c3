// Issue 11 item 2: tenants cannot obtain a certificate for Tenet's own name. ServiceIdentity DNS
// names are limited to the namespace's own Services (refused at issuance); the operator's serving
// certificate comes from a serving CA of its own; the enforcer's operator client trusts only that.
import { strict as assert } from "node:assert";
import https from "node:https";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { KubeError } from "../../common/kube.ts";
import { createLogger } from "../../common/logger.ts";
import { enforcerConfigFromEnv } from "../../enforcer/config.ts";
import { OperatorClient, OperatorTrust } from "../../enforcer/operator-client.ts";
import { caReconciler } from "../../operator/ca/controller.ts";
import { createIdentity } from "../../operator/ca/index.ts";
import { issueServingCert } from "../../operator/ca/serving-cert.ts";
import { configFromEnv } from "../../operator/config.ts";
import { RuntimeMetrics } from "../../operator/runtime/metrics.ts";
import { servingIdentity } from "../../operator/server/index.ts";
import { verifyChain } from "../../pki/chain.ts";
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

/** Just enough of the API server for the CA stores: Secrets by path, a list and a watch that waits. */
function fakeKube() {
  const objects = new Map<string, any>();
  const applied: { path: string; body: any }[] = [];
  const notFound = (p: string) => new KubeError(404, "NotFound", `${p} not found`);
  const kube: any = {
    objects,
    applied,
    async get(p: string) {
      if (!objects.has(p)) throw notFound(p);
      return structuredClone(objects.get(p));
    },
    async create(p: string, body: any) {
      const full = `${p}/${body.metadata.name}`;
      if (objects.has(full)) throw new KubeError(409, "AlreadyExists", full);
      const obj = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: "1" } };
      objects.set(full, obj);
      return structuredClone(obj);
    },
    async replace(p: string, body: any) {
      const obj = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(Number(objects.get(p)?.metadata.resourceVersion ?? 0) + 1) } };
      objects.set(p, obj);
      return structuredClone(obj);
    },
    async listPages(p: string, q: { fieldSelector?: string } | undefined, onPage: (items: any[]) => void) {
      const l = await kube.list(p, q ?? {});
      onPage(l.items);
      return { resourceVersion: l.metadata.resourceVersion };
    },
    async list(p: string, q: { fieldSelector?: string } = {}) {
      const name = /metadata\.name=(.+)/.exec(q.fieldSelector ?? "")?.[1];
      return { items: [...objects].filter(([k]) => k.startsWith(`${p}/`) && (!name || k.endsWith(`/${name}`))).map(([, v]) => structuredClone(v)), metadata: { resourceVersion: "1" } };
    },
    watch: (_p: string, _q: unknown, _on: unknown, signal: AbortSignal, onOpen?: () => void) =>
      new Promise<void>((resolve) => {
        onOpen?.();
        signal.addEventListener("abort", () => resolve());
      }),
    async apply(p: string, body: any) {
      applied.push({ path: p, body });
      return body;
    },
  };
  return kube;
}

function operatorIdentity() {
  const kube = fakeKube();
  const cfg = configFromEnv({ TENET_NAMESPACE: "tenet-system" });
  const log = createLogger("test", { level: "silent" });
  const informer: any = { list: () => [], listNamespace: () => [], get: () => undefined, onChange: () => {} };
  const identity = createIdentity({ kube, cfg, log, metrics: new RuntimeMetrics(), events: { emit: async () => {} } as any, pods: informer, identities: informer });
  return { kube, cfg, log, identity };
}

describe("the operator's serving certificate comes from a serving CA of its own", () => {
  it("chains to the serving CA, not to the workload CA, which lives in another Secret with another key", async () => {
    const { kube, cfg, identity } = operatorIdentity();
    await identity.store.start();
    await identity.servingStore.start();
    try {
      const workload = identity.store.authorities!;
      const serving = identity.servingStore.authorities!;
      assert.ok(kube.objects.has("/api/v1/namespaces/tenet-system/secrets/tenet-ca"), "the workload CA Secret");
      assert.ok(kube.objects.has("/api/v1/namespaces/tenet-system/secrets/tenet-serving-ca"), "the serving CA Secret");
      assert.notEqual(serving.active.certPem, workload.active.certPem);
      assert.notEqual(serving.active.keyPem, workload.active.keyPem);
      const cert = identity.servingCertificates.issue(servingIdentity(cfg))!;
      assert.equal(verifyChain(cert.cert, serving.bundlePem).ok, true, "the serving certificate chains to the serving CA");
      assert.equal(verifyChain(cert.cert, workload.bundlePem).ok, false, "and not to the workload CA");
    } finally {
      identity.store.stop();
      identity.servingStore.stop();
    }
  });

  it("publishes the serving CA as operator-ca.crt next to the workload CA's ca.crt, each bundle holding only its own CAs", async () => {
    const { kube, log, identity } = operatorIdentity();
    await identity.store.start();
    await identity.servingStore.start();
    try {
      const reconcile = caReconciler({ kube, store: identity.store, servingStore: identity.servingStore, revocations: { prune: async () => {} } as any, fieldManager: "test" });
      await reconcile("bundle/shop", log);
      const cm = kube.applied.find((a: any) => a.path.endsWith("/namespaces/shop/configmaps/tenet-trust-bundle"))?.body;
      assert.ok(cm, "the trust bundle ConfigMap is applied");
      assert.equal(cm.data["ca.crt"], identity.store.authorities!.bundlePem);
      assert.equal(cm.data["operator-ca.crt"], identity.servingStore.authorities!.bundlePem);
      assert.ok(!cm.data["ca.crt"].includes(identity.servingStore.authorities!.active.certPem.trim()), "peers never trust the serving CA");
    } finally {
      identity.store.stop();
      identity.servingStore.stop();
    }
  });
});

describe("the enforcer trusts for the operator only what serves the operator", () => {
  const operatorID = "spiffe://cluster.local/ns/tenet-system/sa/tenet-operator";
  const names = { dnsNames: ["tenet-operator.tenet-system.svc", "localhost"], ipAddresses: ["127.0.0.1"], ttlSeconds: 3600 };
  const newAuthorities = (cn: string) => loadAuthorities(planAuthorities(undefined, new Date(), { ...defaultCAPolicy, commonName: cn }).state);

  async function clientAgainst(serverCert: { key: string; cert: string }, workload: ReturnType<typeof newAuthorities>, serving: ReturnType<typeof newAuthorities>) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "tenet-serving-"));
    writeFileSync(path.join(dir, "ca.crt"), workload.bundlePem);
    writeFileSync(path.join(dir, "operator-ca.crt"), serving.bundlePem);
    writeFileSync(path.join(dir, "token"), "a-token");
    const server = https.createServer({ key: serverCert.key, cert: serverCert.cert }, (_req, res) => res.end("ok"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cfg = enforcerConfigFromEnv({ TENET_CA_ENDPOINT: url, TENET_BUNDLE_FILE: path.join(dir, "ca.crt"), TENET_TOKEN_FILE: path.join(dir, "token") });
    const trust = new OperatorTrust(cfg.operatorBundleFile);
    await trust.refresh();
    const client = new OperatorClient(() => trust.bundle, cfg.tokenFile);
    return { get: () => client.get(`${url}/v1/bundle`).finally(() => server.close()) };
  }

  it("refuses a certificate from the workload CA for the operator's DNS names and SPIFFE ID (what a tenant could have obtained)", async () => {
    const workload = newAuthorities("Tenet Workload CA");
    const serving = newAuthorities("Tenet Serving CA");
    const forged = issueServingCert(workload, { spiffeID: operatorID, ...names });
    const c = await clientAgainst(forged, workload, serving);
    await assert.rejects(c.get(), (err: Error) => {
      assert.match(err.message, /certificate|verify|issuer/i);
      return true;
    });
  });

  it("accepts the operator's certificate from the serving CA", async () => {
    const workload = newAuthorities("Tenet Workload CA");
    const serving = newAuthorities("Tenet Serving CA");
    const c = await clientAgainst(issueServingCert(serving, { spiffeID: operatorID, ...names }), workload, serving);
    const res = await c.get();
    assert.equal(res.status, 200);
    assert.equal(res.body, "ok");
  });

  it("refuses a serving-CA certificate that does not carry the operator's SPIFFE ID", async () => {
    const workload = newAuthorities("Tenet Workload CA");
    const serving = newAuthorities("Tenet Serving CA");
    const c = await clientAgainst(issueServingCert(serving, { spiffeID: "spiffe://cluster.local/ns/shop/sa/orders", ...names }), workload, serving);
    await assert.rejects(c.get(), /not the operator's/);
  });
});
