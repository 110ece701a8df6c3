// PKCS#10 certificate signing requests (RFC 2986): parsed from untrusted bytes and verified
// (key strength, self-signature, SANs). The CA's endpoint is the caller today; the checks are
// the same wherever a CSR is judged.
import crypto from "node:crypto";
import { AsnBooleanConverter, AsnIntegerConverter, AsnObjectIdentifierConverter, AsnParser } from "@peculiar/asn1-schema";
import { Name } from "@peculiar/asn1-x509";
import { decodeOid, oid, readTLV, type TLV } from "./der.ts";
import { AsnTree, BER_OPTIONS, readSANs, type AsnNode, type SANs } from "./extensions.ts";
import { formatName } from "./names.ts";
import { CURVES, MIN_RSA_BITS, OID } from "./oids.ts";
import { looksLikePEM } from "./pem.ts";

export type CSRRejection = "MalformedCSR" | "BadCSRSignature" | "WeakKey" | "UnsupportedKey";

/** A CSR we refuse, with a reason the CA endpoint maps to its answer. */
export class CSRError extends Error {
  override name = "CSRError";
  constructor(
    readonly reason: CSRRejection,
    message: string,
  ) {
    super(message);
  }
}


export interface ParsedCSR {
  /** SubjectPublicKeyInfo DER (canonical encoding of the CSR's key), ready for issueLeaf. */
  publicKeyDer: Buffer;
  keyType: "ec" | "rsa" | "ed25519" | string;
  curve?: string;
  keyBits?: number;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emails: string[];
  subject: string;
}

/** Accepted CSR signature algorithms: OID → [key type, hash for crypto.verify]. */
const CSR_SIG_ALGS: Record<string, { keyType: string; hash: string | null; name: string }> = {
  [OID.ecdsaSha256]: { keyType: "ec", hash: "sha256", name: "ecdsa-with-SHA256" },
  [OID.ecdsaSha384]: { keyType: "ec", hash: "sha384", name: "ecdsa-with-SHA384" },
  [OID.ecdsaSha512]: { keyType: "ec", hash: "sha512", name: "ecdsa-with-SHA512" },
  [OID.sha256Rsa]: { keyType: "rsa", hash: "sha256", name: "sha256WithRSAEncryption" },
  [OID.sha384Rsa]: { keyType: "rsa", hash: "sha384", name: "sha384WithRSAEncryption" },
  [OID.sha512Rsa]: { keyType: "rsa", hash: "sha512", name: "sha512WithRSAEncryption" },
  [OID.ed25519]: { keyType: "ed25519", hash: null, name: "Ed25519" },
};
const WEAK_SIG_ALGS: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
};

const DEFAULT_MAX_CSR_BYTES = 16 * 1024;

const UNIVERSAL = 1;
const CONTEXT = 3;
const T = { boolean: 1, integer: 2, bitString: 3, octetString: 4, null: 5, oid: 6, sequence: 16, set: 17 } as const;

/** The node if it has the expected tag, else an error naming `what`. */
function expectNode(node: AsnNode | undefined, tagClass: number, tagNumber: number, constructed: boolean, what: string): AsnNode {
  const id = node?.idBlock;
  if (!id || id.tagClass !== tagClass || id.tagNumber !== tagNumber || id.isConstructed !== constructed) throw new Error(`${what} is missing or has the wrong type`);
  return node!;
}
const kids = (n: AsnNode) => n.valueBlock.value ?? [];
/** Dotted OID of a node; the OIDs we look for are matched by their DER bytes (asn1js renders OIDs slowly). */
function oidOf(n: AsnNode | undefined, what: string): string {
  const node = expectNode(n, UNIVERSAL, T.oid, false, what);
  const v = node.valueBeforeDecodeView;
  for (const [der, dotted] of KNOWN_OIDS) if (v.length === der.length && der.equals(v)) return dotted;
  return AsnObjectIdentifierConverter.fromASN(node as never) as string;
}
/** A Buffer over a node's content bytes (a view: AsnParser parsed a private copy of the input). */
const bytesOf = (n: AsnNode) => view(n.valueBlock.valueHexView ?? new Uint8Array(0));
const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

interface CSRFields {
  criDer: Buffer;
  version: number;
  subject: Name;
  keyAlgorithm: string;
  keyParams?: Buffer; // DER of the AlgorithmIdentifier parameters
  publicKey: Buffer; // subjectPublicKey bits
  spkiDer: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  extensionRequests: AsnNode[]; // each an Extensions SEQUENCE
}

/**
 * PKCS#10 (RFC 2986) over the asn1js tree: CertificationRequest ::= SEQUENCE { info, algorithm,
 * signature BIT STRING }, info ::= SEQUENCE { version INTEGER, subject Name, subjectPKInfo,
 * attributes [0] IMPLICIT SET OF Attribute }. Same shape as @peculiar/asn1-csr's schema (a test
 * checks the two agree on good and mutated CSRs), without its generic schema matching, which
 * costs more than the signature check it guards.
 */
function readCSRTree(root: AsnNode): CSRFields {
  expectNode(root, UNIVERSAL, T.sequence, true, "CertificationRequest");
  if (kids(root).length !== 3) throw new Error(`CertificationRequest has ${kids(root).length} elements, not 3`);
  const [info, sigAlg, sig] = kids(root);
  expectNode(info, UNIVERSAL, T.sequence, true, "certificationRequestInfo");
  const f = kids(info);
  if (f.length < 3 || f.length > 4) throw new Error(`certificationRequestInfo has ${f.length} elements, not 3 or 4`);
  const version = AsnIntegerConverter.fromASN(expectNode(f[0], UNIVERSAL, T.integer, false, "version") as never);
  const subjectNode = expectNode(f[1], UNIVERSAL, T.sequence, true, "subject");
  const subject = kids(subjectNode).length ? AsnParser.fromASN(subjectNode as never, Name) : new Name(); // SVID CSRs have empty subjects
  const spki = expectNode(f[2], UNIVERSAL, T.sequence, true, "subjectPKInfo");
  if (kids(spki).length !== 2) throw new Error("subjectPKInfo does not have 2 elements");
  const [keyAlg, keyBits] = kids(spki);
  expectNode(keyAlg, UNIVERSAL, T.sequence, true, "subjectPKInfo.algorithm");
  if (kids(keyAlg).length < 1 || kids(keyAlg).length > 2) throw new Error("subjectPKInfo.algorithm does not have 1 or 2 elements");
  const keyAlgorithm = oidOf(kids(keyAlg)[0], "subjectPKInfo.algorithm.algorithm");
  const params = kids(keyAlg)[1];
  expectNode(keyBits, UNIVERSAL, T.bitString, false, "subjectPKInfo.subjectPublicKey");
  if (keyBits.valueBlock.unusedBits !== 0) throw new Error("subjectPKInfo.subjectPublicKey has unused bits");

  const extensionRequests: AsnNode[] = [];
  if (f[3]) {
    expectNode(f[3], CONTEXT, 0, true, "attributes [0]");
    for (const attr of kids(f[3])) {
      expectNode(attr, UNIVERSAL, T.sequence, true, "attribute");
      if (kids(attr).length !== 2) throw new Error("attribute does not have 2 elements");
      const type = oidOf(kids(attr)[0], "attribute type");
      const values = expectNode(kids(attr)[1], UNIVERSAL, T.set, true, "attribute values");
      if (type !== OID.extensionRequest) continue; // e.g. challengePassword: not ours to read
      if (kids(values).length !== 1) throw new Error("extensionRequest does not have exactly one value");
      extensionRequests.push(expectNode(kids(values)[0], UNIVERSAL, T.sequence, true, "extensionRequest value"));
    }
  }

  expectNode(sigAlg, UNIVERSAL, T.sequence, true, "signatureAlgorithm");
  if (kids(sigAlg).length < 1 || kids(sigAlg).length > 2) throw new Error("signatureAlgorithm does not have 1 or 2 elements");
  expectNode(sig, UNIVERSAL, T.bitString, false, "signature");
  if (sig.valueBlock.unusedBits !== 0) throw new Error("signature has unused bits");
  return {
    criDer: view(info.valueBeforeDecodeView),
    version: typeof version === "number" ? version : -1,
    subject,
    keyAlgorithm,
    keyParams: params ? view(params.valueBeforeDecodeView) : undefined,
    publicKey: bytesOf(keyBits),
    spkiDer: view(spki.valueBeforeDecodeView),
    signatureAlgorithm: oidOf(kids(sigAlg)[0], "signatureAlgorithm.algorithm"),
    signature: bytesOf(sig),
    extensionRequests,
  };
}

/** The subjectAltName extension of an Extensions node (at most one). */
function sanFromExtensions(exts: AsnNode): { critical: boolean; value: Buffer } | undefined {
  let found: { critical: boolean; value: Buffer } | undefined;
  for (const ext of kids(exts)) {
    expectNode(ext, UNIVERSAL, T.sequence, true, "extension");
    const e = kids(ext);
    if (e.length < 2 || e.length > 3) throw new Error("extension does not have 2 or 3 elements");
    const id = oidOf(e[0], "extnID");
    const critical = e.length === 3 && AsnBooleanConverter.fromASN(expectNode(e[1], UNIVERSAL, T.boolean, false, "critical") as never);
    const value = expectNode(e[e.length - 1], UNIVERSAL, T.octetString, false, "extnValue");
    if (id !== OID.subjectAltName) continue;
    if (found) throw new Error("more than one subjectAltName extension");
    found = { critical, value: bytesOf(value) };
  }
  return found;
}

const CSR_LABELS = new Set(["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);
const BASE64_BODY = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

function csrDer(input: string | Buffer, maxBytes: number): Buffer {
  if (typeof input !== "string" && !(input instanceof Uint8Array)) throw new CSRError("MalformedCSR", "CSR must be PEM text or DER bytes");
  if (typeof input !== "string" && !Buffer.isBuffer(input)) input = view(input as Uint8Array);
  const size = typeof input === "string" ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new CSRError("MalformedCSR", `CSR is ${size} bytes; the limit is ${maxBytes}`);
  if (size === 0) throw new CSRError("MalformedCSR", "CSR is empty");
  if (typeof input !== "string" && !looksLikePEM(input)) return input;
  // One PEM block, found with indexOf rather than the general PEM regex: this is the hot path.
  const text = typeof input === "string" ? input : input.toString("latin1");
  const begin = text.indexOf("-----BEGIN ");
  if (begin < 0) throw new CSRError("MalformedCSR", "CSR is not PEM (no -----BEGIN CERTIFICATE REQUEST----- line) and not DER");
  const labelEnd = text.indexOf("-----", begin + 11);
  const label = labelEnd < 0 ? "" : text.slice(begin + 11, labelEnd);
  if (!CSR_LABELS.has(label)) throw new CSRError("MalformedCSR", `expected a PEM block labelled CERTIFICATE REQUEST, found ${label ? `"${label.slice(0, 40)}"` : "none"}`);
  const end = text.indexOf(`-----END ${label}-----`, labelEnd + 5);
  if (end < 0) throw new CSRError("MalformedCSR", `the PEM block has no -----END ${label}----- line (truncated?)`);
  if (text.includes("-----BEGIN ", end)) throw new CSRError("MalformedCSR", "expected one PEM block, found more");
  const body = text.slice(labelEnd + 5, end);
  if (!BASE64_BODY.test(body)) throw new CSRError("MalformedCSR", "the PEM body is not base64 (PEM headers are not supported)");
  return Buffer.from(body, "base64");
}

/**
 * Parses and verifies a PKCS#10 CSR (PEM or DER). Throws CSRError: MalformedCSR (garbage,
 * truncated, trailing bytes, too big, wrong PEM label), BadCSRSignature (signature does not verify
 * or uses a weak/mismatched algorithm), WeakKey (RSA < 2048, P-192/P-224), UnsupportedKey (other
 * curves and key types).
 */
export function parseCSR(input: string | Buffer, opts: { maxBytes?: number } = {}): ParsedCSR {
  const der = csrDer(input, opts.maxBytes ?? DEFAULT_MAX_CSR_BYTES);
  // The outer header decides truncation and trailing bytes; the library parses the rest.
  let outer: TLV;
  try {
    outer = readTLV(der, 0);
  } catch (err) {
    throw new CSRError("MalformedCSR", `CSR is not DER: ${(err as Error).message}`);
  }
  if (der[0] !== 0x30) throw new CSRError("MalformedCSR", "CSR is not DER: it does not start with a SEQUENCE");
  if (outer.end > der.length) throw new CSRError("MalformedCSR", `CSR is truncated: it declares ${outer.end} bytes, got ${der.length}`);
  if (outer.end < der.length) throw new CSRError("MalformedCSR", `CSR has ${der.length - outer.end} trailing bytes after the request`);
  let csr: CSRFields;
  try {
    csr = readCSRTree(AsnParser.parse(der, AsnTree, BER_OPTIONS).node);
  } catch (err) {
    throw new CSRError("MalformedCSR", `CSR does not parse as PKCS#10: ${(err as Error).message}`);
  }
  if (csr.version !== 0) throw new CSRError("MalformedCSR", `CSR version ${csr.version} is not v1 (0)`);

  // The key: classify by its algorithm before handing it to OpenSSL (no explicit curve parameters).
  const point = csr.publicKey;
  let keyType: string;
  let curve: string | undefined;
  let keyBits: number | undefined;
  let key: crypto.KeyObject;
  let publicKeyDer: Buffer;
  try {
    if (csr.keyAlgorithm === OID.ecPublicKey) {
      keyType = "ec";
      const curveOid = parseOidParam(csr.keyParams);
      const c = curveOid ? CURVES[curveOid] : undefined;
      if (!curveOid) throw new CSRError("UnsupportedKey", "EC key with explicit or missing curve parameters: use a named curve (P-256 or P-384)");
      if (!c) throw new CSRError("UnsupportedKey", `EC curve ${curveOid} is not supported: use P-256 or P-384`);
      if (c.verdict === "WeakKey") throw new CSRError("WeakKey", `EC curve ${c.name} is too weak: use P-256 or P-384`);
      if (c.verdict === "UnsupportedKey") throw new CSRError("UnsupportedKey", `EC curve ${c.name} is not supported: use P-256 or P-384`);
      curve = c.name;
      keyBits = c.name === "P-256" ? 256 : 384;
      const n = keyBits / 8;
      if (point.length === 1 + 2 * n && point[0] === 0x04) {
        // Uncompressed point: import through JWK (half the cost of OpenSSL's DER decoder; the
        // point is still checked to be on the curve) and write the canonical SPKI ourselves.
        const jwk = { kty: "EC", crv: c.name, x: point.subarray(1, 1 + n).toString("base64url"), y: point.subarray(1 + n).toString("base64url") };
        key = crypto.createPublicKey({ key: jwk, format: "jwk" });
        publicKeyDer = Buffer.concat([c.name === "P-256" ? SPKI_PREFIX_P256 : SPKI_PREFIX_P384, point]);
      } else {
        key = crypto.createPublicKey({ key: csr.spkiDer, format: "der", type: "spki" });
        publicKeyDer = key.export({ type: "spki", format: "der" });
      }
    } else if (csr.keyAlgorithm === OID.ed25519) {
      keyType = "ed25519";
      keyBits = 256;
      if (point.length !== 32) throw new CSRError("MalformedCSR", `Ed25519 public key is ${point.length} bytes (32 expected)`);
      key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: point.toString("base64url") }, format: "jwk" });
      publicKeyDer = Buffer.concat([SPKI_PREFIX_ED25519, point]);
    } else if (csr.keyAlgorithm === OID.rsaEncryption) {
      keyType = "rsa";
      key = crypto.createPublicKey({ key: csr.spkiDer, format: "der", type: "spki" });
      keyBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (keyBits < MIN_RSA_BITS) throw new CSRError("WeakKey", `RSA-${keyBits} is too weak: use at least RSA-${MIN_RSA_BITS}`);
      publicKeyDer = key.export({ type: "spki", format: "der" });
    } else {
      throw new CSRError("UnsupportedKey", `key algorithm ${csr.keyAlgorithm} is not supported: use ECDSA P-256/P-384, RSA ≥ ${MIN_RSA_BITS} or Ed25519`);
    }
  } catch (err) {
    if (err instanceof CSRError) throw err;
    throw new CSRError("MalformedCSR", `CSR public key does not parse: ${(err as Error).message}`);
  }

  // The self-signature, over the exact bytes of certificationRequestInfo.
  const sigAlg = CSR_SIG_ALGS[csr.signatureAlgorithm];
  if (!sigAlg) {
    const weak = WEAK_SIG_ALGS[csr.signatureAlgorithm];
    throw new CSRError("BadCSRSignature", weak ? `CSR signature algorithm ${weak} is too weak: sign with SHA-256 or stronger` : `CSR signature algorithm ${csr.signatureAlgorithm} is not supported`);
  }
  if (sigAlg.keyType !== keyType) throw new CSRError("BadCSRSignature", `CSR signature algorithm ${sigAlg.name} does not fit its ${keyType} key`);
  let ok = false;
  try {
    ok = crypto.verify(sigAlg.hash, csr.criDer, key, csr.signature);
  } catch {
    ok = false; // e.g. a signature that is not a valid DER ECDSA-Sig-Value
  }
  if (!ok) throw new CSRError("BadCSRSignature", "CSR signature does not verify with its own public key");

  // SANs from the extensionRequest attribute.
  let sans: SANs;
  let subject: string;
  try {
    subject = csr.subject.length ? formatName(csr.subject) : "";
    if (csr.extensionRequests.length > 1) throw new Error("more than one extensionRequest attribute");
    sans = readSANs(csr.extensionRequests[0] && sanFromExtensions(csr.extensionRequests[0]));
  } catch (err) {
    throw new CSRError("MalformedCSR", `CSR extension request does not parse: ${(err as Error).message}`);
  }
  verifiedKeys.set(publicKeyDer, keyType);
  return { publicKeyDer, keyType, curve, keyBits, uris: sans.uris, dnsNames: sans.dnsNames, ipAddresses: sans.ipAddresses, emails: sans.emails, subject };
}

/** SPKI DER of the keys parseCSR validated, so issueLeaf need not import them again. */
const verifiedKeys = new WeakMap<Buffer, string>();

/** The key type of an SPKI buffer parseCSR validated (and wrote), or undefined for any other buffer. */
export const verifiedKeyType = (spki: Buffer): string | undefined => verifiedKeys.get(spki);

const SPKI_PREFIX_P256 = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
const SPKI_PREFIX_P384 = Buffer.from("3076301006072a8648ce3d020106052b81040022036200", "hex");
const SPKI_PREFIX_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

const KNOWN_OIDS: [Buffer, string][] = [OID.ecPublicKey, OID.extensionRequest, OID.subjectAltName, OID.ecdsaSha256, OID.ecdsaSha384, OID.rsaEncryption, OID.sha256Rsa, OID.ed25519].map((o) => [oid(o), o]);
const CURVE_PARAM_DER = new Map(Object.keys(CURVES).map((o) => [oid(o).toString("hex"), o]));

/** The named-curve OID in EC AlgorithmIdentifier parameters, or undefined for anything else. */
function parseOidParam(params: Buffer | undefined): string | undefined {
  if (!params) return undefined;
  const b = Buffer.from(params);
  if (b[0] !== 0x06) return undefined;
  const known = CURVE_PARAM_DER.get(b.toString("hex"));
  if (known) return known;
  try {
    return decodeOid(b);
  } catch {
    return undefined;
  }
}
