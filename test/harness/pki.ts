// Test-side PKI helpers: keys and CSRs made the way a workload would, and an HTTPS client
// that trusts exactly the bundle it is given.
import "reflect-metadata";
import crypto from "node:crypto";
import https from "node:https";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto.webcrypto as Crypto);

export type KeySpec = { kind: "ec"; curve: "P-256" | "P-384" } | { kind: "rsa"; bits: number };

/** A PKCS#10 CSR (PEM) with the given SANs, signed by a fresh key of the given kind. */
export async function makeCSR(opts: { uris?: string[]; dnsNames?: string[]; ips?: string[]; key?: KeySpec } = {}) {
  const spec = opts.key ?? { kind: "ec", curve: "P-256" };
  const alg =
    spec.kind === "ec"
      ? { name: "ECDSA", namedCurve: spec.curve, hash: "SHA-256" }
      : { name: "RSASSA-PKCS1-v1_5", modulusLength: spec.bits, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  const keys = (await crypto.webcrypto.subtle.generateKey(alg as any, true, ["sign", "verify"])) as CryptoKeyPair;
  const names = [
    ...(opts.uris ?? []).map((v) => ({ type: "url" as const, value: v })),
    ...(opts.dnsNames ?? []).map((v) => ({ type: "dns" as const, value: v })),
    ...(opts.ips ?? []).map((v) => ({ type: "ip" as const, value: v })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: alg as any,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return { pem: csr.toString("pem"), der: Buffer.from(csr.rawData), keys };
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any;
}

/** One HTTPS request trusting only `ca` (PEM). */
export function httpsRequest(url: string, opts: { method?: string; ca: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? "GET", ca: opts.ca, headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let json: any;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    // A server that refuses an oversized body answers and closes while we are still writing:
    // the write then fails (EPIPE/ECONNRESET) though the answer is on its way. Give it a moment.
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE" || err.code === "ECONNRESET") setTimeout(() => reject(err), 2000);
      else reject(err);
    });
    req.end(opts.body);
  });
}
