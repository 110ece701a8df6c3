import { strict as assert } from "node:assert";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { SignJWT } from "jose";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { readCertIdentity } from "../../pki/certificate.ts";
import { verifyChain } from "../../pki/chain.ts";
import { svidViolations } from "../../pki/svid.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { httpsRequest, makeCSR } from "../harness/pki.ts";
import { createObject, eventsFor, getObject, pod, podToken, pruneRevocations, revokeSerials, storedRevocations, tenet } from "./helpers.ts";

const BUNDLE = resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle");
const CA_SECRET = resourcePath(Resources.secrets, "tenet-system", "tenet-ca");


async function bundle(kube: Kube): Promise<string> {
  return waitFor("the trust bundle ConfigMap", async () => (await kube.get(BUNDLE)).data?.["ca.crt"] as string);
}

/** The serving CA bundle: what verifies the operator's HTTPS. */
async function servingBundle(kube: Kube): Promise<string> {
  return waitFor("the serving CA bundle in the ConfigMap", async () => (await kube.get(BUNDLE)).data?.["operator-ca.crt"] as string);
}

describe("workload identity: CA, CSR endpoint, certificates (real API server, operator process)", function () {
  this.timeout(120_000);
  let kube: Kube;
  let ns: string;
  let operator: OperatorProcess;
  let trust: string;
  let serving: string;

  const post = (body: unknown, token?: string, extra: Record<string, string> = {}) =>
    httpsRequest(`https://127.0.0.1:${operator.securePort}/v1/certificates`, {
      method: "POST",
      ca: serving,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const spiffe = (sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

  async function startOperator(name: string, env: Record<string, string> = {}) {
    const p = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `${name}-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}`, ...env } });
    await p.waitForHTTPS();
    return p;
  }

  beforeEach(async () => {
    ({ kube } = await cluster());
    ns = await newNamespace("id", ["orders", "stranger"]);
    operator = await startOperator("op");
    trust = await bundle(kube);
    serving = await servingBundle(kube);
    await createObject(kube, tenet("ServiceIdentity", ns, "orders", { selector: { matchLabels: { app: "orders" } }, attributes: { team: "payments" }, certificate: { ttl: "1h", renewBefore: "20m", dnsNames: [`orders.${ns}.svc`] } }));
    const p = pod("orders-0", { app: "orders", "app.kubernetes.io/version": "1.4.2", tier: "backend" }, "orders", "ghcr.io/acme/orders@sha256:" + "a".repeat(64));
    (p.metadata as any).annotations = { "tenet.dev/commit": "9f1c2ab" };
    await kube.create(resourcePath(Resources.pods, ns), p);
    await kube.create(resourcePath(Resources.pods, ns), pod("stranger-0", { app: "nobody" }, "stranger"));
  });

  it("takes posture and image from what Tenet established, not from what the pod's creator wrote (issue 11 item 3)", async () => {
    const forged = pod("forger-0", { app: "orders", "tenet.dev/posture": "clean" }, "orders", "ghcr.io/acme/orders:1");
    (forged.spec.containers as any[]).push({ name: "tenet-helper", image: "evil.example/miner:1" });
    await kube.create(resourcePath(Resources.pods, ns), forged);
    const issue = async () => {
      const csr = await makeCSR({ uris: [spiffe("orders")] });
      const res = await post({ csr: csr.pem }, await podToken(kube, ns, "orders", "forger-0"));
      assert.equal(res.status, 200, res.body);
      return readCertIdentity(res.json.certificate).attributes;
    };
    const first = await issue();
    assert.equal(first.posture, "unscanned", "a posture label set at create time is not Tenet's");
    assert.equal(first.image, "ghcr.io/acme/orders:1,evil.example/miner:1", "a container named tenet-* is part of the workload");
    // Once Tenet's posture controller has written the label (a RuntimeRule selects the pod), it counts.
    await createObject(kube, tenet("RuntimeRule", ns, "baseline", { selector: { matchLabels: { app: "orders" } }, enforcement: "audit", podSecurity: { level: "baseline" } }));
    const written = await waitFor("posture written by Tenet", async () => {
      const p = await kube.get(resourcePath(Resources.pods, ns, "forger-0"));
      return p.metadata.managedFields?.some((m: any) => m.manager === "tenet-posture" && m.fieldsV1?.["f:metadata"]?.["f:labels"]?.["f:tenet.dev/posture"]) ? p : undefined;
    }, 20_000, 200);
    const established = await waitFor("the certificate to carry Tenet's posture", async () => {
      const a = await issue();
      return a.posture !== "unscanned" ? a : undefined;
    }, 20_000, 300);
    assert.equal(established.posture, written.metadata.labels["tenet.dev/posture"], "the posture Tenet evaluated");
  });

  it("issues a SPIFFE X509-SVID with identity attributes to a pod presenting its bound token", async () => {
    const token = await podToken(kube, ns, "orders", "orders-0");
    const csr = await makeCSR({ uris: [spiffe("orders")], dnsNames: [`orders.${ns}.svc`] });
    const res = await post({ csr: csr.pem }, token);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.spiffeID, spiffe("orders"));
    assert.deepEqual(svidViolations(res.json.certificate), []);
    assert.deepEqual(verifyChain(res.json.certificate, trust).ok, true);
    const id = readCertIdentity(res.json.certificate);
    assert.equal(id.spiffeID, spiffe("orders"));
    assert.deepEqual(id.dnsNames, [`orders.${ns}.svc`]);
    assert.equal(id.attributes["image.digest"], "sha256:" + "a".repeat(64));
    assert.equal(id.attributes.commit, "9f1c2ab");
    assert.equal(id.attributes.version, "1.4.2");
    assert.equal(id.attributes.tier, "backend");
    assert.equal(id.attributes.posture, "unscanned");
    assert.equal(id.attributes.team, "payments", "static attributes from the ServiceIdentity");
    const ttl = (id.notAfter.getTime() - Date.now()) / 1000;
    assert.ok(ttl > 3000 && ttl <= 3600, `TTL from the ServiceIdentity (1h), got ${ttl}s`);
    assert.ok(Date.parse(res.json.renewAfter) < id.notAfter.getTime() - 19 * 60_000, "renewAfter honours renewBefore");
    // The private key never left the "pod": the certificate holds the CSR's public key.
    const certKey = new crypto.X509Certificate(res.json.certificate).publicKey.export({ type: "spki", format: "der" });
    assert.deepEqual(Buffer.from(certKey), Buffer.from(await crypto.webcrypto.subtle.exportKey("spki", csr.keys.publicKey)));

    const si = await waitFor("issuance counted in status", async () => {
      const o = await getObject(kube, "ServiceIdentity", ns, "orders");
      return o.status?.certificatesIssued >= 1 ? o : undefined;
    });
    assert.ok(Date.parse(si.status.lastIssued) > Date.now() - 60_000);
    assert.equal(await operator.metricSum("tenet_ca_certificates_issued_total", `namespace="${ns}"`), 1);
  });

  it("serves its HTTPS with a certificate from the serving CA, which the workload CA does not verify (issue 11 item 2)", async () => {
    const peer = await new Promise<string>((resolve, reject) => {
      const sock = tls.connect({ host: "127.0.0.1", port: operator.securePort, ca: serving, servername: "tenet-operator.tenet-system.svc" }, () => {
        const der = sock.getPeerCertificate().raw;
        sock.end();
        resolve(`-----BEGIN CERTIFICATE-----\n${der.toString("base64")}\n-----END CERTIFICATE-----\n`);
      });
      sock.on("error", reject);
    });
    assert.equal(verifyChain(peer, serving).ok, true, "the serving certificate chains to the serving CA");
    assert.equal(verifyChain(peer, trust).ok, false, "and not to the workload CA");
    assert.equal(readCertIdentity(peer).spiffeID, "spiffe://cluster.local/ns/tenet-system/sa/tenet-operator");
    const secret = await kube.get(resourcePath(Resources.secrets, "tenet-system", "tenet-serving-ca"));
    assert.ok(secret.data["state.json"], "the serving CA is kept in its own Secret");
    await assert.rejects(httpsRequest(`https://127.0.0.1:${operator.securePort}/v1/bundle`, { ca: trust }), /certificate/i);
  });

  it("refuses a certificate for a ServiceIdentity that lists Tenet's own Service or another namespace's name, with a 4xx naming the field (issue 11 item 2)", async () => {
    for (const [i, name] of ["tenet-operator.tenet-system.svc", "billing.other.svc", "tenet-operator"].entries()) {
      await kube.create(resourcePath(Resources.pods, ns), pod(`impostor-${i}`, { app: `impostor-${i}` }, "orders"));
      await createObject(kube, tenet("ServiceIdentity", ns, `impostor-${i}`, { selector: { matchLabels: { app: `impostor-${i}` } }, certificate: { dnsNames: [`orders.${ns}.svc`, name] } }));
      const token = await podToken(kube, ns, "orders", `impostor-${i}`);
      const csr = (await makeCSR({ uris: [spiffe("orders")], dnsNames: [name] })).pem;
      const res = await waitFor(`the refusal for ${name}`, async () => {
        const r = await post({ csr }, token);
        return r.json?.error?.reason === "NoServiceIdentity" ? undefined : r; // the informer has not seen the ServiceIdentity yet
      });
      assert.equal(res.status, 422, res.body);
      assert.equal(res.json.error.reason, "DNSNameNotAllowed");
      assert.ok(res.json.error.message.includes(`spec.certificate.dnsNames[1] ${JSON.stringify(name)}`), res.json.error.message);
      assert.match(res.json.error.message, new RegExp(`<service>\\.${ns}\\.svc`));
    }
  });

  it("refuses every request it must refuse, with a status, a reason, an Event and a metric", async () => {
    const good = await podToken(kube, ns, "orders", "orders-0");
    const goodCSR = (await makeCSR({ uris: [spiffe("orders")] })).pem;
    const saKey = crypto.createPrivateKey(readFileSync(path.join(path.dirname((await cluster()).kubeconfig), "pki/sa.key")));
    const p = await kube.get(resourcePath(Resources.pods, ns, "orders-0"));
    const sa = await kube.get(resourcePath(Resources.serviceAccounts, ns, "orders"));
    const expired = await new SignJWT({
      "kubernetes.io": { namespace: ns, serviceaccount: { name: "orders", uid: sa.metadata.uid }, pod: { name: "orders-0", uid: p.metadata.uid } },
    })
      .setProtectedHeader({ alg: "RS256" })
      .setIssuer("https://kubernetes.default.svc.cluster.local")
      .setSubject(`system:serviceaccount:${ns}:orders`)
      .setAudience("tenet")
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setNotBefore(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(saKey);
    const forged = good.slice(0, -10) + (good.endsWith("AAAAAAAAAA") ? "BBBBBBBBBB" : "AAAAAAAAAA");
    const unbound = (await kube.create(resourcePath(Resources.serviceAccounts, ns, "orders", "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["tenet"], expirationSeconds: 600 } })).status.token;
    const tamperedCSR = await makeCSR({ uris: [spiffe("orders")] });
    const der = Buffer.from(tamperedCSR.der);
    der[der.length - 5] ^= 0xff;
    const tamperedPEM = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE REQUEST-----\n`;

    const cases: [string, () => Promise<{ status: number; json: any }>, number, string][] = [
      ["no token", async () => post({ csr: goodCSR }), 401, "MissingToken"],
      ["a token for another audience", async () => post({ csr: goodCSR }, await podToken(kube, ns, "orders", "orders-0", "vault")), 401, "TokenAudienceMismatch"],
      ["an expired token", async () => post({ csr: goodCSR }, expired), 401, "TokenExpired"],
      ["a forged token", async () => post({ csr: goodCSR }, forged), 401, "InvalidToken"],
      ["a token not bound to a pod", async () => post({ csr: goodCSR }, unbound), 401, "TokenNotBoundToPod"],
      ["a pod no ServiceIdentity selects", async () => post({ csr: goodCSR }, await podToken(kube, ns, "stranger", "stranger-0")), 403, "NoServiceIdentity"],
      ["a CSR asking for another workload's SPIFFE ID", async () => post({ csr: (await makeCSR({ uris: [spiffe("admin")] })).pem }, good), 403, "NameNotAllowed"],
      ["a CSR asking for a DNS name the identity does not list", async () => post({ csr: (await makeCSR({ dnsNames: ["bank.example.com"] })).pem }, good), 403, "NameNotAllowed"],
      ["a CSR whose signature does not verify", async () => post({ csr: tamperedPEM }, good), 400, "BadCSRSignature"],
      ["a weak RSA-1024 key", async () => post({ csr: (await makeCSR({ key: { kind: "rsa", bits: 1024 } })).pem }, good), 400, "WeakKey"],
      ["garbage instead of a CSR", async () => post({ csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----" }, good), 400, "MalformedCSR"],
      ["a body that is not JSON", async () => post("{not json", good), 400, "BadRequest"],
      ["a body over the size limit", async () => post({ csr: "A".repeat(100_000) }, good), 413, "BodyTooLarge"],
      ["a non-JSON content type", async () => post("csr", good, { "content-type": "text/plain" }), 415, "UnsupportedMediaType"],
    ];
    for (const [what, call, status, reason] of cases) {
      const res = await call();
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json?.error?.reason, reason, `${what}: ${JSON.stringify(res.json)}`);
      assert.ok(res.json.error.message.length > 10, `${what}: a message a person can act on`);
    }
    // Quarantined pods get nothing new.
    await kube.patch(resourcePath(Resources.pods, ns, "orders-0"), "merge", { metadata: { labels: { "tenet.dev/quarantined": "true" } } });
    const q = await waitFor("quarantine to be seen", async () => {
      const r = await post({ csr: goodCSR }, good);
      return r.status === 403 ? r : undefined;
    });
    assert.equal(q.json.error.reason, "Quarantined");

    assert.equal(await operator.metricSum("tenet_ca_rejections_total", 'reason="NameNotAllowed"'), 2);
    assert.equal(await operator.metricSum("tenet_ca_rejections_total", 'reason="TokenExpired"'), 1);
    const events = await eventsFor(kube, ns, "orders-0");
    assert.ok(events.some((e) => e.reason === "CertificateNameNotAllowed" && e.type === "Warning"), "the pod's Events say why");
    assert.ok(events.some((e) => e.reason === "CertificateQuarantined"));
    assert.equal(await operator.metricSum("tenet_ca_certificates_issued_total"), 0, "nothing was issued");
    assert.ok(operator.running);
  });

  it("keeps the same CA across restarts, and two replicas sign with the same CA", async () => {
    const secretBefore = await kube.get(CA_SECRET);
    await operator.kill("SIGTERM");
    const a = await startOperator("a");
    const b = await startOperator("b");
    assert.equal((await kube.get(CA_SECRET)).data["state.json"], secretBefore.data["state.json"], "the CA Secret is not regenerated");
    assert.equal(await bundle(kube), trust, "same trust bundle after a restart");
    const token = await podToken(kube, ns, "orders", "orders-0");
    const issuers = [];
    for (const replica of [a, b]) {
      operator = replica;
      const res = await post({ csr: (await makeCSR({ uris: [spiffe("orders")] })).pem }, token);
      assert.equal(res.status, 200, res.body);
      assert.equal(verifyChain(res.json.certificate, trust).ok, true);
      issuers.push(readCertIdentity(res.json.certificate).issuer);
    }
    assert.equal(issuers[0], issuers[1]);
  });

  it("rotates the CA without breaking trust: the new CA joins the bundle first, old certificates keep verifying", async () => {
    await operator.kill("SIGTERM");
    operator = await startOperator("rot", { TENET_CA_PROPAGATION_SECONDS: "3" });
    await waitFor("leadership", () => operator.isLeader);
    const token = await podToken(kube, ns, "orders", "orders-0");
    const issue = async () => {
      const res = await post({ csr: (await makeCSR({ uris: [spiffe("orders")] })).pem }, token);
      assert.equal(res.status, 200, res.body);
      return res.json.certificate as string;
    };
    const oldCert = await issue();
    const oldTrust = trust;
    await kube.patch(CA_SECRET, "merge", { metadata: { annotations: { "tenet.dev/rotate": `test-${Date.now()}` } } });
    const twoCAs = await waitFor("the new CA in the bundle", async () => {
      const b = (await kube.get(BUNDLE)).data["ca.crt"] as string;
      return (b.match(/BEGIN CERTIFICATE/g) ?? []).length === 2 ? b : undefined;
    });
    trust = twoCAs;
    // Until the new CA activates, certificates still come from the old one.
    assert.equal(verifyChain(await issue(), oldTrust).ok, true, "the pending CA does not sign yet");
    const fresh = await waitFor("a certificate from the new CA", async () => {
      const c = await issue();
      return verifyChain(c, oldTrust).ok ? undefined : c;
    }, 20_000);
    assert.equal(verifyChain(fresh, twoCAs).ok, true, "new certificates verify against the bundle");
    assert.equal(verifyChain(oldCert, twoCAs).ok, true, "old certificates still verify during the overlap");
    const events = await eventsFor(kube, "tenet-system", "tenet-ca");
    assert.ok(events.some((e) => e.reason === "CARotationStarted"));
    assert.ok(events.some((e) => e.reason === "CARotated"));
  });

  it("stops signing on a malformed CA Secret, says why, never replaces it, and resumes when it is repaired", async () => {
    const token = await podToken(kube, ns, "orders", "orders-0");
    const original = await kube.get(CA_SECRET);
    await kube.patch(CA_SECRET, "merge", { data: { "state.json": Buffer.from("{ broken").toString("base64") } });
    const refused = await waitFor("signing to stop", async () => {
      const r = await post({ csr: (await makeCSR({ uris: [spiffe("orders")] })).pem }, token);
      return r.status === 503 ? r : undefined;
    });
    assert.equal(refused.json.error.reason, "CAUnavailable");
    assert.match(refused.json.error.message, /Secret tenet-system\/tenet-ca is unusable: "state.json" is not valid JSON/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(Buffer.from((await kube.get(CA_SECRET)).data["state.json"], "base64").toString(), "{ broken", "the Secret was left for a person to repair");
    const events = await eventsFor(kube, "tenet-system", "tenet-ca");
    assert.ok(events.some((e) => e.reason === "CAInvalid" && e.type === "Warning"));
    await kube.patch(CA_SECRET, "merge", { data: { "state.json": original.data["state.json"] } });
    await waitFor("signing to resume", async () => (await post({ csr: (await makeCSR({ uris: [spiffe("orders")] })).pem }, token)).status === 200);
  });

  it("serves the revocation list to pods only, with an ETag, picks up new entries, and prunes expired ones", async () => {
    const url = `https://127.0.0.1:${operator.securePort}/v1/revocations`;
    const token = await podToken(kube, ns, "orders", "orders-0");
    const auth = { authorization: `Bearer ${token}` };
    // Hostile callers: no token, a token for another audience, garbage, a malformed since.
    assert.equal((await httpsRequest(url, { ca: serving })).status, 401, "no token");
    assert.equal((await httpsRequest(url, { ca: serving, headers: { authorization: `Bearer ${await podToken(kube, ns, "orders", "orders-0", "other")}` } })).status, 401, "a token for another audience");
    assert.equal((await httpsRequest(url, { ca: serving, headers: { authorization: "Bearer abc.def.ghi" } })).status, 401, "a forged token");
    const bad = await httpsRequest(`${url}?since=1..2`, { ca: serving, headers: auth });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.reason, "BadSince");
    const first = await httpsRequest(url, { ca: serving, headers: auth });
    assert.equal(first.status, 200);
    const etag = first.headers.etag as string;
    assert.equal((await httpsRequest(url, { ca: serving, headers: { ...auth, "if-none-match": etag } })).status, 304);
    await revokeSerials(kube, [
      { serial: "0abc", notAfter: new Date(Date.now() + 3600_000).toISOString(), reason: "Quarantined" },
      { serial: "0def", notAfter: new Date(Date.now() - 1000).toISOString(), reason: "Quarantined" },
    ]);
    const updated = await waitFor("the new list to be served", async () => {
      const r = await httpsRequest(url, { ca: serving, headers: { ...auth, "if-none-match": etag } });
      return r.status === 200 ? r : undefined;
    });
    assert.notEqual(updated.headers.etag, etag);
    assert.ok(updated.json.serials.includes("abc"));
    // A restarted leader prunes what has expired.
    await operator.kill("SIGTERM");
    operator = await startOperator("prune");
    await waitFor("expired entry pruned", async () => {
      const stored = await storedRevocations(kube);
      return stored.has("abc") && !stored.has("def");
    });
  });

  it("holds and serves 10,000 revoked certificates, and a delta fetch returns only what changed", async function () {
    this.timeout(240_000);
    const url = `https://127.0.0.1:${operator.securePort}/v1/revocations`;
    const auth = { authorization: `Bearer ${await podToken(kube, ns, "orders", "orders-0")}` };
    const tag = crypto.randomBytes(4).toString("hex");
    const serialOf = (i: number) => `${tag}${crypto.createHash("sha256").update(`${tag}/${i}`).digest("hex").slice(0, 32)}`.replace(/^0+/, "");
    const notAfter = new Date(Date.now() + 2 * 3600_000).toISOString();
    const mass = Array.from({ length: 10_000 }, (_, i) => ({ serial: serialOf(i), notAfter, reason: "Quarantined" }));
    await revokeSerials(kube, mass);
    const stored = await storedRevocations(kube);
    for (const e of mass) assert.ok(stored.has(e.serial), `stored: ${e.serial}`);
    for (let i = 0; i < 16; i++) {
      const cm = await kube.get(resourcePath(Resources.configMaps, "tenet-system", `tenet-revocations-${i}`));
      assert.ok(JSON.stringify(cm).length < 512 * 1024, `shard ${i}: ${JSON.stringify(cm).length} bytes`);
    }
    const full = await waitFor("all 10,000 served", async () => {
      const r = await httpsRequest(url, { ca: serving, headers: auth });
      const served = new Set<string>(r.json.serials);
      return r.status === 200 && mass.every((e) => served.has(e.serial)) ? r : undefined;
    }, 60_000, 500);
    assert.equal(full.json.full, true);
    assert.ok(!/orders|stranger|Quarantined|\/pod/i.test(full.body), "no pod names nor reasons are served");
    const version = full.json.version as string;
    // Three more: the delta since the version the enforcer holds carries exactly them.
    const more = [0, 1, 2].map((i) => ({ serial: serialOf(20_000 + i), notAfter, reason: "Quarantined" }));
    await revokeSerials(kube, more);
    const delta = await waitFor("the delta", async () => {
      const r = await httpsRequest(`${url}?since=${version}`, { ca: serving, headers: { ...auth, "if-none-match": `"${version}"` } });
      return r.status === 200 ? r : undefined;
    });
    assert.equal(delta.json.full, false);
    assert.deepEqual([...delta.json.added].sort(), more.map((e) => e.serial).sort());
    assert.deepEqual(delta.json.removed, []);
    assert.ok(delta.body.length < 1024, `a delta is small: ${delta.body.length} bytes`);
    assert.equal((await httpsRequest(`${url}?since=${delta.json.version}`, { ca: serving, headers: { ...auth, "if-none-match": `"${delta.json.version}"` } })).status, 304, "nothing changed since");
    // Cleanup (the list is shared by the tier): the mass entries expire; the delta says they left.
    await pruneRevocations(kube, new Date(Date.now() + 3 * 3600_000));
    const after = await waitFor("the removal delta", async () => {
      const r = await httpsRequest(`${url}?since=${delta.json.version}`, { ca: serving, headers: auth });
      return r.status === 200 && r.json.removed.length >= 10_003 ? r : undefined;
    }, 60_000, 500);
    assert.equal(after.json.full, false);
    assert.deepEqual(after.json.added, []);
  });
});
