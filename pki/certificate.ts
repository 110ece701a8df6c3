// Reading a certificate: what it says about its subject (readCertIdentity), tolerant of foreign
// certificates; the parsed form the SVID checks and the CA's loader share.
import { AsnParser } from "@peculiar/asn1-schema";
import { BasicConstraints, Certificate, Extension, KeyUsage } from "@peculiar/asn1-x509";
import { ATTRIBUTES_EXTN_ID, BER_OPTIONS, readAttributes, readSANs } from "./extensions.ts";
import { formatName, normalizeSerial } from "./names.ts";
import { OID } from "./oids.ts";
import { certificateDer } from "./pem.ts";

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

export interface ParsedCert {
  cert: Certificate;
  ext: Map<string, Extension>;
  extCount: Map<string, number>;
}

export function parseCertificate(der: Buffer): ParsedCert {
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

export function keyUsageFlags(ext: Extension | undefined): number | undefined {
  if (!ext) return undefined;
  return AsnParser.parse(ext.extnValue, KeyUsage).toNumber();
}

export function isCACert(p: ParsedCert): boolean {
  const bc = p.ext.get(OID.basicConstraints);
  return bc ? AsnParser.parse(bc.extnValue, BasicConstraints).cA : false;
}


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
