// What the CA's two writers (keypair.ts: the CA certificate; leaf.ts: workload certificates)
// share: the CA key pair, the signature algorithm for a key, serial numbers, times.
// Pure and synchronous: DER is encoded from templates and signed with crypto.sign (no WebCrypto,
// no promises, no re-parsing; bench/ca-sign.ts).
import crypto from "node:crypto";
import { bitString, DER_NULL, oid, seq } from "../../pki/der.ts";
import { MIN_RSA_BITS, OID } from "../../pki/oids.ts";

/** The CA certificate or key cannot be used; the message says what is wrong. */
export class CAError extends Error {
  override name = "CAError";
}

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

/** A random positive 16-byte serial whose first byte is 0x40–0x7f: 126 random bits, fixed length, no padding. */
export function newSerial(): Buffer {
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

export const secondsFloor = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

export interface SigningProfile {
  algDer: Buffer; // AlgorithmIdentifier for TBS and Certificate
  hash: string | null;
}

export function signingProfile(key: crypto.KeyObject): SigningProfile {
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (t === "ec" && d.namedCurve === "prime256v1") return { algDer: seq(oid(OID.ecdsaSha256)), hash: "sha256" };
  if (t === "ec" && d.namedCurve === "secp384r1") return { algDer: seq(oid(OID.ecdsaSha384)), hash: "sha384" };
  if (t === "rsa" && (d.modulusLength ?? 0) >= MIN_RSA_BITS) return { algDer: seq(oid(OID.sha256Rsa), DER_NULL), hash: "sha256" };
  if (t === "ed25519") return { algDer: seq(oid(OID.ed25519)), hash: null };
  const what = t === "ec" ? `EC ${d.namedCurve}` : t === "rsa" ? `RSA-${d.modulusLength}` : String(t);
  throw new CAError(`unsupported CA key ${what}: use ECDSA P-256 or P-384, RSA ≥ ${MIN_RSA_BITS} or Ed25519`);
}

export function signDer(profile: SigningProfile, tbs: Buffer, key: crypto.KeyObject): Buffer {
  const sig = crypto.sign(profile.hash, tbs, key);
  return seq(tbs, profile.algDer, bitString(sig));
}

/** [0] EXPLICIT INTEGER 2: X.509 v3. */
export const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/**
 * The KeyUsage BIT STRING for asn1-x509's KeyUsageFlags (bit n = 1 << n, n < 8). In DER, named
 * bit 0 is the most significant bit of the first byte and trailing zero bits are dropped.
 */
export function keyUsageBits(flags: number): Buffer {
  let msbFirst = 0;
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) msbFirst |= 0x80 >> i;
  let unused = 0;
  while (unused < 7 && !(msbFirst & (1 << unused))) unused++;
  return Buffer.from([0x03, 0x02, unused, msbFirst]);
}

