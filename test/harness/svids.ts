// X509-SVIDs for the tests, made at test time: a good leaf and deliberately broken ones, each
// breaking one rule of the X509-SVID spec (the cases go-spiffe's testdata covers), plus keys and
// unreadable input. Made with @peculiar/x509 on node's WebCrypto, independently of Tenet's own CA
// code (operator/ca/x509.ts), which the tests check against these.
//
// Every certificate is P-256/ECDSA-SHA256, subject C=US, O=SPIFFE, and expired (valid 2025-03-01 to
// 2025-03-29, as go-spiffe's testdata is): readers must not check dates. The keys are fresh on every
// run; the contents are fixed.
import "reflect-metadata"; // @peculiar/x509 needs it loaded first
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

export const SVID_ID = "spiffe://example.org/workload-1";
export const SVID_SUBJECT = "C=US, O=SPIFFE";
export const SVID_NOT_BEFORE = new Date("2025-03-01T00:00:00Z");
export const SVID_NOT_AFTER = new Date("2025-03-29T00:00:00Z");

/** The generated files by the names go-spiffe's testdata gives them (and two it has no file for). */
export interface TestSVIDs {
  /** A conforming leaf: cA=false, keyUsage digitalSignature (critical), one SPIFFE ID. */
  "good-leaf-only.pem": string;
  /** The good leaf followed by the intermediate CA that signed it. */
  "good-leaf-and-intermediate.pem": string;
  /** The good leaf's PKCS#8 private key, then the leaf. */
  "good-key-and-cert.pem": string;
  /** The good leaf, then its PKCS#8 private key. */
  "good-cert-and-key.pem": string;
  /** A PKCS#8 ECDSA private key alone. */
  "key-pkcs8-ecdsa.pem": string;
  /** basicConstraints cA=true on a leaf (rule B1). */
  "wrong-leaf-ca-true.pem": string;
  /** keyUsage with keyCertSign on a leaf (B4). */
  "wrong-leaf-cert-sign.pem": string;
  /** keyUsage with cRLSign on a leaf (B4). */
  "wrong-leaf-crl-sign.pem": string;
  /** No URI SAN, only a DNS name (A1). */
  "wrong-leaf-empty-id.pem": string;
  /** keyUsage keyAgreement without digitalSignature (B3). */
  "wrong-leaf-no-digital-signature.pem": string;
  /** Two URI SANs (A2). */
  "wrong-leaf-two-uris.pem": string;
  /** An intermediate CA without keyCertSign (a signing certificate must have it). */
  "wrong-intermediate-no-key-cert-sign.pem": string;
  /** A CERTIFICATE PEM block whose content is not DER. */
  "corrupt-cert.pem": string;
  /** A PRIVATE KEY PEM block whose content is not DER. */
  "corrupt-key.pem": string;
  /** Text without any PEM block. */
  "not-pem": string;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const KU = x509.KeyUsageFlags;
const CRYPTO = webcrypto as Crypto;

const newKeys = () => webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
const serial = () => "01" + Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString("hex");
const pkcs8 = async (k: CryptoKey) => x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", k), "PRIVATE KEY");

interface Issuer {
  name: string;
  keys: CryptoKeyPair;
}

interface CertSpec {
  subject?: string;
  ca?: boolean;
  keyUsage: number;
  uris?: string[];
  dnsNames?: string[];
  keys?: CryptoKeyPair;
}

async function certificate(issuer: Issuer | "self", spec: CertSpec): Promise<{ pem: string; keys: CryptoKeyPair }> {
  const keys = spec.keys ?? (await newKeys());
  const subject = spec.subject ?? SVID_SUBJECT;
  const signer = issuer === "self" ? { name: subject, keys } : issuer;
  const names = [...(spec.uris ?? []).map((value) => ({ type: "url" as const, value })), ...(spec.dnsNames ?? []).map((value) => ({ type: "dns" as const, value }))];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(spec.ca ?? false, spec.ca ? 0 : undefined, true),
    new x509.KeyUsagesExtension(spec.keyUsage, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, CRYPTO),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject,
      issuer: signer.name,
      notBefore: SVID_NOT_BEFORE,
      notAfter: SVID_NOT_AFTER,
      signingAlgorithm: ALG,
      publicKey: keys.publicKey,
      signingKey: signer.keys.privateKey,
      extensions,
    },
    CRYPTO,
  );
  return { pem: cert.toString("pem") + "\n", keys };
}

let made: Promise<TestSVIDs> | undefined;

/** Makes the SVIDs once per process (about 50 ms) and returns the same set to every caller. */
export function testSVIDs(): Promise<TestSVIDs> {
  made ??= make();
  return made;
}

async function make(): Promise<TestSVIDs> {
  const rootKeys = await newKeys();
  const root: Issuer = { name: "C=US, O=SPIFFE, CN=Test Root CA", keys: rootKeys };
  const interKeys = await newKeys();
  const inter = await certificate(root, { subject: "C=US, O=SPIFFE, CN=Test Intermediate CA", ca: true, keyUsage: KU.keyCertSign | KU.cRLSign, keys: interKeys });
  const intermediate: Issuer = { name: "C=US, O=SPIFFE, CN=Test Intermediate CA", keys: interKeys };

  const leaf = (spec: Partial<CertSpec>) => certificate(root, { keyUsage: KU.digitalSignature, uris: [SVID_ID], ...spec }).then((c) => c.pem);
  const good = await certificate(root, { keyUsage: KU.digitalSignature, uris: [SVID_ID] });
  const goodKey = await pkcs8(good.keys.privateKey);
  const underIntermediate = await certificate(intermediate, { keyUsage: KU.digitalSignature, uris: [SVID_ID] });
  const block = (label: string, text: string) => `-----BEGIN ${label}-----\n${Buffer.from(text).toString("base64")}\n-----END ${label}-----\n`;

  return {
    "good-leaf-only.pem": good.pem,
    "good-leaf-and-intermediate.pem": underIntermediate.pem + inter.pem,
    "good-key-and-cert.pem": goodKey + "\n" + good.pem,
    "good-cert-and-key.pem": good.pem + goodKey + "\n",
    "key-pkcs8-ecdsa.pem": (await pkcs8((await newKeys()).privateKey)) + "\n",
    "wrong-leaf-ca-true.pem": await leaf({ ca: true }),
    "wrong-leaf-cert-sign.pem": await leaf({ keyUsage: KU.digitalSignature | KU.keyCertSign }),
    "wrong-leaf-crl-sign.pem": await leaf({ keyUsage: KU.digitalSignature | KU.cRLSign }),
    "wrong-leaf-empty-id.pem": await leaf({ uris: [], dnsNames: ["example.org"] }),
    "wrong-leaf-no-digital-signature.pem": await leaf({ keyUsage: KU.keyAgreement }),
    "wrong-leaf-two-uris.pem": await leaf({ uris: [SVID_ID, "spiffe://example.org/workload-2"] }),
    "wrong-intermediate-no-key-cert-sign.pem": (await certificate(intermediate, { keyUsage: KU.digitalSignature, uris: [SVID_ID] })).pem + (await certificate(root, { subject: intermediate.name, ca: true, keyUsage: KU.cRLSign, keys: interKeys })).pem,
    "corrupt-cert.pem": block("CERTIFICATE", "CORRUPTED"),
    "corrupt-key.pem": block("PRIVATE KEY", "CORRUPTED"),
    "not-pem": "this file holds no PEM block\n",
  };
}
