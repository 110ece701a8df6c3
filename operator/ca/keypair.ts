// The CA's own key pair: a new self-signed CA (createCA) or one loaded from its Secret (loadCA).
import crypto from "node:crypto";
import { AsnParser } from "@peculiar/asn1-schema";
import { KeyUsageFlags, SubjectKeyIdentifier } from "@peculiar/asn1-x509";
import { isCACert, keyUsageFlags, parseCertificate, type ParsedCert } from "../../pki/certificate.ts";
import { derTime, DER_TRUE, extension, integer, keyIdentifier, octets, oid, seq, tlv, utf8 } from "../../pki/der.ts";
import { formatName, normalizeSerial } from "../../pki/names.ts";
import { OID } from "../../pki/oids.ts";
import { pemEncode, splitPEM } from "../../pki/pem.ts";
import { CAError, keyUsageBits, newSerial, secondsFloor, signDer, signingProfile, VERSION_V3, type CAKeyPair } from "./signing.ts";

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
