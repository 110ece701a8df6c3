// PEM (RFC 7468): one encoder and one reader for every program (the CA, the enforcer, the CLI).

/** The PEM text of one DER object: base64 in lines of 64 characters, LF line ends. */
export function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString("base64");
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return out + `-----END ${label}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n?([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

export function pemBlocks(text: string): { label: string; der: Buffer }[] {
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
export function looksLikePEM(b: Buffer | string): boolean {
  const head = typeof b === "string" ? b.slice(0, 1024) : b.subarray(0, 1024).toString("latin1");
  return head.includes("-----BEGIN ");
}

/** The first certificate of a PEM text or a DER buffer. */
export function certificateDer(input: string | Buffer): Buffer {
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

