// DER: a small writer for the structures Tenet encodes itself (its own certificates, OIDs it
// matches by their bytes) and a reader for input that is already validated (the CA's own
// certificate, an SPKI node:crypto accepted, a CSR's outer header). Untrusted structures are
// parsed by asn1js (see pki/extensions.ts), never by this reader.
import crypto from "node:crypto";

// ---------------------------------------------------------------------------------------------
// Writing

/** One TLV in one allocation (the issuing path builds ~30 of them per certificate). */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
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

export const seq = (...c: Buffer[]) => tlv(0x30, ...c);
export const octets = (b: Buffer) => tlv(0x04, b);
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
export const bitString = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
export const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
export const DER_NULL = Buffer.from([0x05, 0x00]);

export function oid(dotted: string): Buffer {
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
export function integer(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const v = unsigned.subarray(i);
  return tlv(0x02, v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}


/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). Memoised: a burst of issuing repeats the same seconds. */
export function derTime(d: Date): Buffer {
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

export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), DER_TRUE, octets(value)) : seq(oid(id), octets(value));
}


// ---------------------------------------------------------------------------------------------
// Reading

export interface TLV {
  tag: number;
  off: number; // the tag byte
  start: number; // first content byte
  end: number; // one past the last content byte
}

export function readTLV(buf: Buffer, off: number, limit = buf.length): TLV {
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
export function children(buf: Buffer, t: TLV): TLV[] {
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
export function spkiKeyBits(spki: Buffer): Buffer {
  const top = readTLV(spki, 0);
  const [, bits] = children(spki, top);
  if (!bits || bits.tag !== 0x03) throw new Error("SubjectPublicKeyInfo has no BIT STRING");
  return spki.subarray(bits.start + 1, bits.end);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  return sha1(spkiKeyBits(spki));
}

// crypto.hash (Node ≥ 20.12) is the one-shot digest without a Hash object.
const oneShotHash = (crypto as unknown as { hash?: (alg: string, data: Buffer, enc: "buffer") => Buffer }).hash;
export const sha1 = (data: Buffer): Buffer => (oneShotHash ? oneShotHash("sha1", data, "buffer") : crypto.createHash("sha1").update(data).digest());

/** Dotted decimal of a DER OBJECT IDENTIFIER (tag included). */
export function decodeOid(b: Buffer): string {
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
