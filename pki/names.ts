// Names in certificates: distinguished names as text, serial numbers as Tenet writes them, and
// IP addresses as SAN bytes and back.
import net from "node:net";
import { AsnConvert } from "@peculiar/asn1-schema";
import type { Name } from "@peculiar/asn1-x509";

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

export function ipToString(bytes: Buffer): string {
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

export function ipToBytes(ip: string): Buffer | undefined {
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

