// Chain verification: a leaf against a trust bundle of CA certificates (the enforcer's peers,
// the tests). One level: Tenet's CAs sign leaves directly.
import crypto from "node:crypto";
import { readCertIdentity, type CertIdentity } from "./certificate.ts";
import { certificateDer, splitPEM } from "./pem.ts";

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
