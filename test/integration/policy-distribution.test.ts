import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { compilePolicy } from "../../policy/authz.ts";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { httpsRequest } from "../harness/pki.ts";
import { createObject, getObject, patchSpec, pod, podToken, tenet } from "./helpers.ts";

const BUNDLE = resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle");


const ordersSpec = (rules: unknown[] = [{ name: "frontend-reads", from: [{ namespaces: ["shop"] }], to: [{ api: "orders", scopes: ["read"] }] }]) => ({
  selector: { matchLabels: { app: "orders" } },
  apis: [{ name: "orders", paths: ["/orders/**"], methods: { GET: "read", POST: "create" } }],
  rules,
});

describe("APIPolicy distribution: GET /v1/policy (real API server, operator process)", function () {
  this.timeout(120_000);
  let kube: Kube;
  let ns: string;
  let operator: OperatorProcess;
  let trust: string;

  const get = (token?: string, headers: Record<string, string> = {}) =>
    httpsRequest(`https://127.0.0.1:${operator.securePort}/v1/policy`, { ca: trust, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });

  beforeEach(async () => {
    ({ kube } = await cluster());
    ns = await newNamespace("pol", ["orders"]);
    operator = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `op-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}` } });
    await operator.waitForHTTPS();
    trust = await waitFor("the trust bundle ConfigMap", async () => (await kube.get(BUNDLE)).data?.["operator-ca.crt"] as string);
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }, "orders"));
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-1", { app: "orders" }, "orders"));
    await kube.create(resourcePath(Resources.pods, ns), pod("other-0", { app: "other" }, "orders"));
  });

  it("serves a pod its document with an ETag, 304 on If-None-Match, and a new version after an APIPolicy change", async () => {
    await createObject(kube, tenet("APIPolicy", ns, "orders", ordersSpec()));
    const token = await podToken(kube, ns, "orders", "orders-0");
    const first = await waitFor("the policy in the document", async () => {
      const r = await get(token);
      return r.status === 200 && r.json.policies.length === 1 ? r : undefined;
    });
    assert.match(first.json.version, /^[0-9a-f]{16}$/);
    // One ETag for the policy and the mesh document served with it.
    assert.equal(first.headers.etag, `"${first.json.version}.${first.json.mesh.version}"`);
    assert.deepEqual(first.json.policies.map((p: any) => `${p.namespace}/${p.name}`), [`${ns}/orders`]);
    assert.equal(first.json.policies[0].spec.mode, "enforce", "the spec as stored, defaults applied");

    const cached = await get(token, { "if-none-match": first.headers.etag as string });
    assert.equal(cached.status, 304);
    assert.equal(cached.body, "");

    await patchSpec(kube, "APIPolicy", ns, "orders", { mode: "audit" });
    const changed = await waitFor("a new document version", async () => {
      const r = await get(token, { "if-none-match": first.headers.etag as string });
      return r.status === 200 ? r : undefined;
    });
    assert.notEqual(changed.json.version, first.json.version);
    assert.equal(changed.json.policies[0].spec.mode, "audit");

    // A pod no policy selects gets the empty document (its enforcer forwards, "Unprotected").
    const other = await get(await podToken(kube, ns, "orders", "other-0"));
    assert.equal(other.status, 200);
    assert.deepEqual({ version: other.json.version, policies: other.json.policies }, { version: "empty", policies: [] });
    // The mesh part: this pod's defaults (no ServiceIdentity sets them) and no meshed destination (no pod runs).
    assert.deepEqual({ inbound: other.json.mesh.inbound, egress: other.json.mesh.egress, services: other.json.mesh.services }, { inbound: "strict", egress: "allow", services: {} });
  });

  it("refuses a missing, foreign-audience or forged token with 401, and a token for a deleted pod with 403", async () => {
    const missing = await get();
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.reason, "MissingToken");

    const wrongAudience = await get(await podToken(kube, ns, "orders", "orders-0", "api"));
    assert.equal(wrongAudience.status, 401);
    assert.equal(wrongAudience.json.error.reason, "TokenAudienceMismatch");

    const good = await podToken(kube, ns, "orders", "orders-0");
    const forged = await get(good.slice(0, -10) + (good.endsWith("AAAAAAAAAA") ? "BBBBBBBBBB" : "AAAAAAAAAA"));
    assert.equal(forged.status, 401);
    assert.equal(forged.json.error.reason, "InvalidToken");
    assert.ok(!forged.body.includes(good.split(".")[1]), "the error never echoes the token");

    const unbound = (await kube.create(resourcePath(Resources.serviceAccounts, ns, "orders", "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["tenet"], expirationSeconds: 600 } })).status.token;
    const notBound = await get(unbound);
    assert.equal(notBound.status, 401);
    assert.equal(notBound.json.error.reason, "TokenNotBoundToPod");

    const doomed = await podToken(kube, ns, "orders", "orders-1");
    await kube.delete(resourcePath(Resources.pods, ns, "orders-1"), { gracePeriodSeconds: "0" });
    await waitFor("the pod to be gone", async () => kube.get(resourcePath(Resources.pods, ns, "orders-1")).then(() => false, () => true));
    const gone = await get(doomed);
    // A token bound to a deleted pod is refused by TokenReview itself (401) or, if the API server
    // still accepts it, by the pod lookup (403 PodNotFound): never a document.
    assert.ok((gone.status === 401 && gone.json.error.reason === "InvalidToken") || (gone.status === 403 && gone.json.error.reason === "PodNotFound"), gone.body);
  });

  it("records the version each enforcer runs on its pod and counts workloads and enforcers in APIPolicy status", async () => {
    await createObject(kube, tenet("APIPolicy", ns, "orders", ordersSpec()));
    const counted = await waitFor("workloads counted", async () => {
      const o = await getObject(kube, "APIPolicy", ns, "orders");
      return o.status?.workloads === 2 && o.status?.compiledVersion ? o : undefined;
    });
    assert.match(counted.status.compiledVersion, /^[0-9a-f]{16}$/);
    assert.equal(counted.status.enforcers, 0, "no enforcer has fetched yet");

    const token = await podToken(kube, ns, "orders", "orders-0");
    const doc = await get(token);
    assert.equal(doc.status, 200);
    const p = await waitFor("the version annotation", async () => {
      const o = await kube.get(resourcePath(Resources.pods, ns, "orders-0"));
      return o.metadata.annotations?.["tenet.dev/policy-version"] === doc.json.version ? o : undefined;
    });
    assert.ok(p.metadata.managedFields.some((f: any) => f.manager === "tenet-policy" && f.operation === "Apply"), "written by server-side apply as tenet-policy");
    await waitFor("one enforcer counted", async () => (await getObject(kube, "APIPolicy", ns, "orders")).status?.enforcers === 1);

    // The spec changes: the recorded version is stale until the enforcer fetches again.
    await patchSpec(kube, "APIPolicy", ns, "orders", ordersSpec([{ name: "frontend-writes", from: [{ namespaces: ["shop"] }], to: [{ api: "orders" }] }]));
    const stale = await waitFor("a new compiled version with the stale enforcer not counted", async () => {
      const o = await getObject(kube, "APIPolicy", ns, "orders");
      return o.status?.compiledVersion !== counted.status.compiledVersion && o.status?.enforcers === 0 ? o : undefined;
    });
    const again = await get(token, { "if-none-match": doc.headers.etag as string });
    assert.equal(again.status, 200);
    await waitFor("the enforcer counted again", async () => (await getObject(kube, "APIPolicy", ns, "orders")).status?.enforcers === 1);
    assert.equal((await getObject(kube, "APIPolicy", ns, "orders")).status.compiledVersion, stale.status.compiledVersion);
    const served = operator.logs.filter((l) => l.component === "policy");
    assert.ok(served.length > 0 && served.every((l) => !JSON.stringify(l).includes(token)), "policy logs never carry the token");
  });

  it("fetches a rule's jwksURI in the operator and ships the keys in the document", async () => {
    // A real HTTPS issuer on loopback, trusted by the operator process through NODE_EXTRA_CA_CERTS.
    const dir = mkdtempSync(path.join(os.tmpdir(), "tenet-jwks-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")], { stdio: "ignore" });
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
    let fetches = 0;
    const issuer = https.createServer({ key: readFileSync(path.join(dir, "key.pem")), cert: readFileSync(path.join(dir, "cert.pem")) }, (_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(jwks);
    });
    await new Promise<void>((r) => issuer.listen(0, "127.0.0.1", r));
    try {
      await operator.kill();
      operator = await OperatorProcess.start({
        kubeconfig: await operatorKubeconfig(),
        namespace: "tenet-system",
        identity: `op2-${ns}`,
        // Only hosts an administrator allows are fetched (SSRF): this issuer, nothing else.
        env: { TENET_LEASE_NAME: `lease-${ns}`, NODE_EXTRA_CA_CERTS: path.join(dir, "cert.pem"), TENET_JWKS_ALLOWED_HOSTS: `127.0.0.1:${(issuer.address() as { port: number }).port}` },
      });
      await operator.waitForHTTPS();
      const uri = `https://127.0.0.1:${(issuer.address() as { port: number }).port}/jwks.json`;
      await createObject(
        kube,
        tenet("APIPolicy", ns, "orders", ordersSpec([{ name: "with-token", from: [{ namespaces: [ns] }], jwt: { issuer: "https://idp.example.com", audiences: ["orders"], jwksURI: uri }, to: [{ api: "orders" }] }])),
      );
      const token = await podToken(kube, ns, "orders", "orders-0");
      const doc = await waitFor("the keys in the document", async () => {
        const r = await get(token);
        return r.status === 200 && r.json.jwks?.[uri] ? r.json : undefined;
      });
      assert.deepEqual(JSON.parse(doc.jwks[uri]).keys[0].kid, "k1");
      assert.ok(fetches >= 1);
      // The enforcer's side: the document alone verifies a token, no fetch of its own.
      const compiled = compilePolicy(doc, { fetch: async () => Promise.reject(new Error("the enforcer must not fetch")) });
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer("https://idp.example.com").setAudience("orders").setExpirationTime("5m").sign(privateKey);
      const d = await compiled.authorize({ method: "GET", rawPath: "/orders/1", caller: { spiffeID: `spiffe://cluster.local/ns/${ns}/sa/web`, attributes: {} }, authorization: `Bearer ${jwt}` });
      assert.equal(d.decision, "allow", d.message);
      const fetched = await waitFor("JWKSFetched=True", async () => (await getObject(kube, "APIPolicy", ns, "orders")).status?.conditions?.find((c: any) => c.type === "JWKSFetched" && c.status === "True"));
      assert.equal(fetched.reason, "JWKSFetched");

      // A URL on a host nobody allowed (here the cloud metadata address) is never fetched, and the status says why.
      const blocked = "https://169.254.169.254/latest/meta-data/keys";
      await createObject(kube, tenet("APIPolicy", ns, "blocked", ordersSpec([{ name: "ssrf", jwt: { issuer: "https://idp.example.com", audiences: ["orders"], jwksURI: blocked }, to: [{ api: "orders" }] }])));
      const cond = await waitFor("JWKSFetched=False", async () => (await getObject(kube, "APIPolicy", ns, "blocked")).status?.conditions?.find((c: any) => c.type === "JWKSFetched" && c.status === "False"));
      assert.equal(cond.reason, "JWKSHostNotAllowed");
      assert.match(cond.message, /TENET_JWKS_ALLOWED_HOSTS/);
    } finally {
      issuer.close();
    }
  });
});
