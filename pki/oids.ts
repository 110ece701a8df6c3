// Object identifiers and key rules shared by pki/ and the CA (operator/ca/).

/**
 * OID of Tenet's identity-attributes extension. Under the UUID arc 2.25 (ITU-T X.667), from the
 * random UUID 86ff5478-a7d2-4de4-ba6f-319252eb6a1f generated once for this purpose, so it can
 * collide with no one's registered arc. Value: SEQUENCE OF SEQUENCE { key UTF8String, value
 * UTF8String }, sorted by key (UTF-8 byte order), unique keys. See docs/identity.md.
 */
export const ATTRIBUTES_OID = "2.25.179442300415829555370216084526080944671";

/** OIDs by name (dotted decimal). */
export const OID = {
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

/** Named curves and what Tenet makes of them (CSR keys). */
export const CURVES: Record<string, { name: string; verdict: "ok" | "WeakKey" | "UnsupportedKey" }> = {
  "1.2.840.10045.3.1.7": { name: "P-256", verdict: "ok" },
  "1.3.132.0.34": { name: "P-384", verdict: "ok" },
  "1.2.840.10045.3.1.1": { name: "P-192", verdict: "WeakKey" },
  "1.3.132.0.33": { name: "P-224", verdict: "WeakKey" },
  "1.3.132.0.35": { name: "P-521", verdict: "UnsupportedKey" },
  "1.3.132.0.10": { name: "secp256k1", verdict: "UnsupportedKey" },
};

/** The smallest RSA modulus Tenet accepts, for CSR keys and CA keys. */
export const MIN_RSA_BITS = 2048;
