// The enforcer's own certificate: a P-256 key generated in memory (it never leaves the process),
// a PKCS#10 CSR written with pki/der.ts (no X.509 library in the sidecar: less memory), the certificate from the operator's CSR endpoint with
// the pod's projected token, renewed at renewAfter (a fresh key each time) with backoff on
// failure. Listeners learn of a new certificate through onChange and swap their TLS context.
import crypto from "node:crypto";
import type { Logger } from "../common/logger.ts";
import { readCertIdentity } from "../pki/certificate.ts";
import { bitString, oid, seq, tlv, utf8 } from "../pki/der.ts";
import { OID } from "../pki/oids.ts";
import { pemEncode } from "../pki/pem.ts";
import { operatorError, type OperatorClient } from "./operator-client.ts";

export interface Credentials {
  keyPem: string;
  certPem: string;
  spiffeID: string;
  serial: string;
  notAfter: Date;
  renewAfter: Date;
  attributes: Record<string, string>;
}

/**
 * A fresh P-256 key and a PKCS#10 CSR for it (RFC 2986: version 0, subject CN, the SPKI, no
 * attributes, signed ECDSA with SHA-256). The subject is informative only (the CA decides names).
 */
export async function newKeyAndCSR(commonName: string): Promise<{ keyPem: string; csrPem: string }> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const cn = commonName.replace(/[,+="\\<>;#]/g, "_");
  const subject = seq(tlv(0x31, seq(oid(OID.commonName), utf8(cn))));
  const info = seq(tlv(0x02, Buffer.from([0])), subject, publicKey.export({ type: "spki", format: "der" }), tlv(0xa0));
  const signature = crypto.sign("sha256", info, privateKey); // DER ECDSA-Sig-Value
  const csr = seq(info, seq(oid(OID.ecdsaSha256)), bitString(signature));
  return { keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string, csrPem: pemEncode("CERTIFICATE REQUEST", csr) };
}

/** Next retry delay: 1 s doubling to 30 s, with ±20 % jitter so a fleet does not retry in step. */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** When to renew: the operator's renewAfter, never earlier than 1 s from now nor later than expiry. */
export function renewDelayMs(renewAfter: Date, notAfter: Date, now: number): number {
  const target = Math.min(renewAfter.getTime(), notAfter.getTime() - 1000);
  return Math.min(Math.max(1000, target - now), 2 ** 31 - 1);
}

export class IdentityManager {
  private current?: Credentials;
  private timer?: NodeJS.Timeout;
  private listeners: ((c: Credentials) => void)[] = [];
  private stopped = false;

  constructor(
    private readonly client: OperatorClient,
    private readonly certificatesURL: string,
    private readonly podName: string,
    private readonly log: Logger,
    private readonly onResult: (result: "issued" | "failed", reason?: string) => void = () => {},
  ) {}

  get credentials() {
    return this.current;
  }

  onChange(fn: (c: Credentials) => void) {
    this.listeners.push(fn);
  }

  /** Obtains the first certificate, retrying with backoff until it succeeds or stop() is called. */
  async start(): Promise<Credentials> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const c = await this.obtain();
        this.schedule(c);
        return c;
      } catch (err) {
        const delay = backoffMs(attempt);
        this.log.warn({ err: (err as Error).message, reason: (err as { reason?: string }).reason, retryInMs: delay }, "could not obtain a certificate; retrying");
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
    throw new Error("stopped before a certificate was obtained");
  }

  stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Replace the certificate now (e.g. it was revoked); failures back off as for renewals. */
  renewNow() {
    if (this.stopped || !this.current) return;
    if (this.timer) clearTimeout(this.timer);
    void this.renew(1);
  }

  private schedule(c: Credentials, attempt = 0) {
    if (this.stopped) return;
    const delay = attempt === 0 ? renewDelayMs(c.renewAfter, c.notAfter, Date.now()) : backoffMs(attempt - 1);
    this.timer = setTimeout(() => void this.renew(attempt), delay);
    this.timer.unref();
  }

  private async renew(attempt: number) {
    try {
      const c = await this.obtain();
      this.schedule(c);
    } catch (err) {
      const cur = this.current!;
      this.log.error(
        { err: (err as Error).message, reason: (err as { reason?: string }).reason, attempt: attempt + 1, notAfter: cur.notAfter.toISOString() },
        cur.notAfter.getTime() < Date.now() ? "certificate renewal failed and the certificate has EXPIRED; retrying" : "certificate renewal failed; retrying",
      );
      this.schedule(cur, attempt + 1);
    }
  }

  private async obtain(): Promise<Credentials> {
    const { keyPem, csrPem } = await newKeyAndCSR(this.podName);
    const res = await this.client.post(this.certificatesURL, { csr: csrPem });
    if (res.status !== 200) {
      const e = operatorError("the CA refused the certificate request", res);
      this.onResult("failed", e.reason);
      throw e;
    }
    const body = JSON.parse(res.body) as { certificate: string; spiffeID: string; serial: string; notAfter: string; renewAfter: string };
    const id = readCertIdentity(body.certificate);
    // The certificate must hold our key: a mix-up would make every handshake fail later.
    const certKey = new crypto.X509Certificate(body.certificate).publicKey.export({ type: "spki", format: "der" });
    const ourKey = crypto.createPublicKey(keyPem).export({ type: "spki", format: "der" });
    if (!certKey.equals(ourKey)) throw new Error("the CA returned a certificate for a different key");
    const c: Credentials = {
      keyPem,
      certPem: body.certificate,
      spiffeID: id.spiffeID ?? body.spiffeID,
      serial: id.serial,
      notAfter: id.notAfter,
      renewAfter: new Date(body.renewAfter),
      attributes: id.attributes,
    };
    this.current = c;
    this.onResult("issued");
    this.log.info({ spiffeID: c.spiffeID, serial: c.serial, notAfter: c.notAfter.toISOString(), renewAfter: c.renewAfter.toISOString() }, "certificate obtained");
    for (const fn of this.listeners) fn(c);
    return c;
  }
}
