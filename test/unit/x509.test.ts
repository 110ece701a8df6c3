// The certificate core (pki/ and the CA's writers in operator/ca/: keypair.ts, leaf.ts): CSRs made by two independent tools
// (@peculiar/x509 on WebCrypto, and the openssl CLI) go in; what comes out is checked by
// independent readers too (openssl x509/verify, node's X509Certificate, @peculiar/asn1-*).
import "reflect-metadata";
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { AsnParser } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { createCA, loadCA } from "../../operator/ca/keypair.ts";
import { LeafRequestError, issueLeaf } from "../../operator/ca/leaf.ts";
import { CAError, type CAKeyPair } from "../../operator/ca/signing.ts";
import { readCertIdentity } from "../../pki/certificate.ts";
import { verifyChain } from "../../pki/chain.ts";
import { CSRError, parseCSR, type CSRRejection } from "../../pki/csr.ts";
import { ATTRIBUTES_OID } from "../../pki/oids.ts";
import { splitPEM } from "../../pki/pem.ts";
import { svidViolations } from "../../pki/svid.ts";
import { testSVIDs, type TestSVIDs } from "../harness/svids.ts";

x509.cryptoProvider.set(crypto.webcrypto as Crypto);

// Good and deliberately broken SVIDs (go-spiffe's testdata cases), generated for this run.
const svids = await testSVIDs();
const sample = (name: keyof TestSVIDs) => svids[name];
const ID = "spiffe://cluster.local/ns/shop/sa/orders";
const ATTRS = { tier: "backend", image: "ghcr.io/acme/orders@sha256:5d4a", posture: "clean", commit: "9f8e7d6", version: "1.14.2", "team.example.com/owner": "Zoë" };

let tmp: string;
const file = (name: string, content: string | Buffer) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
};
const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
const opensslText = (pem: string) => openssl("x509", "-noout", "-text", "-in", file(`cert-${crypto.randomUUID()}.pem`, pem));

type WebAlg = "P-256" | "P-384" | "RSA-2048" | "RSA-1024" | "Ed25519";
function webAlg(a: WebAlg) {
  if (a === "Ed25519") return { name: "Ed25519" };
  if (a.startsWith("RSA")) return { name: "RSASSA-PKCS1-v1_5", modulusLength: Number(a.slice(4)), publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  return { name: "ECDSA", namedCurve: a, hash: a === "P-384" ? "SHA-384" : "SHA-256" };
}

/** A CSR made the way a workload would, with @peculiar/x509 on WebCrypto. */
async function webCSR(opts: { alg?: WebAlg; uris?: string[]; dnsNames?: string[]; ips?: string[]; name?: string } = {}) {
  const alg = webAlg(opts.alg ?? "P-256");
  const keys = (await crypto.webcrypto.subtle.generateKey(alg as EcKeyGenParams, true, ["sign", "verify"])) as CryptoKeyPair;
  const names = [
    ...(opts.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(opts.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(opts.ips ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    name: opts.name,
    signingAlgorithm: alg,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return { pem: csr.toString("pem"), der: Buffer.from(csr.rawData), spki: Buffer.from(await crypto.webcrypto.subtle.exportKey("spki", keys.publicKey)) };
}

/** A key (node:crypto) and a CSR for it made by the openssl CLI. */
function opensslCSR(key: crypto.KeyObject, opts: { san?: string; digest?: string } = {}) {
  const keyFile = file(`key-${crypto.randomUUID()}.pem`, key.export({ type: "pkcs8", format: "pem" }) as string);
  const args = ["req", "-new", "-key", keyFile, "-subj", "/CN=workload"];
  if (opts.san) args.push("-addext", `subjectAltName=${opts.san}`);
  if (opts.digest) args.push(`-${opts.digest}`);
  return openssl(...args);
}

/** A self-signed certificate made by openssl with exactly the extensions given (for rule checks). */
function opensslCert(key: crypto.KeyObject, ext: string[], subj = "/O=test", extraArgs: string[] = []) {
  const cnf = file(`openssl-${crypto.randomUUID()}.cnf`, ["[req]", "distinguished_name = dn", "[dn]", "[ext]", ...ext, ""].join("\n"));
  const keyFile = file(`key-${crypto.randomUUID()}.pem`, key.export({ type: "pkcs8", format: "pem" }) as string);
  return openssl("req", "-x509", "-new", "-key", keyFile, "-subj", subj, "-days", "1", "-config", cnf, "-extensions", "ext", ...extraArgs);
}

const ecKey = (namedCurve = "P-256") => crypto.generateKeyPairSync("ec", { namedCurve });
const spkiOf = (k: crypto.KeyObject) => k.export({ type: "spki", format: "der" }) as Buffer;

function csrRejection(fn: () => unknown): { reason: CSRRejection; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CSRError, `expected a CSRError, got ${(err as Error)?.stack}`);
    return { reason: err.reason, message: err.message };
  }
  assert.fail("expected the CSR to be rejected");
}

describe("x509: the CA's certificate core", function () {
  this.timeout(60_000);
  let ca: CAKeyPair;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tenet-x509-"));
    ca = createCA({ commonName: "Tenet Workload CA", validitySeconds: 30 * 86_400 });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe("createCA and loadCA", () => {
    it("creates a self-signed P-256 CA that openssl reads as CA:TRUE pathlen 0 with keyCertSign and cRLSign", () => {
      const text = opensslText(ca.certPem);
      assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
      assert.match(text, /Subject Key Identifier/);
      assert.match(text, /ASN1 OID: prime256v1/);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.match(openssl("verify", "-CAfile", file("ca.pem", ca.certPem), file("ca-again.pem", ca.certPem)), /OK/);
      assert.equal(ca.serial, openssl("x509", "-noout", "-serial", "-in", file("ca-serial.pem", ca.certPem)).trim().replace("serial=", "").toLowerCase());
    });

    it("starts the CA five minutes early for clock skew and ends it after validitySeconds", () => {
      const now = new Date("2030-06-01T12:00:00.250Z");
      const c = createCA({ commonName: "skew", validitySeconds: 3600, now });
      assert.equal(c.notBefore.toISOString(), "2030-06-01T11:55:00.000Z");
      assert.equal(c.notAfter.toISOString(), "2030-06-01T13:00:00.000Z");
      assert.match(c.serial, /^[4-7][0-9a-f]{31}$/, "16 random bytes, positive, no padding");
    });

    it("loads what it created, with the same serial, subject, key id and validity", () => {
      const l = loadCA(ca.certPem, ca.keyPem);
      assert.deepEqual(
        { serial: l.serial, subject: l.subject, ski: l.subjectKeyId.toString("hex"), nb: l.notBefore, na: l.notAfter },
        { serial: ca.serial, subject: "CN=Tenet Workload CA", ski: ca.subjectKeyId.toString("hex"), nb: ca.notBefore, na: ca.notAfter },
      );
      assert.ok(l.certDer.equals(ca.certDer));
    });

    it("loads a CA that openssl made and issues leaves that chain to it", () => {
      const { privateKey } = ecKey("P-384");
      const pem = opensslCert(privateKey, ["basicConstraints = critical, CA:TRUE", "keyUsage = critical, keyCertSign, cRLSign", "subjectKeyIdentifier = hash"], "/O=Other Org/CN=Other CA");
      const other = loadCA(pem, privateKey.export({ type: "pkcs8", format: "pem" }) as string);
      assert.equal(other.subject, "O=Other Org, CN=Other CA");
      const leaf = issueLeaf(other, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 600 });
      assert.deepEqual(verifyChain(leaf.pem, pem), { ok: true, ca: other.serial });
      assert.match(openssl("verify", "-CAfile", file("other-ca.pem", pem), file("other-leaf.pem", leaf.pem)), /OK/);
      assert.match(opensslText(leaf.pem), /Signature Algorithm: ecdsa-with-SHA384/);
    });

    const leafKey = ecKey();
    const cases: [string, () => [string, string], RegExp][] = [
      ["refuses a certificate that is not PEM", () => ["garbage", ca.keyPem], /not PEM/],
      ["refuses a key that is not PEM", () => [ca.certPem, "garbage"], /CA key is not PEM/],
      ["refuses a PEM block that is not a certificate", () => [ca.keyPem, ca.keyPem], /not PEM: no -----BEGIN CERTIFICATE/],
      ["refuses a certificate whose DER is corrupt", () => [sample("corrupt-cert.pem"), ca.keyPem], /does not parse/],
      ["refuses a key that does not match the certificate", () => [ca.certPem, createCA({ commonName: "other", validitySeconds: 60 }).keyPem], /does not match/],
      [
        "refuses a leaf (cA=false) as a CA",
        () => [issueLeaf(ca, { publicKeyDer: spkiOf(leafKey.publicKey), spiffeID: ID, ttlSeconds: 60 }).pem, leafKey.privateKey.export({ type: "pkcs8", format: "pem" }) as string],
        /not a CA certificate/,
      ],
      [
        "refuses an expired CA",
        () => {
          const old = createCA({ commonName: "old", validitySeconds: 60, now: new Date("2020-01-01T00:00:00Z") });
          return [old.certPem, old.keyPem];
        },
        /expired at 2020-01-01T00:01:00.000Z/,
      ],
      [
        "refuses a CA key on a curve it cannot sign with (secp256k1)",
        () => {
          const { privateKey } = ecKey("secp256k1");
          return [opensslCert(privateKey, ["basicConstraints = critical, CA:TRUE", "keyUsage = critical, keyCertSign"]), privateKey.export({ type: "pkcs8", format: "pem" }) as string];
        },
        /unsupported CA key EC secp256k1/,
      ],
    ];
    for (const [name, input, expected] of cases) {
      it(name, () => {
        const [cert, key] = input();
        assert.throws(() => loadCA(cert, key), (err: Error) => err instanceof CAError && expected.test(err.message));
      });
    }

    it("checks expiry against the clock it is given", () => {
      assert.throws(() => loadCA(ca.certPem, ca.keyPem, { now: new Date(ca.notAfter.getTime() + 1000) }), /expired/);
      assert.equal(loadCA(ca.certPem, ca.keyPem, { now: ca.notBefore }).serial, ca.serial);
    });
  });

  describe("parseCSR", () => {
    it("reads a P-256 CSR from @peculiar/x509: key, URI, DNS and IP SANs", async () => {
      const c = await webCSR({ uris: [ID], dnsNames: ["orders.shop.svc", "orders"], ips: ["10.1.2.3", "2001:db8::1"] });
      const p = parseCSR(c.pem);
      assert.deepEqual(
        { keyType: p.keyType, curve: p.curve, keyBits: p.keyBits, uris: p.uris, dns: p.dnsNames, ips: p.ipAddresses, emails: p.emails, subject: p.subject },
        { keyType: "ec", curve: "P-256", keyBits: 256, uris: [ID], dns: ["orders.shop.svc", "orders"], ips: ["10.1.2.3", "2001:db8::1"], emails: [], subject: "" },
      );
      assert.ok(p.publicKeyDer.equals(c.spki), "the SPKI is the CSR's key");
    });

    it("takes DER as well as PEM, as a Buffer or a string", async () => {
      const c = await webCSR({ uris: [ID] });
      for (const input of [c.der, c.pem, Buffer.from(c.pem)]) assert.deepEqual(parseCSR(input).uris, [ID]);
    });

    const accepted: [string, () => Promise<string>, Partial<ReturnType<typeof parseCSR>>][] = [
      ["accepts a P-384 CSR", async () => (await webCSR({ alg: "P-384", uris: [ID] })).pem, { keyType: "ec", curve: "P-384", keyBits: 384 }],
      ["accepts an RSA-2048 CSR signed with SHA-256", async () => (await webCSR({ alg: "RSA-2048", uris: [ID] })).pem, { keyType: "rsa", keyBits: 2048 }],
      ["accepts an RSA-2048 CSR signed with SHA-384 by openssl", async () => opensslCSR(crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey, { san: `URI:${ID}`, digest: "sha384" }), { keyType: "rsa", keyBits: 2048 }],
      ["accepts an Ed25519 CSR made by openssl", async () => opensslCSR(crypto.generateKeyPairSync("ed25519").privateKey, { san: `URI:${ID}` }), { keyType: "ed25519" }],
      ["accepts an openssl CSR with a subject and an email SAN", async () => opensslCSR(ecKey().privateKey, { san: `URI:${ID},email:ops@example.com` }), { subject: "CN=workload", emails: ["ops@example.com"] }],
    ];
    for (const [name, make, expected] of accepted) {
      it(name, async () => {
        const p = parseCSR(await make());
        for (const [k, v] of Object.entries(expected)) assert.deepEqual(p[k as keyof typeof p], v, k);
      });
    }

    const rejected: [string, () => Promise<string | Buffer>, CSRRejection, RegExp][] = [
      ["rejects garbage", async () => "this is not a CSR", "MalformedCSR", /not PEM/],
      ["rejects random bytes", async () => crypto.randomBytes(300), "MalformedCSR", /not DER|does not parse|truncated|trailing/],
      ["rejects an empty body", async () => Buffer.alloc(0), "MalformedCSR", /empty/],
      ["rejects truncated DER", async () => (await webCSR({ uris: [ID] })).der.subarray(0, 150), "MalformedCSR", /truncated: it declares \d+ bytes, got 150/],
      ["rejects DER with trailing bytes", async () => Buffer.concat([(await webCSR({ uris: [ID] })).der, Buffer.from([0, 0])]), "MalformedCSR", /2 trailing bytes/],
      ["rejects a PEM block with the wrong label", async () => ca.certPem, "MalformedCSR", /labelled CERTIFICATE REQUEST, found "CERTIFICATE"/],
      ["rejects a PEM block without its END line", async () => (await webCSR()).pem.split("-----END")[0], "MalformedCSR", /no -----END CERTIFICATE REQUEST----- line/],
      ["rejects two PEM blocks", async () => (await webCSR()).pem + (await webCSR()).pem, "MalformedCSR", /one PEM block/],
      ["rejects a body over the size limit", async () => "-----BEGIN CERTIFICATE REQUEST-----\n" + "A".repeat(17_000) + "\n-----END CERTIFICATE REQUEST-----\n", "MalformedCSR", /the limit is 16384/],
      [
        "rejects a CSR whose signature has a flipped byte",
        async () => {
          const der = Buffer.from((await webCSR({ uris: [ID] })).der);
          der[der.length - 5] ^= 0x01; // inside the ECDSA signature's s value
          return der;
        },
        "BadCSRSignature",
        /does not verify/,
      ],
      [
        "rejects a CSR whose signed content was changed after signing",
        async () => {
          const der = Buffer.from((await webCSR({ uris: ["spiffe://cluster.local/ns/shop/sa/orderz"] })).der);
          const at = der.indexOf("orderz");
          der[at + 5] = "s".charCodeAt(0);
          return der;
        },
        "BadCSRSignature",
        /does not verify/,
      ],
      ["rejects an RSA-1024 key as weak", async () => (await webCSR({ alg: "RSA-1024", uris: [ID] })).pem, "WeakKey", /RSA-1024 is too weak/],
      ["rejects a P-192 key as weak", async () => opensslCSR(ecKey("prime192v1").privateKey, { san: `URI:${ID}` }), "WeakKey", /P-192 is too weak/],
      ["rejects a secp256k1 key as unsupported", async () => opensslCSR(ecKey("secp256k1").privateKey, { san: `URI:${ID}` }), "UnsupportedKey", /secp256k1 is not supported/],
      ["rejects a P-521 key as unsupported", async () => opensslCSR(ecKey("P-521").privateKey), "UnsupportedKey", /P-521 is not supported/],
      ["rejects an Ed448 key as unsupported", async () => opensslCSR(crypto.generateKeyPairSync("ed448").privateKey), "UnsupportedKey", /key algorithm 1\.3\.101\.113 is not supported/],
      ["rejects a SHA-1 signature", async () => opensslCSR(crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey, { digest: "sha1" }), "BadCSRSignature", /sha1WithRSAEncryption is too weak/],
    ];
    for (const [name, make, reason, message] of rejected) {
      it(name, async () => {
        const input = await make();
        const r = csrRejection(() => parseCSR(input));
        assert.equal(r.reason, reason, r.message);
        assert.match(r.message, message);
      });
    }

    it("rejects input that is neither text nor bytes", () => {
      assert.equal(csrRejection(() => parseCSR(undefined as unknown as string)).reason, "MalformedCSR");
      assert.equal(csrRejection(() => parseCSR({ csr: "x" } as unknown as string)).reason, "MalformedCSR");
    });

    it("honours a smaller maxBytes", async () => {
      const r = csrRejection(() => parseCSR(Buffer.alloc(600, 0x30), { maxBytes: 512 }));
      assert.match(r.message, /600 bytes; the limit is 512/);
    });

    it("is never looser than @peculiar/asn1-csr's schema, over 3,000 mutated and re-signed CSRs", async () => {
      // parseCSR reads the asn1js tree itself (faster than the generic schema matcher). Mutations
      // inside certificationRequestInfo are re-signed, so only the structure decides: whatever the
      // library's schema rejects must be MalformedCSR for us too; and nothing throws but CSRError.
      const key = ecKey();
      const seeds = [
        opensslCSR(key.privateKey, { san: `URI:${ID},DNS:a.example,IP:10.0.0.1` }),
        opensslCSR(key.privateKey, { san: `URI:${ID}` }),
        opensslCSR(key.privateKey),
      ].map((pem) => Buffer.from(AsnParser.parse(Buffer.from(pem.split("-----")[2], "base64"), CertificationRequest).certificationRequestInfoRaw!));
      const derLen = (n: number) => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
      const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
      const ecdsaSha256 = Buffer.from("300a06082a8648ce3d040302", "hex");
      const signed = (cri: Buffer) => tlv(0x30, Buffer.concat([cri, ecdsaSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), crypto.sign("sha256", cri, key.privateKey)]))]));
      let state = 42;
      const rand = (n: number) => ((state = (state * 1103515245 + 12345) & 0x7fffffff) % n);
      const outcomes = { accepted: 0, bothRejected: 0, oursStricter: 0 };
      for (let i = 0; i < 3000; i++) {
        let cri = Buffer.from(seeds[i % seeds.length]);
        const kind = rand(4);
        if (kind === 0) cri[rand(cri.length)] ^= 1 << rand(8);
        else if (kind === 1) cri[rand(cri.length)] = [0x30, 0x31, 0xa0, 0x02, 0x06, 0x03, 0x04, 0x05, 0x80, 0x81, 0x82, 0x00, 0xff][rand(13)];
        else if (kind === 2) cri = Buffer.concat([cri.subarray(0, rand(cri.length)), cri.subarray(rand(cri.length))]);
        else cri[rand(Math.min(40, cri.length))] = rand(256);
        const input = signed(cri);
        let libraryOk = true;
        try {
          AsnParser.parse(input, CertificationRequest);
        } catch {
          libraryOk = false;
        }
        let reason: CSRRejection | "ok" = "ok";
        try {
          parseCSR(input);
        } catch (err) {
          assert.ok(err instanceof CSRError, `mutation ${i} threw ${(err as Error).stack}`);
          reason = err.reason;
        }
        if (!libraryOk) assert.equal(reason, "MalformedCSR", `mutation ${i}: the library rejects it, parseCSR got to ${reason}: ${input.toString("hex")}`);
        if (reason === "ok") outcomes.accepted++;
        else if (!libraryOk) outcomes.bothRejected++;
        else if (reason === "MalformedCSR") outcomes.oursStricter++;
      }
      assert.ok(outcomes.accepted > 100 && outcomes.bothRejected > 100, JSON.stringify(outcomes));
    });

    it("never throws anything but CSRError for bytes flipped anywhere", async () => {
      const der = (await webCSR({ uris: [ID], dnsNames: ["a.example"] })).der;
      for (let i = 0; i < der.length; i++) {
        const m = Buffer.from(der);
        m[i] ^= 0x80;
        assert.throws(() => parseCSR(m), CSRError, `byte ${i}`);
      }
    });
  });

  describe("issueLeaf", () => {
    let leafPem: string;
    const now = new Date();

    before(async () => {
      const csr = parseCSR((await webCSR({ uris: [ID], dnsNames: ["orders.shop.svc", "orders.shop.svc.cluster.local"] })).pem);
      leafPem = issueLeaf(ca, { publicKeyDer: csr.publicKeyDer, spiffeID: csr.uris[0], dnsNames: csr.dnsNames, ipAddresses: ["10.1.2.3"], attributes: ATTRS, ttlSeconds: 3600, now }).pem;
    });

    it("issues an X509-SVID from a real CSR that conforms, chains to the CA and carries its identity", () => {
      assert.deepEqual(svidViolations(leafPem), []);
      assert.deepEqual(verifyChain(leafPem, ca.certPem), { ok: true, ca: ca.serial });
      const id = readCertIdentity(leafPem);
      assert.equal(id.spiffeID, ID);
      assert.deepEqual(id.uris, [ID]);
      assert.deepEqual(id.dnsNames, ["orders.shop.svc", "orders.shop.svc.cluster.local"]);
      assert.deepEqual(id.ipAddresses, ["10.1.2.3"]);
      assert.deepEqual(id.attributes, ATTRS);
      assert.deepEqual(Object.keys(id.attributes), Object.keys(ATTRS).sort(), "attributes are encoded sorted by key");
      assert.equal(id.subject, "O=tenet");
      assert.equal(id.issuer, "CN=Tenet Workload CA");
      assert.equal(id.isCA, false);
    });

    it("shows openssl the URI SAN first, CA:FALSE, Digital Signature only, both EKUs and the attributes OID", () => {
      const text = opensslText(leafPem);
      assert.match(text, /Subject Alternative Name: \n\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders, DNS:orders\.shop\.svc, DNS:orders\.shop\.svc\.cluster\.local, IP Address:10\.1\.2\.3/);
      assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
      assert.match(text, /Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(text, new RegExp(`${ATTRIBUTES_OID.replaceAll(".", "\\.")}: \\n`));
      assert.match(text, /Authority Key Identifier: \n\s+([0-9A-F]{2}:){19}[0-9A-F]{2}/);
      assert.match(text, /Subject: O = tenet/);
    });

    it("passes openssl verify for both TLS client and server use", () => {
      const caFile = file("ca-for-verify.pem", ca.certPem);
      const leafFile = file("leaf-for-verify.pem", leafPem);
      for (const purpose of ["sslclient", "sslserver"]) assert.match(openssl("verify", "-purpose", purpose, "-CAfile", caFile, leafFile), /OK/);
    });

    it("is read the same by node's X509Certificate", () => {
      const x = new crypto.X509Certificate(leafPem);
      assert.equal(x.subjectAltName, `URI:${ID}, DNS:orders.shop.svc, DNS:orders.shop.svc.cluster.local, IP Address:10.1.2.3`);
      assert.equal(x.ca, false);
      assert.ok(x.checkIssued(new crypto.X509Certificate(ca.certPem)));
      assert.ok(x.verify(ca.publicKey));
      assert.equal(x.serialNumber.toLowerCase(), readCertIdentity(leafPem).serial);
    });

    it("honours the TTL: notBefore one minute early, notAfter now + ttl, both whole seconds", () => {
      const at = new Date("2031-02-03T04:05:06.789Z");
      const c = createCA({ commonName: "ttl", validitySeconds: 86_400, now: at });
      const leaf = issueLeaf(c, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 900, now: at });
      assert.equal(leaf.notBefore.toISOString(), "2031-02-03T04:04:06.000Z");
      assert.equal(leaf.notAfter.toISOString(), "2031-02-03T04:20:06.000Z");
      const id = readCertIdentity(leaf.der);
      assert.deepEqual([id.notBefore, id.notAfter], [leaf.notBefore, leaf.notAfter]);
    });

    it("caps notAfter at the CA's notAfter", () => {
      const at = new Date("2031-02-03T04:05:06Z");
      const c = createCA({ commonName: "short", validitySeconds: 600, now: at });
      const leaf = issueLeaf(c, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 86_400, now: at });
      assert.deepEqual(leaf.notAfter, c.notAfter);
      assert.deepEqual(verifyChain(leaf.pem, c.certPem, new Date("2031-02-03T04:10:00Z")), { ok: true, ca: c.serial });
    });

    it("writes a 16-byte positive serial that openssl prints the same way", () => {
      const leaf = issueLeaf(ca, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 });
      assert.match(leaf.serial, /^[4-7][0-9a-f]{31}$/);
      assert.equal(openssl("x509", "-noout", "-serial", "-in", file("serial.pem", leaf.pem)).trim(), `serial=${leaf.serial.toUpperCase()}`);
      assert.notEqual(leaf.serial, issueLeaf(ca, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 }).serial);
    });

    it("adds keyEncipherment for an RSA key, and only then", async () => {
      const csr = parseCSR((await webCSR({ alg: "RSA-2048", uris: [ID] })).pem);
      const leaf = issueLeaf(ca, { publicKeyDer: csr.publicKeyDer, spiffeID: ID, ttlSeconds: 60 });
      assert.match(opensslText(leaf.pem), /Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
      assert.deepEqual(svidViolations(leaf.pem), []);
    });

    it("issues for an Ed25519 key", () => {
      const leaf = issueLeaf(ca, { publicKeyDer: spkiOf(crypto.generateKeyPairSync("ed25519").publicKey), spiffeID: ID, ttlSeconds: 60 });
      assert.deepEqual(svidViolations(leaf.pem), []);
      assert.equal(verifyChain(leaf.pem, ca.certPem).ok, true);
    });

    it("leaves the attribute extension out when there are no attributes, and drops duplicate SANs", () => {
      const leaf = issueLeaf(ca, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, dnsNames: ["a.example", "A.example"], ipAddresses: ["::1", "0:0::1"], ttlSeconds: 60 });
      assert.doesNotMatch(opensslText(leaf.pem), new RegExp(ATTRIBUTES_OID.replaceAll(".", "\\.")));
      const id = readCertIdentity(leaf.pem);
      assert.deepEqual([id.dnsNames, id.ipAddresses, id.attributes], [["a.example"], ["::1"], {}]);
    });

    const refused: [string, Partial<Parameters<typeof issueLeaf>[1]>, RegExp][] = [
      ["refuses a SPIFFE ID with another scheme", { spiffeID: "https://cluster.local/ns/a/sa/b" }, /has scheme "https"/],
      ["refuses a trust-domain-only SPIFFE ID", { spiffeID: "spiffe://cluster.local" }, /has no path/],
      ["refuses a SPIFFE ID with an uppercase trust domain", { spiffeID: "spiffe://Cluster.local/ns/a" }, /trust domain "Cluster.local"/],
      ["refuses a SPIFFE ID with a trailing slash", { spiffeID: "spiffe://cluster.local/ns/a/" }, /trailing '\/'/],
      ["refuses a SPIFFE ID with a '..' segment", { spiffeID: "spiffe://cluster.local/ns/../sa" }, /'\.' or '\.\.' path segment/],
      ["refuses a SPIFFE ID with a query", { spiffeID: "spiffe://cluster.local/ns/a?x=1" }, /has a query/],
      ["refuses a SPIFFE ID with percent-encoding", { spiffeID: "spiffe://cluster.local/ns/a%2Fb" }, /path characters/],
      ["refuses a DNS name that is not a host name", { dnsNames: ["bad name.example"] }, /DNS name "bad name.example"/],
      ["refuses an IP address that does not parse", { ipAddresses: ["10.0.0.256"] }, /IP address "10.0.0.256"/],
      ["refuses an attribute key that is not label-style", { attributes: { "bad key": "x" } }, /attribute key "bad key"/],
      ["refuses an attribute value that is not well-formed Unicode", { attributes: { k: "\ud800" } }, /not well-formed Unicode/],
      ["refuses a zero TTL", { ttlSeconds: 0 }, /ttlSeconds must be a positive number/],
      ["refuses a public key that is not an SPKI", { publicKeyDer: Buffer.from("nope") }, /not a DER SubjectPublicKeyInfo/],
      ["refuses an RSA-1024 public key", { publicKeyDer: spkiOf(crypto.generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey) }, /rsa-1024 is not accepted/],
      ["refuses to issue after the CA has expired", { now: new Date(Date.now() + 365 * 86_400_000) }, /the CA expired at/],
    ];
    for (const [name, change, expected] of refused) {
      it(name, () => {
        const req = { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60, ...change };
        assert.throws(() => issueLeaf(ca, req), (err: Error) => err instanceof LeafRequestError && expected.test(err.message));
      });
    }
  });

  describe("verifyChain", () => {
    it("names the CA of a rotated bundle that signed the leaf", () => {
      const next = createCA({ commonName: "Tenet Workload CA", validitySeconds: 86_400 });
      const leaf = issueLeaf(next, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 });
      assert.deepEqual(verifyChain(leaf.pem, ca.certPem + next.certPem), { ok: true, ca: next.serial });
    });

    it("refuses a leaf from a CA that is not in the bundle, even one with the same name", () => {
      const stranger = createCA({ commonName: "Tenet Workload CA", validitySeconds: 86_400 });
      const leaf = issueLeaf(stranger, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 });
      const r = verifyChain(leaf.pem, ca.certPem);
      assert.equal(r.ok, false);
      assert.match((r as { reason: string }).reason, /not signed by any of the 1 CA certificate/);
    });

    it("refuses an expired leaf at a later time, and one not yet valid", () => {
      const leaf = issueLeaf(ca, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 });
      assert.match((verifyChain(leaf.pem, ca.certPem, new Date(leaf.notAfter.getTime() + 1000)) as { reason: string }).reason, /expired at/);
      assert.match((verifyChain(leaf.pem, ca.certPem, new Date(leaf.notBefore.getTime() - 1000)) as { reason: string }).reason, /not valid before/);
    });

    it("refuses when the issuing CA itself is outside its validity", () => {
      const leaf = issueLeaf(ca, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 });
      assert.match((verifyChain(leaf.pem, ca.certPem, new Date(ca.notAfter.getTime() + 1000)) as { reason: string }).reason, /issuing CA .* is not valid at/);
    });

    it("refuses a CA certificate offered as a workload identity", () => {
      assert.match((verifyChain(ca.certPem, ca.certPem) as { reason: string }).reason, /CA certificate, which is never a workload identity/);
    });

    it("explains an empty bundle and an unreadable certificate", () => {
      const leaf = issueLeaf(ca, { publicKeyDer: spkiOf(ecKey().publicKey), spiffeID: ID, ttlSeconds: 60 });
      assert.deepEqual(verifyChain(leaf.pem, "nothing here"), { ok: false, reason: "the trust bundle has no CERTIFICATE blocks" });
      assert.match((verifyChain("garbage", ca.certPem) as { reason: string }).reason, /cannot be read/);
    });
  });

  describe("svidViolations: the X509-SVID rules", () => {
    const goSpiffe: [string, keyof TestSVIDs, RegExp | null][] = [
      ["accepts a good leaf", "good-leaf-only.pem", null],
      ["catches a leaf with cA=true (B1)", "wrong-leaf-ca-true.pem", /cA=true.*\(B1\)/],
      ["catches a leaf with keyCertSign (B4)", "wrong-leaf-cert-sign.pem", /keyCertSign.*\(B4\)/],
      ["catches a leaf with cRLSign (B4)", "wrong-leaf-crl-sign.pem", /cRLSign.*\(B4\)/],
      ["catches a leaf with no URI SAN (A1)", "wrong-leaf-empty-id.pem", /no URI SAN.*\(A1\)/],
      ["catches a leaf without digitalSignature (B3)", "wrong-leaf-no-digital-signature.pem", /lacks digitalSignature \(B3\)/],
      ["catches a leaf with two URI SANs (A2)", "wrong-leaf-two-uris.pem", /2 URI SANs.*\(A2\)/],
    ];
    for (const [name, f, expected] of goSpiffe) {
      it(name, () => {
        const v = svidViolations(sample(f));
        if (!expected) assert.deepEqual(v, []);
        else assert.ok(v.some((s) => expected.test(s)), v.join("\n"));
      });
    }

    const leafExts = ["basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature", "extendedKeyUsage = serverAuth, clientAuth"];
    const generated: [string, string[], RegExp, string?][] = [
      ["catches two URI SANs (A2)", [...leafExts, "subjectAltName = URI:spiffe://td/a, URI:spiffe://td/b"], /2 URI SANs.*\(A2\)/],
      ["catches a URI SAN that is not spiffe:// (A3)", [...leafExts, "subjectAltName = URI:https://td/a"], /scheme "https"/],
      ["catches a trust-domain-only SPIFFE ID (A4)", [...leafExts, "subjectAltName = URI:spiffe://td"], /has no path/],
      ["catches an empty subject with a non-critical SAN (A5)", [...leafExts, "subjectAltName = URI:spiffe://td/a"], /subject is empty.*\(A5/, "/"],
      ["catches a keyUsage that is not critical (B2)", ["basicConstraints = critical, CA:FALSE", "keyUsage = digitalSignature", "subjectAltName = URI:spiffe://td/a"], /not marked critical \(B2\)/],
      ["catches a missing keyUsage (B2)", ["basicConstraints = critical, CA:FALSE", "subjectAltName = URI:spiffe://td/a"], /no keyUsage extension.*\(B2\)/],
      ["catches an EKU without clientAuth (B5)", ["basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature", "extendedKeyUsage = serverAuth", "subjectAltName = URI:spiffe://td/a"], /lacks clientAuth.*\(B5\)/],
    ];
    for (const [name, ext, expected, subj] of generated) {
      it(name, () => {
        const v = svidViolations(opensslCert(ecKey().privateKey, ext, subj ?? "/O=test"));
        assert.ok(v.some((s) => expected.test(s)), v.join("\n") || "(no violations)");
      });
    }

    it("reports an unreadable certificate as a violation, not an exception", () => {
      assert.match(svidViolations(sample("corrupt-cert.pem"))[0], /cannot be read: malformed certificate/);
      assert.match(svidViolations(sample("not-pem"))[0], /no PEM CERTIFICATE block/);
    });
  });

  describe("readCertIdentity and splitPEM", () => {
    it("reads a leaf that expired long ago (reading checks no dates)", () => {
      const id = readCertIdentity(sample("good-leaf-only.pem"));
      assert.equal(id.spiffeID, "spiffe://example.org/workload-1");
      assert.equal(id.subject, "C=US, O=SPIFFE");
      assert.ok(id.notAfter < new Date("2025-04-01T00:00:00Z"));
    });

    it("reads the first certificate of a chain, skipping keys before it", () => {
      const pem = sample("good-key-and-cert.pem");
      assert.equal(splitPEM(pem).length, 1);
      assert.equal(readCertIdentity(pem).spiffeID, "spiffe://example.org/workload-1");
      assert.equal(splitPEM(sample("good-leaf-and-intermediate.pem")).length, 2);
      assert.equal(readCertIdentity(sample("good-leaf-and-intermediate.pem")).isCA, false);
    });

    it("normalizes a serial with DER sign padding the way openssl prints it", () => {
      const pem = opensslCert(ecKey().privateKey, ["basicConstraints = critical, CA:FALSE"], "/O=t", ["-set_serial", "0x80ff"]);
      assert.equal(readCertIdentity(pem).serial, "80ff");
      assert.equal(openssl("x509", "-noout", "-serial", "-in", file("padded.pem", pem)).trim(), "serial=80FF");
    });

    it("says what is wrong with input that holds no certificate", () => {
      assert.throws(() => readCertIdentity(sample("key-pkcs8-ecdsa.pem")), /no CERTIFICATE PEM block \(found PRIVATE KEY\)/);
      assert.throws(() => readCertIdentity(Buffer.from("not a certificate")), /neither PEM \(no -----BEGIN CERTIFICATE----- line\) nor DER/);
      assert.throws(() => readCertIdentity(Buffer.from([0x30, 0x82, 0x01])), /malformed certificate/);
    });
  });
});
