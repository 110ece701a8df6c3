// Reading certificate extensions from untrusted bytes: asn1js (through @peculiar/asn1-schema's
// AsnParser) does the BER parsing with bounded depth and size; this maps the structures Tenet
// reads (GeneralNames, its attribute extension) onto plain values.
import { AsnArray, AsnParser, AsnProp, AsnPropTypes, AsnType, AsnTypeTypes } from "@peculiar/asn1-schema";
import { Extension } from "@peculiar/asn1-x509";
import { octets, oid, seq } from "./der.ts";
import { ipToString } from "./names.ts";
import { ATTRIBUTES_OID } from "./oids.ts";

export interface SANs {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emails: string[];
  /** Other GeneralName kinds (otherName, directoryName, …), by context tag. */
  other: number[];
  critical: boolean;
}

/** The part of an asn1js node we read; asn1js (through AsnParser) did the BER parsing. */
export interface AsnNode {
  idBlock: { tagClass: number; tagNumber: number; isConstructed: boolean };
  valueBlock: { value?: AsnNode[]; valueHexView?: Uint8Array; unusedBits?: number; valueDec?: number };
  valueBeforeDecodeView: Uint8Array;
}

/** Hands back the asn1js tree of a whole structure (an asn1-schema convertible). */
export class AsnTree {
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
export const BER_OPTIONS = { berOptions: { parseEmbedded: false, maxDepth: 32, maxNodes: 4096, copyInput: false } };

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

export function readSANs(ext: { critical: boolean; extnValue?: ArrayBufferView | ArrayBuffer; value?: Buffer } | undefined): SANs {
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
export const ATTRIBUTES_EXTN_ID = AsnParser.parse(seq(oid(ATTRIBUTES_OID), octets(seq())), Extension).extnID;
export const displayOid = (id: string) => (id === ATTRIBUTES_EXTN_ID ? ATTRIBUTES_OID : id);

export function readAttributes(ext: Extension | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!ext) return out;
  for (const e of AsnParser.parse(ext.extnValue, AttributeList)) out[e.key] = e.value;
  return out;
}
