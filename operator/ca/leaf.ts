// Issuing X509-SVID leaf certificates from a CA key pair. Pure and synchronous: the DER comes
// from a per-CA template (issuer Name, AKI and signature algorithm encoded once per CA) and is
// signed with crypto.sign.
import crypto from "node:crypto";
import { KeyUsageFlags } from "@peculiar/asn1-x509";
import { verifiedKeyType } from "../../pki/csr.ts";
import { children, derTime, extension, integer, keyIdentifier, octets, oid, readTLV, seq, tlv, utf8 } from "../../pki/der.ts";
import { ipToBytes } from "../../pki/names.ts";
import { ATTRIBUTES_OID, MIN_RSA_BITS, OID } from "../../pki/oids.ts";
import { pemEncode } from "../../pki/pem.ts";
import { spiffeIDProblems } from "../../pki/spiffe-id.ts";
import { keyUsageBits, newSerial, secondsFloor, signDer, signingProfile, VERSION_V3, type CAKeyPair, type SigningProfile } from "./signing.ts";

/** Subject of every leaf: SPIFFE allows an empty subject or any subject; O=tenet keeps the URI SAN non-critical and tools readable. */
export const LEAF_SUBJECT = "O=tenet";

const MAX_ATTRIBUTES = 64;
const MAX_ATTRIBUTE_VALUE_BYTES = 4096;
const ATTRIBUTE_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,315}[A-Za-z0-9])?$/;

/** An issuing request that cannot become a certificate (bad SPIFFE ID, SAN, attribute or TTL). */
export class LeafRequestError extends Error {
  override name = "LeafRequestError";
}

export interface LeafRequest {
  publicKeyDer: Buffer;
  spiffeID: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  attributes?: Record<string, string>;
  ttlSeconds: number;
  now?: Date;
  /** Kept for callers; every SVID carries both serverAuth and clientAuth (X509-SVID §4.4 requires both when EKU is present). */
  serverAuth?: boolean;
}

export interface IssuedCert {
  der: Buffer;
  pem: string;
  /**
   * Lowercase hex, 32 digits: the 16 DER content bytes of the serial. Their first byte is always
   * 0x40–0x7f (positive, no sign padding, nothing to strip), so this is also the integer's value
   * in hex — the same digits `openssl x509 -serial` prints, in lowercase.
   */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

interface PreparedCA {
  profile: SigningProfile;
  issuerDer: Buffer;
  akiExt: Buffer;
  notAfterMs: number;
}
const prepared = new WeakMap<CAKeyPair, PreparedCA>();

/** Per-CA template pieces, computed once: issuer Name DER (exact bytes), AKI, signature algorithm. */
function prepare(ca: CAKeyPair): PreparedCA {
  let p = prepared.get(ca);
  if (p) return p;
  const top = readTLV(ca.certDer, 0);
  const tbsT = children(ca.certDer, top)[0];
  const f = children(ca.certDer, tbsT);
  const off = f[0].tag === 0xa0 ? 1 : 0; // [0] version
  const subject = f[off + 4]; // after serial, signature, issuer, validity
  p = {
    profile: signingProfile(ca.key),
    issuerDer: ca.certDer.subarray(subject.off, subject.end), // exact bytes, so name chaining matches
    akiExt: extension(OID.authorityKeyId, false, seq(tlv(0x80, ca.subjectKeyId))),
    notAfterMs: ca.notAfter.getTime(),
  };
  prepared.set(ca, p);
  return p;
}

const LEAF_SUBJECT_DER = seq(tlv(0x31, seq(oid(OID.organization), utf8("tenet"))));
const BASIC_CONSTRAINTS_LEAF = extension(OID.basicConstraints, true, seq()); // cA DEFAULT FALSE → empty SEQUENCE
const KU_EC = extension(OID.keyUsage, true, keyUsageBits(KeyUsageFlags.digitalSignature));
const KU_RSA = extension(OID.keyUsage, true, keyUsageBits(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment));
const EKU_BOTH = extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth)));
const ATTRIBUTES_OID_DER = oid(ATTRIBUTES_OID);
const SAN_OID_DER = oid(OID.subjectAltName);
const SKI_OID_DER = oid(OID.subjectKeyId);

/** Encodes the attribute extension value; validates keys and values. */
export function encodeAttributes(attrs: Record<string, string>): Buffer {
  // Keys are ASCII (ATTRIBUTE_KEY), so JS string order is UTF-8 byte order.
  const keys = Object.keys(attrs).sort();
  if (keys.length > MAX_ATTRIBUTES) throw new LeafRequestError(`${keys.length} attributes; at most ${MAX_ATTRIBUTES}`);
  const entries: Buffer[] = [];
  for (const k of keys) {
    const v = attrs[k];
    if (!ATTRIBUTE_KEY.test(k)) throw new LeafRequestError(`attribute key ${JSON.stringify(k)} is not a label-style key ([A-Za-z0-9] start and end; '.', '_', '-', '/' inside; at most 317 characters)`);
    if (typeof v !== "string") throw new LeafRequestError(`attribute ${k} has a non-string value`);
    if (SURROGATE.test(v) && LONE_SURROGATE.test(v)) throw new LeafRequestError(`attribute ${k} is not well-formed Unicode`);
    const vb = Buffer.from(v, "utf8");
    if (vb.length > MAX_ATTRIBUTE_VALUE_BYTES) throw new LeafRequestError(`attribute ${k} is ${vb.length} bytes; at most ${MAX_ATTRIBUTE_VALUE_BYTES}`);
    entries.push(seq(tlv(0x0c, Buffer.from(k, "latin1")), tlv(0x0c, vb)));
  }
  return seq(...entries);
}

/**
 * Issues an X509-SVID for a public key: exactly one URI SAN (the SPIFFE ID) then DNS and IP SANs,
 * cA=false, keyUsage digitalSignature (+keyEncipherment for RSA) critical, EKU serverAuth +
 * clientAuth, AKI/SKI, subject O=tenet, the attribute extension, notBefore = now − 1 min,
 * notAfter = min(now + ttl, CA notAfter). Throws LeafRequestError for an unusable request.
 */
export function issueLeaf(ca: CAKeyPair, req: LeafRequest): IssuedCert {
  const p = prepare(ca);
  const now = (req.now ?? new Date()).getTime();
  if (!(req.ttlSeconds > 0) || !Number.isFinite(req.ttlSeconds)) throw new LeafRequestError(`ttlSeconds must be a positive number, got ${req.ttlSeconds}`);
  const notBefore = secondsFloor(now - 60_000);
  const notAfter = secondsFloor(Math.min(now + req.ttlSeconds * 1000, p.notAfterMs));
  if (notAfter.getTime() <= now) throw new LeafRequestError(`the CA expired at ${ca.notAfter.toISOString()}: it cannot issue`);

  const idProblems = spiffeIDProblems(req.spiffeID);
  if (idProblems.length) throw new LeafRequestError(`SPIFFE ID ${JSON.stringify(req.spiffeID)} ${idProblems.join("; ")}`);

  // The key: parseCSR validated it already (and wrote its canonical SPKI), or OpenSSL checks it
  // now. Its type decides keyEncipherment.
  let spki = req.publicKeyDer;
  let keyType = verifiedKeyType(spki);
  if (!keyType) {
    let key: crypto.KeyObject;
    try {
      key = crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
    } catch (err) {
      throw new LeafRequestError(`public key is not a DER SubjectPublicKeyInfo: ${(err as Error).message}`);
    }
    keyType = key.asymmetricKeyType;
    const d = key.asymmetricKeyDetails ?? {};
    const ok = (keyType === "ec" && (d.namedCurve === "prime256v1" || d.namedCurve === "secp384r1")) || (keyType === "rsa" && (d.modulusLength ?? 0) >= MIN_RSA_BITS) || keyType === "ed25519";
    if (!ok) throw new LeafRequestError(`public key ${keyType}${d.namedCurve ? ` ${d.namedCurve}` : d.modulusLength ? `-${d.modulusLength}` : ""} is not accepted: use ECDSA P-256/P-384, RSA ≥ ${MIN_RSA_BITS} or Ed25519`);
    spki = key.export({ type: "spki", format: "der" });
  }

  const names: Buffer[] = [tlv(0x86, Buffer.from(req.spiffeID, "latin1"))];
  const seenDNS = new Set<string>();
  for (const d of req.dnsNames ?? []) {
    if (!DNS_NAME.test(d) || d.length > 253) throw new LeafRequestError(`DNS name ${JSON.stringify(d)} is not a valid host name`);
    const lower = d.toLowerCase();
    if (seenDNS.has(lower)) continue;
    seenDNS.add(lower);
    names.push(tlv(0x82, Buffer.from(lower, "latin1")));
  }
  const seenIP = new Set<string>();
  for (const ip of req.ipAddresses ?? []) {
    const b = ipToBytes(ip);
    if (!b) throw new LeafRequestError(`IP address ${JSON.stringify(ip)} is not a valid IPv4 or IPv6 address`);
    const k = b.toString("hex");
    if (seenIP.has(k)) continue;
    seenIP.add(k);
    names.push(tlv(0x87, b));
  }

  const exts: Buffer[] = [
    BASIC_CONSTRAINTS_LEAF,
    keyType === "rsa" ? KU_RSA : KU_EC,
    EKU_BOTH,
    seq(SKI_OID_DER, octets(octets(keyIdentifier(spki)))),
    p.akiExt,
    seq(SAN_OID_DER, octets(seq(...names))),
  ];
  if (req.attributes && Object.keys(req.attributes).length > 0) exts.push(seq(ATTRIBUTES_OID_DER, octets(encodeAttributes(req.attributes))));

  const serial = newSerial();
  const tbs = seq(
    VERSION_V3,
    integer(serial),
    p.profile.algDer,
    p.issuerDer,
    seq(derTime(notBefore), derTime(notAfter)),
    LEAF_SUBJECT_DER,
    spki,
    tlv(0xa3, seq(...exts)),
  );
  const der = signDer(p.profile, tbs, ca.key);
  return { der, pem: pemEncode("CERTIFICATE", der), serial: serial.toString("hex"), notBefore, notAfter };
}
