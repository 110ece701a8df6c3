// The X509-SVID leaf rules a certificate breaks, as sentences (the CLI's inspect, tests).
import { AsnParser } from "@peculiar/asn1-schema";
import { ExtendedKeyUsage, KeyUsageFlags } from "@peculiar/asn1-x509";
import { isCACert, keyUsageFlags, parseCertificate, type ParsedCert } from "./certificate.ts";
import { displayOid, readSANs } from "./extensions.ts";
import { OID } from "./oids.ts";
import { certificateDer } from "./pem.ts";
import { spiffeIDProblems } from "./spiffe-id.ts";

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

