// The certificate core of Tenet's internal CA: create/load the CA, parse and verify CSRs, issue
// X509-SVID leaf certificates, and read/check/verify certificates. Pure and synchronous, no I/O.
//
// Untrusted bytes (CSRs, peer or user certificates) are parsed only by well-tested libraries:
// asn1js through @peculiar/asn1-schema's AsnParser (certificates map onto @peculiar/asn1-x509's
// schemas; a CSR's PKCS#10 shape is read off the asn1js tree, see readCSRTree), and
// node:crypto/OpenSSL for keys and signatures. What we *write* is DER we encode ourselves from a
// per-CA template (issuer Name, AKI, signature algorithm encoded once per CA), then sign
// synchronously with crypto.sign: no WebCrypto, no promises, no re-parsing (bench/ca-sign.ts).
import crypto from "node:crypto";
import net from "node:net";
import {
  AsnArray,
  AsnBooleanConverter,
  AsnConvert,
  AsnIntegerConverter,
  AsnObjectIdentifierConverter,
  AsnParser,
  AsnProp,
  AsnPropTypes,
  AsnType,
  AsnTypeTypes,
} from "@peculiar/asn1-schema";
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  Name,
  SubjectKeyIdentifier,
  Extension,
} from "@peculiar/asn1-x509";

// ---------------------------------------------------------------------------------------------
// Names and constants

/**
 * OID of Tenet's identity-attributes extension. Under the UUID arc 2.25 (ITU-T X.667), from the
 * random UUID 86ff5478-a7d2-4de4-ba6f-319252eb6a1f generated once for this purpose, so it can
 * collide with no one's registered arc. Value: SEQUENCE OF SEQUENCE { key UTF8String, value
 * UTF8String }, sorted by key (UTF-8 byte order), unique keys. See docs/identity.md.
 */
export const ATTRIBUTES_OID = "2.25.179442300415829555370216084526080944671";

/** Subject of every leaf: SPIFFE allows an empty subject or any subject; O=tenet keeps the URI SAN non-critical and tools readable. */
export const LEAF_SUBJECT = "O=tenet";

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ed25519: "1.3.101.112",
  ecdsaSha256: "1.2.840.10045.4.3.2",
  ecdsaSha384: "1.2.840.10045.4.3.3",
  ecdsaSha512: "1.2.840.10045.4.3.4",
  sha256Rsa: "1.2.840.113549.1.1.11",
  sha384Rsa: "1.2.840.113549.1.1.12",
  sha512Rsa: "1.2.840.113549.1.1.13",
  extensionRequest: "1.2.840.113549.1.9.14",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
} as const;

const CURVES: Record<string, { name: string; verdict: "ok" | "WeakKey" | "UnsupportedKey" }> = {
  "1.2.840.10045.3.1.7": { name: "P-256", verdict: "ok" },
  "1.3.132.0.34": { name: "P-384", verdict: "ok" },
  "1.2.840.10045.3.1.1": { name: "P-192", verdict: "WeakKey" },
  "1.3.132.0.33": { name: "P-224", verdict: "WeakKey" },
  "1.3.132.0.35": { name: "P-521", verdict: "UnsupportedKey" },
  "1.3.132.0.10": { name: "secp256k1", verdict: "UnsupportedKey" },
};

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

const MIN_RSA_BITS = 2048;
const DEFAULT_MAX_CSR_BYTES = 16 * 1024;
const MAX_ATTRIBUTES = 64;
const MAX_ATTRIBUTE_VALUE_BYTES = 4096;
const ATTRIBUTE_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,315}[A-Za-z0-9])?$/;

// ---------------------------------------------------------------------------------------------
// Errors

/** The CA certificate or key cannot be used; the message says what is wrong. */
export class CAError extends Error {
  override name = "CAError";
}

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

/** An issuing request that cannot become a certificate (bad SPIFFE ID, SAN, attribute or TTL). */
export class LeafRequestError extends Error {
  override name = "LeafRequestError";
}

// ---------------------------------------------------------------------------------------------
// Types

export interface CAKeyPair {
  certPem: string;
  certDer: Buffer;
  keyPem: string;
  key: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  subject: string;
  /** Lowercase hex of the serial number's value (see normalizeSerial). */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  subjectKeyId: Buffer;
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

export interface CertIdentity {
  spiffeID?: string;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  attributes: Record<string, string>;
  serial: string;
  issuer: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
}

// ---------------------------------------------------------------------------------------------
// DER writing (our own output only)

/** One TLV in one allocation (the issuing path builds ~30 of them per certificate). */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  let len = 0;
  for (let i = 0; i < content.length; i++) len += content[i].length;
  const n = len < 0x80 ? 0 : len < 0x100 ? 1 : len < 0x10000 ? 2 : len < 0x1000000 ? 3 : 4;
  const out = Buffer.allocUnsafe(2 + n + len);
  out[0] = tag;
  if (n === 0) out[1] = len;
  else {
    out[1] = 0x80 | n;
    for (let i = n, v = len; i >= 1; i--, v >>>= 8) out[1 + i] = v & 0xff;
  }
  let off = 2 + n;
  for (let i = 0; i < content.length; i++) {
    out.set(content[i], off);
    off += content[i].length;
  }
  return out;
}

const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const bitString = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
const DER_NULL = Buffer.from([0x05, 0x00]);

function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((a) => BigInt(a));
  const out: number[] = [];
  const push = (v: bigint) => {
    const bytes = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) bytes.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...bytes);
  };
  push(arcs[0] * 40n + arcs[1]);
  for (const a of arcs.slice(2)) push(a);
  return tlv(0x06, Buffer.from(out));
}

/** Positive INTEGER from unsigned big-endian bytes. */
function integer(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  return tlv(0x02, v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). Memoised: a burst of issuing repeats the same seconds. */
function derTime(d: Date): Buffer {
  const ms = d.getTime();
  let b = timeMemo.get(ms);
  if (!b) {
    if (timeMemo.size > 64) timeMemo.clear();
    timeMemo.set(ms, (b = encodeTime(d)));
  }
  return b;
}
const timeMemo = new Map<number, Buffer>();

function encodeTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const p = (n: number) => String(n).padStart(2, "0");
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, "latin1"));
  return tlv(0x18, Buffer.from(`${String(y).padStart(4, "0")}${rest}`, "latin1"));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), DER_TRUE, octets(value)) : seq(oid(id), octets(value));
}

/** A random positive 16-byte serial whose first byte is 0x40–0x7f: 126 random bits, fixed length, no padding. */
function newSerial(): Buffer {
  // One CSPRNG call per 256 serials: randomBytes(16) per certificate costs more than the encoding.
  if (serialPoolOffset + 16 > serialPool.length) {
    crypto.randomFillSync(serialPool);
    serialPoolOffset = 0;
  }
  const s = Buffer.from(serialPool.subarray(serialPoolOffset, serialPoolOffset + 16));
  serialPool.fill(0, serialPoolOffset, serialPoolOffset + 16); // never hand out the same bytes twice
  serialPoolOffset += 16;
  s[0] = (s[0] & 0x3f) | 0x40;
  return s;
}
const serialPool = Buffer.alloc(16 * 256);
let serialPoolOffset = serialPool.length;

const secondsFloor = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString("base64");
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return out + `-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// DER reading of input that is already validated (our CA cert, an SPKI node:crypto accepted),
// and of a CSR's outer header only, to say "truncated" or "trailing bytes" before asn1js parses it.

interface TLV {
  tag: number;
  off: number; // the tag byte
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readTLV(buf: Buffer, off: number, limit = buf.length): TLV {
  if (off + 2 > limit) throw new Error("truncated DER header");
  const tag = buf[off];
  let len = buf[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("unsupported DER length encoding");
    if (start + n > limit) throw new Error("truncated DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i];
    start += n;
  }
  return { tag, off, start, end: start + len };
}

/** The children of a constructed TLV. */
function children(buf: Buffer, t: TLV): TLV[] {
  const out: TLV[] = [];
  for (let off = t.start; off < t.end; ) {
    const c = readTLV(buf, off, t.end);
    if (c.end > t.end) throw new Error("DER element overruns its parent");
    out.push(c);
    off = c.end;
  }
  return out;
}

/** The subjectPublicKey BIT STRING contents (without the unused-bits byte) of an SPKI. */
function spkiKeyBits(spki: Buffer): Buffer {
  const top = readTLV(spki, 0);
  const [, bits] = children(spki, top);
  if (!bits || bits.tag !== 0x03) throw new Error("SubjectPublicKeyInfo has no BIT STRING");
  return spki.subarray(bits.start + 1, bits.end);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): Buffer {
  return sha1(spkiKeyBits(spki));
}

// crypto.hash (Node ≥ 20.12) is the one-shot digest without a Hash object.
const oneShotHash = (crypto as unknown as { hash?: (alg: string, data: Buffer, enc: "buffer") => Buffer }).hash;
const sha1 = (data: Buffer): Buffer => (oneShotHash ? oneShotHash("sha1", data, "buffer") : crypto.createHash("sha1").update(data).digest());

// ---------------------------------------------------------------------------------------------
// PEM

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n?([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const out: { label: string; der: Buffer }[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== m[3]) continue;
    const body = m[2].replace(/\s+/g, "");
    // Headers (Proc-Type etc., RFC 1421) or non-base64 text: not a block we can use.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) continue;
    out.push({ label: m[1], der: Buffer.from(body, "base64") });
  }
  return out;
}

/** Every CERTIFICATE block of a PEM text, as DER, in order. */
export function splitPEM(pem: string): Buffer[] {
  return pemBlocks(pem)
    .filter((b) => b.label === "CERTIFICATE")
    .map((b) => b.der);
}

/** PEM text starts with "-----BEGIN " (RFC 7468 allows explanatory text before it). */
function looksLikePEM(b: Buffer | string): boolean {
  const head = typeof b === "string" ? b.slice(0, 1024) : b.subarray(0, 1024).toString("latin1");
  return head.includes("-----BEGIN ");
}

/** The first certificate of a PEM text or a DER buffer. */
function certificateDer(input: string | Buffer): Buffer {
  if (typeof input === "string" || looksLikePEM(input)) {
    const text = typeof input === "string" ? input : input.toString("latin1");
    const certs = splitPEM(text);
    if (certs.length === 0) {
      const other = pemBlocks(text).map((b) => b.label);
      throw new Error(other.length ? `no CERTIFICATE PEM block (found ${other.join(", ")})` : "no PEM CERTIFICATE block found");
    }
    return certs[0];
  }
  if (input[0] !== 0x30) throw new Error("neither PEM (no -----BEGIN CERTIFICATE----- line) nor DER (no leading SEQUENCE)");
  return input;
}

// ---------------------------------------------------------------------------------------------
// Reading names, serials, extensions

const NAME_KEYS: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.5": "serialNumber",
  "2.5.4.45": "x500UniqueIdentifier",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
};

/** "CN=Tenet Workload CA, O=tenet" in certificate order (RFC 4514 escaping of specials); "" for an empty name. */
export function formatName(name: Name): string {
  const parts: string[] = [];
  for (const rdn of name) {
    const atvs = rdn.map((atv) => {
      let v: string;
      try {
        v = atv.value.toString();
      } catch {
        v = "#" + Buffer.from(AsnConvert.serialize(atv.value)).toString("hex");
      }
      v = v.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ");
      return `${NAME_KEYS[atv.type] ?? atv.type}=${v}`;
    });
    parts.push(atvs.join("+"));
  }
  return parts.join(", ");
}

/** Lowercase hex of the serial's integer value: DER sign padding (a leading 0x00) removed. */
export function normalizeSerial(contents: ArrayBuffer | Buffer): string {
  let b = Buffer.from(contents as ArrayBuffer);
  while (b.length > 1 && b[0] === 0) b = b.subarray(1);
  return b.toString("hex");
}

function ipToString(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length === 16) {
    const groups: number[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
    // RFC 5952: compress the longest run (≥ 2) of zero groups, the first one on ties.
    let best = -1;
    let bestLen = 0;
    for (let i = 0; i < 8; ) {
      if (groups[i] !== 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
      i = j;
    }
    const hex = groups.map((g) => g.toString(16));
    if (best < 0) return hex.join(":");
    return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
  }
  return `<invalid ${bytes.length}-byte IP address>`;
}

function ipToBytes(ip: string): Buffer | undefined {
  const kind = net.isIP(ip);
  if (kind === 4) return Buffer.from(ip.split(".").map(Number));
  if (kind !== 6 || ip.includes("%")) return undefined;
  let head = ip;
  let v4: number[] = [];
  const lastColon = ip.lastIndexOf(":");
  if (ip.slice(lastColon + 1).includes(".")) {
    v4 = ip.slice(lastColon + 1).split(".").map(Number);
    head = ip.slice(0, lastColon + 1) + "0:0"; // placeholder groups, replaced below
  }
  const [left, right] = head.includes("::") ? head.split("::") : [head, undefined];
  const l = left ? left.split(":") : [];
  const r = right ? right.split(":") : [];
  const groups = right === undefined ? l : [...l, ...Array(8 - l.length - r.length).fill("0"), ...r];
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (v4.length === 4) Buffer.from(v4).copy(out, 12);
  return out;
}

interface SANs {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emails: string[];
  /** Other GeneralName kinds (otherName, directoryName, …), by context tag. */
  other: number[];
  critical: boolean;
}

/** The part of an asn1js node we read; asn1js (through AsnParser) did the BER parsing. */
interface AsnNode {
  idBlock: { tagClass: number; tagNumber: number; isConstructed: boolean };
  valueBlock: { value?: AsnNode[]; valueHexView?: Uint8Array; unusedBits?: number; valueDec?: number };
  valueBeforeDecodeView: Uint8Array;
}

/** Hands back the asn1js tree of a whole structure (an asn1-schema convertible). */
class AsnTree {
  node!: AsnNode;
  fromASN(node: AsnNode): this {
    this.node = node;
    return this;
  }
  toASN(): never {
    throw new Error("AsnTree only reads");
  }
}

/**
 * asn1js limits for untrusted input: no speculative parsing inside OCTET/BIT STRINGs (we parse
 * what we need explicitly), bounded depth and node count.
 */
const BER_OPTIONS = { berOptions: { parseEmbedded: false, maxDepth: 32, maxNodes: 4096, copyInput: false } };

/**
 * GeneralNames ::= SEQUENCE OF GeneralName, as an asn1-schema converter. asn1js parses the bytes
 * (lengths, tags, bounds); this maps the CHOICE by its context tag, which asn1-schema's generic
 * CHOICE matching does ~5× slower by trying all nine alternatives in turn.
 */
class GeneralNamesReader {
  names: { tag: number; value?: Buffer }[] = [];
  fromASN(node: AsnNode): this {
    if (node.idBlock.tagClass !== 1 || node.idBlock.tagNumber !== 16 || !node.idBlock.isConstructed) throw new Error("GeneralNames is not a SEQUENCE");
    for (const gn of node.valueBlock.value ?? []) {
      if (gn.idBlock.tagClass !== 3 || gn.idBlock.tagNumber > 8) throw new Error("GeneralName has an unknown tag");
      const primitive = !gn.idBlock.isConstructed;
      // rfc822Name [1], dNSName [2], URI [6]: IA5String; iPAddress [7]: OCTET STRING — all IMPLICIT, so primitive.
      if ([1, 2, 6, 7].includes(gn.idBlock.tagNumber) && !primitive) throw new Error(`GeneralName [${gn.idBlock.tagNumber}] must be primitive`);
      this.names.push({ tag: gn.idBlock.tagNumber, value: primitive ? Buffer.from(gn.valueBlock.valueHexView ?? []) : undefined });
    }
    if (this.names.length === 0) throw new Error("GeneralNames is empty");
    return this;
  }
  toASN(): never {
    throw new Error("GeneralNamesReader only reads");
  }
}

function ia5(b: Buffer, what: string): string {
  for (const c of b) if (c > 0x7e || c < 0x20) throw new Error(`${what} has a byte outside printable ASCII`);
  return b.toString("latin1");
}

function readSANs(ext: { critical: boolean; extnValue?: ArrayBufferView | ArrayBuffer; value?: Buffer } | undefined): SANs {
  const out: SANs = { uris: [], dnsNames: [], ipAddresses: [], emails: [], other: [], critical: !!ext?.critical };
  if (!ext) return out;
  const bytes = ext.value ?? (ext.extnValue as ArrayBuffer);
  for (const { tag, value } of AsnParser.parse(bytes, GeneralNamesReader, BER_OPTIONS).names) {
    if (tag === 6) out.uris.push(ia5(value!, "a URI SAN"));
    else if (tag === 2) out.dnsNames.push(ia5(value!, "a DNS SAN"));
    else if (tag === 1) out.emails.push(ia5(value!, "an email SAN"));
    else if (tag === 7) {
      if (value!.length !== 4 && value!.length !== 16) throw new Error(`an IP SAN has ${value!.length} bytes (4 or 16 expected)`);
      out.ipAddresses.push(ipToString(value!));
    } else out.other.push(tag);
  }
  return out;
}


// Tenet's attribute extension, as asn1-schema classes (decorators applied as plain calls).
class AttributeEntry {
  key = "";
  value = "";
}
AsnType({ type: AsnTypeTypes.Sequence })(AttributeEntry);
AsnProp({ type: AsnPropTypes.Utf8String })(AttributeEntry.prototype, "key");
AsnProp({ type: AsnPropTypes.Utf8String })(AttributeEntry.prototype, "value");
class AttributeList extends AsnArray<AttributeEntry> {}
AsnType({ type: AsnTypeTypes.Sequence, itemType: AttributeEntry })(AttributeList);

/**
 * asn1js renders OID arcs above 2^53 as "{hex}" rather than in decimal, so the attribute
 * extension's ID is whatever the same parser makes of our own encoding of ATTRIBUTES_OID.
 */
const ATTRIBUTES_EXTN_ID = AsnParser.parse(seq(oid(ATTRIBUTES_OID), octets(seq())), Extension).extnID;
const displayOid = (id: string) => (id === ATTRIBUTES_EXTN_ID ? ATTRIBUTES_OID : id);

function readAttributes(ext: Extension | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!ext) return out;
  for (const e of AsnParser.parse(ext.extnValue, AttributeList)) out[e.key] = e.value;
  return out;
}

interface ParsedCert {
  cert: Certificate;
  ext: Map<string, Extension>;
  extCount: Map<string, number>;
}

function parseCertificate(der: Buffer): ParsedCert {
  let cert: Certificate;
  try {
    cert = AsnParser.parse(der, Certificate, BER_OPTIONS);
  } catch (err) {
    throw new Error(`malformed certificate: ${(err as Error).message}`);
  }
  const ext = new Map<string, Extension>();
  const extCount = new Map<string, number>();
  for (const e of cert.tbsCertificate.extensions ?? []) {
    if (!ext.has(e.extnID)) ext.set(e.extnID, e);
    extCount.set(e.extnID, (extCount.get(e.extnID) ?? 0) + 1);
  }
  return { cert, ext, extCount };
}

function keyUsageFlags(ext: Extension | undefined): number | undefined {
  if (!ext) return undefined;
  return AsnParser.parse(ext.extnValue, KeyUsage).toNumber();
}

function isCACert(p: ParsedCert): boolean {
  const bc = p.ext.get(OID.basicConstraints);
  return bc ? AsnParser.parse(bc.extnValue, BasicConstraints).cA : false;
}

// ---------------------------------------------------------------------------------------------
// The CA

interface SigningProfile {
  algDer: Buffer; // AlgorithmIdentifier for TBS and Certificate
  hash: string | null;
}

function signingProfile(key: crypto.KeyObject): SigningProfile {
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (t === "ec" && d.namedCurve === "prime256v1") return { algDer: seq(oid(OID.ecdsaSha256)), hash: "sha256" };
  if (t === "ec" && d.namedCurve === "secp384r1") return { algDer: seq(oid(OID.ecdsaSha384)), hash: "sha384" };
  if (t === "rsa" && (d.modulusLength ?? 0) >= MIN_RSA_BITS) return { algDer: seq(oid(OID.sha256Rsa), DER_NULL), hash: "sha256" };
  if (t === "ed25519") return { algDer: seq(oid(OID.ed25519)), hash: null };
  const what = t === "ec" ? `EC ${d.namedCurve}` : t === "rsa" ? `RSA-${d.modulusLength}` : String(t);
  throw new CAError(`unsupported CA key ${what}: use ECDSA P-256 or P-384, RSA ≥ ${MIN_RSA_BITS} or Ed25519`);
}

function signDer(profile: SigningProfile, tbs: Buffer, key: crypto.KeyObject): Buffer {
  const sig = crypto.sign(profile.hash, tbs, key);
  return seq(tbs, profile.algDer, bitString(sig));
}

/** A new self-signed ECDSA P-256 CA: cA=true pathLen 0, keyCertSign+cRLSign, both critical. */
export function createCA(opts: { commonName: string; validitySeconds: number; now?: Date }): CAKeyPair {
  if (!opts.commonName || Buffer.byteLength(opts.commonName) > 64) throw new CAError("CA commonName must be 1–64 bytes (RFC 5280 ub-common-name)");
  if (!(opts.validitySeconds > 0)) throw new CAError(`CA validitySeconds must be positive, got ${opts.validitySeconds}`);
  const now = (opts.now ?? new Date()).getTime();
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const ski = keyIdentifier(spki);
  const profile = signingProfile(privateKey);
  const name = seq(tlv(0x31, seq(oid(OID.commonName), utf8(opts.commonName))));
  const serial = newSerial();
  const notBefore = secondsFloor(now - 5 * 60_000); // clock skew between replicas and workloads
  const notAfter = secondsFloor(now + opts.validitySeconds * 1000);
  const tbs = seq(
    VERSION_V3,
    integer(serial),
    profile.algDer,
    name,
    seq(derTime(notBefore), derTime(notAfter)),
    name,
    spki,
    tlv(
      0xa3,
      seq(
        extension(OID.basicConstraints, true, seq(DER_TRUE, tlv(0x02, Buffer.from([0])))),
        extension(OID.keyUsage, true, keyUsageBits(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
        extension(OID.subjectKeyId, false, octets(ski)),
      ),
    ),
  );
  const certDer = signDer(profile, tbs, privateKey);
  return {
    certPem: pemEncode("CERTIFICATE", certDer),
    certDer,
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    key: privateKey,
    publicKey,
    subject: `CN=${opts.commonName}`,
    serial: serial.toString("hex"),
    notBefore,
    notAfter,
    subjectKeyId: ski,
  };
}

const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/**
 * The KeyUsage BIT STRING for asn1-x509's KeyUsageFlags (bit n = 1 << n, n < 8). In DER, named
 * bit 0 is the most significant bit of the first byte and trailing zero bits are dropped.
 */
function keyUsageBits(flags: number): Buffer {
  let msbFirst = 0;
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) msbFirst |= 0x80 >> i;
  let unused = 0;
  while (unused < 7 && !(msbFirst & (1 << unused))) unused++;
  return Buffer.from([0x03, 0x02, unused, msbFirst]);
}

/**
 * Loads a CA from PEM. Throws CAError naming what is wrong: not PEM, not a CA certificate, key
 * does not match, expired (at opts.now, default the current time), unsupported key.
 */
export function loadCA(certPem: string, keyPem: string, opts: { now?: Date } = {}): CAKeyPair {
  if (typeof certPem !== "string" || typeof keyPem !== "string") throw new CAError("CA certificate and key must be PEM text");
  const blocks = splitPEM(certPem);
  if (blocks.length === 0) throw new CAError("CA certificate is not PEM: no -----BEGIN CERTIFICATE----- block");
  const certDer = blocks[0];
  let x: crypto.X509Certificate;
  let parsed: ParsedCert;
  try {
    x = new crypto.X509Certificate(certDer);
    parsed = parseCertificate(certDer);
  } catch (err) {
    throw new CAError(`CA certificate does not parse: ${(err as Error).message}`);
  }
  if (!isCACert(parsed)) throw new CAError(`certificate ${x.subject.replace(/\n/g, ", ")} is not a CA certificate (basicConstraints cA is not true)`);
  const ku = keyUsageFlags(parsed.ext.get(OID.keyUsage));
  if (ku !== undefined && !(ku & KeyUsageFlags.keyCertSign)) throw new CAError("CA certificate's keyUsage lacks keyCertSign");
  if (!/-----BEGIN (EC |RSA |ENCRYPTED )?PRIVATE KEY-----/.test(keyPem)) throw new CAError("CA key is not PEM: no -----BEGIN PRIVATE KEY----- block");
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw new CAError(`CA key does not parse: ${(err as Error).message}`);
  }
  signingProfile(key); // throws CAError for unsupported keys
  if (!x.checkPrivateKey(key)) throw new CAError("CA key does not match the CA certificate's public key");
  const tbs = parsed.cert.tbsCertificate;
  const notBefore = tbs.validity.notBefore.getTime();
  const notAfter = tbs.validity.notAfter.getTime();
  const now = opts.now ?? new Date();
  if (notAfter.getTime() <= now.getTime()) throw new CAError(`CA certificate expired at ${notAfter.toISOString()}`);
  const publicKey = crypto.createPublicKey(key);
  const skiExt = parsed.ext.get(OID.subjectKeyId);
  const subjectKeyId = skiExt
    ? Buffer.from(AsnParser.parse(skiExt.extnValue, SubjectKeyIdentifier).buffer)
    : keyIdentifier(publicKey.export({ type: "spki", format: "der" }));
  return {
    certPem: pemEncode("CERTIFICATE", certDer),
    certDer,
    keyPem,
    key,
    publicKey,
    subject: formatName(tbs.subject),
    serial: normalizeSerial(tbs.serialNumber),
    notBefore,
    notAfter,
    subjectKeyId,
  };
}

// ---------------------------------------------------------------------------------------------
// CSRs

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

function decodeOid(b: Buffer): string {
  const t = readTLV(b, 0);
  if (t.end !== b.length) throw new Error("bad OID");
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = t.start; i < t.end; i++) {
    v = (v << 7n) | BigInt(b[i] & 0x7f);
    if (!(b[i] & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs].join(".");
}

// ---------------------------------------------------------------------------------------------
// Issuing

/** Problems with a SPIFFE ID as a leaf identity (SPIFFE-ID.md, X509-SVID §3.1); [] when valid. */
export function spiffeIDProblems(id: string): string[] {
  if (id.length <= 2048 && SPIFFE_ID_COMMON.test(id) && !DOT_SEGMENT.test(id)) return [];
  const p: string[] = [];
  if (Buffer.byteLength(id) > 2048) p.push("is longer than 2048 bytes");
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/.exec(id);
  if (!m) return [...p, "is not a URI of the form spiffe://<trust-domain>/<path>"];
  const [, scheme, authority, path, query, fragment] = m;
  if (scheme !== "spiffe") p.push(`has scheme "${scheme}", not "spiffe"`);
  if (authority === "") p.push("has an empty trust domain");
  else if (/[@:]/.test(authority)) p.push("has userinfo or a port in its trust domain");
  else if (!/^[a-z0-9._-]+$/.test(authority)) p.push(`has trust domain "${authority}" with characters other than lowercase letters, digits, '.', '-', '_'`);
  if (query !== undefined) p.push("has a query");
  if (fragment !== undefined) p.push("has a fragment");
  if (path === "" || path === "/") p.push("has no path (a trust-domain ID cannot name a workload)");
  else {
    const segs = path.split("/").slice(1);
    if (segs.some((s) => s === "")) p.push(path.endsWith("/") ? "has a trailing '/'" : "has an empty path segment");
    if (segs.some((s) => s === "." || s === "..")) p.push("has a '.' or '..' path segment");
    if (segs.some((s) => s !== "" && !/^[A-Za-z0-9._-]+$/.test(s))) p.push("has path characters other than letters, digits, '.', '-', '_'");
  }
  return p;
}

/** The shape of every valid leaf SPIFFE ID (ASCII only, so length is bytes); the slow path explains failures. */
const SPIFFE_ID_COMMON = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;
const DOT_SEGMENT = /\/\.\.?(\/|$)/;
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
  let keyType = verifiedKeys.get(spki);
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

// ---------------------------------------------------------------------------------------------
// Reading and checking certificates

/**
 * What a certificate says about its subject. Tolerant: reads any well-formed certificate (the
 * first of several PEM blocks); throws only when there is no certificate to read.
 */
export function readCertIdentity(pemOrDer: string | Buffer): CertIdentity {
  const { cert, ext } = parseCertificate(certificateDer(pemOrDer));
  const tbs = cert.tbsCertificate;
  const sans = readSANs(ext.get(OID.subjectAltName));
  let attributes: Record<string, string> = {};
  try {
    attributes = readAttributes(ext.get(ATTRIBUTES_EXTN_ID));
  } catch {
    attributes = {}; // tolerant: a foreign certificate with a broken attribute extension
  }
  let isCA = false;
  try {
    isCA = isCACert({ cert, ext, extCount: new Map() });
  } catch {
    isCA = false;
  }
  return {
    spiffeID: sans.uris.find((u) => u.toLowerCase().startsWith("spiffe://")),
    uris: sans.uris,
    dnsNames: sans.dnsNames,
    ipAddresses: sans.ipAddresses,
    attributes,
    serial: normalizeSerial(tbs.serialNumber),
    issuer: formatName(tbs.issuer),
    subject: formatName(tbs.subject),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    isCA,
  };
}

/**
 * The X509-SVID leaf rules (A1–A5, F, B1–B5 of /work/shared/samples/x509-svid-rules.md) this
 * certificate breaks, as sentences; [] when it conforms. No validity-time check (verifyChain's job).
 */
export function svidViolations(pemOrDer: string | Buffer): string[] {
  let p: ParsedCert;
  try {
    p = parseCertificate(certificateDer(pemOrDer));
  } catch (err) {
    return [`the certificate cannot be read: ${(err as Error).message}`];
  }
  const v: string[] = [];
  const guard = (rule: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      v.push(`${rule} cannot be checked: ${(err as Error).message}`);
    }
  };
  for (const [id, n] of p.extCount) if (n > 1) v.push(`extension ${displayOid(id)} appears ${n} times; RFC 5280 allows each extension once`);

  guard("the URI SAN", () => {
    const sanExt = p.ext.get(OID.subjectAltName);
    const sans = readSANs(sanExt);
    if (sans.uris.length === 0) v.push("the certificate has no URI SAN: an X509-SVID must carry exactly one SPIFFE ID (A1)");
    else if (sans.uris.length > 1) v.push(`the certificate has ${sans.uris.length} URI SANs: an X509-SVID must carry exactly one SPIFFE ID (A2)`);
    else {
      const problems = spiffeIDProblems(sans.uris[0]);
      for (const pr of problems) v.push(`the SPIFFE ID ${sans.uris[0]} ${pr} (A3/A4/F)`);
    }
    if (p.cert.tbsCertificate.subject.length === 0 && sanExt && !sanExt.critical) v.push("the subject is empty but the SAN extension is not critical (A5, RFC 5280 §4.1.2.6)");
  });
  guard("basicConstraints", () => {
    if (isCACert(p)) v.push("the leaf certificate has basicConstraints cA=true; a leaf SVID must not be a CA (B1)");
  });
  guard("keyUsage", () => {
    const kuExt = p.ext.get(OID.keyUsage);
    const ku = keyUsageFlags(kuExt);
    if (ku === undefined) {
      v.push("the certificate has no keyUsage extension; an X509-SVID must have one, marked critical (B2)");
      return;
    }
    if (!kuExt!.critical) v.push("the keyUsage extension is not marked critical (B2)");
    if (!(ku & KeyUsageFlags.digitalSignature)) v.push("keyUsage lacks digitalSignature (B3)");
    if (ku & KeyUsageFlags.keyCertSign) v.push("keyUsage includes keyCertSign, which a leaf SVID must not have (B4)");
    if (ku & KeyUsageFlags.cRLSign) v.push("keyUsage includes cRLSign, which a leaf SVID must not have (B4)");
  });
  guard("extKeyUsage", () => {
    const ekuExt = p.ext.get(OID.extKeyUsage);
    if (!ekuExt) return; // SHOULD, not MUST
    const eku = AsnParser.parse(ekuExt.extnValue, ExtendedKeyUsage);
    const missing = [eku.includes(OID.serverAuth) ? "" : "serverAuth", eku.includes(OID.clientAuth) ? "" : "clientAuth"].filter(Boolean);
    if (missing.length) v.push(`extKeyUsage is present but lacks ${missing.join(" and ")}; it must include both (B5)`);
  });
  return v;
}

/**
 * Verifies that the leaf is signed by one of the bundle's CA certificates and that both are valid
 * at `at` (default now); a CA certificate is refused as a leaf. On success `ca` is the issuing
 * CA's serial (lowercase hex, as CAKeyPair.serial). One level only: Tenet's CAs sign leaves directly.
 */
export function verifyChain(leafPemOrDer: string | Buffer, bundlePem: string, at: Date = new Date()): { ok: true; ca: string } | { ok: false; reason: string } {
  let leaf: crypto.X509Certificate;
  let leafId: CertIdentity;
  try {
    const der = certificateDer(leafPemOrDer);
    leaf = new crypto.X509Certificate(der);
    leafId = readCertIdentity(der);
  } catch (err) {
    return { ok: false, reason: `the certificate cannot be read: ${(err as Error).message}` };
  }
  if (leafId.isCA) return { ok: false, reason: "the certificate is a CA certificate, which is never a workload identity (X509-SVID §3.2)" };
  const bundle = splitPEM(bundlePem);
  if (bundle.length === 0) return { ok: false, reason: "the trust bundle has no CERTIFICATE blocks" };
  const t = at.getTime();
  let issuerExpired: string | undefined;
  for (const caDer of bundle) {
    let ca: crypto.X509Certificate;
    let caId: CertIdentity;
    try {
      ca = new crypto.X509Certificate(caDer);
      caId = readCertIdentity(caDer);
    } catch {
      continue; // one unreadable bundle entry must not hide the others
    }
    if (!caId.isCA || !leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) continue;
    if (t < caId.notBefore.getTime() || t > caId.notAfter.getTime()) {
      issuerExpired = `the issuing CA ${caId.subject} (serial ${caId.serial}) is not valid at ${at.toISOString()} (valid ${caId.notBefore.toISOString()} to ${caId.notAfter.toISOString()})`;
      continue;
    }
    if (t < leafId.notBefore.getTime()) return { ok: false, reason: `the certificate is not valid before ${leafId.notBefore.toISOString()}` };
    if (t > leafId.notAfter.getTime()) return { ok: false, reason: `the certificate expired at ${leafId.notAfter.toISOString()}` };
    return { ok: true, ca: caId.serial };
  }
  return { ok: false, reason: issuerExpired ?? `the certificate (issuer ${leafId.issuer}) is not signed by any of the ${bundle.length} CA certificate(s) in the trust bundle` };
}
