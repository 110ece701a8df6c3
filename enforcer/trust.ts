// What the enforcer trusts: the CA bundle (the mounted file and the operator's /v1/bundle,
// merged, so a new CA is trusted as soon as either source has it) and the revocation list
// (/v1/revocations, polled with ETag). A failed refresh keeps the last good state: forgetting
// revocations or CAs because the operator is briefly away would be worse.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Logger } from "../common/logger.ts";
import { pemEncode, splitPEM } from "../pki/pem.ts";
import type { OperatorClient } from "./operator-client.ts";

export class TrustStore {
  private fileBundle: Buffer[] = [];
  private remoteBundle: Buffer[] = [];
  private bundlePem?: string;
  private bundleEtag?: string;
  private revoked = new Set<string>();
  private revocationsEtag?: string;
  private listeners: (() => void)[] = [];
  private revocationListeners: (() => void)[] = [];

  constructor(
    private readonly opts: { bundleFile?: string; bundleURL?: string; revocationsURL?: string; revocationsFile?: string },
    private readonly client: OperatorClient | undefined,
    private readonly log: Logger,
  ) {}

  /** The merged bundle as PEM (deduplicated, file order first); undefined until one is read. */
  get bundle(): string | undefined {
    return this.bundlePem;
  }

  get revokedCount() {
    return this.revoked.size;
  }

  /** serial: lowercase hex as readCertIdentity writes it; Node's uppercase form also works. */
  isRevoked(serial: string): boolean {
    return this.revoked.size > 0 && this.revoked.has(serial.toLowerCase().replace(/^0+/, ""));
  }

  onBundleChange(fn: () => void) {
    this.listeners.push(fn);
  }

  /** Called when serials were added to or removed from the revocation list. */
  onRevocationsChange(fn: () => void) {
    this.revocationListeners.push(fn);
  }

  async refresh(): Promise<void> {
    // The file first: it is what lets us verify the operator on the very first start.
    const first = await Promise.allSettled([this.readFile()]);
    this.merge();
    const rest = await Promise.allSettled([this.fetchBundle(), this.fetchRevocations()]);
    for (const r of [...first, ...rest]) if (r.status === "rejected") this.log.warn({ err: (r.reason as Error).message }, "trust refresh failed; keeping the last good state");
    this.merge();
  }

  private async readFile() {
    if (!this.opts.bundleFile) return;
    const blocks = splitPEM(await readFile(this.opts.bundleFile, "utf8"));
    if (blocks.length === 0) throw new Error(`${this.opts.bundleFile} holds no CERTIFICATE block`);
    this.fileBundle = blocks;
  }

  private async fetchBundle() {
    if (!this.opts.bundleURL || !this.client || !this.bundlePem) return;
    const res = await this.client.get(this.opts.bundleURL, { etag: this.bundleEtag });
    if (res.status === 304) return;
    if (res.status !== 200) throw new Error(`GET ${this.opts.bundleURL}: HTTP ${res.status}`);
    const blocks = splitPEM(res.body);
    if (blocks.length === 0) throw new Error(`GET ${this.opts.bundleURL}: no CERTIFICATE block`);
    this.remoteBundle = blocks;
    this.bundleEtag = res.etag;
  }

  private async fetchRevocations() {
    let text: string;
    if (this.opts.revocationsFile) {
      text = await readFile(this.opts.revocationsFile, "utf8").catch((err) => (err.code === "ENOENT" ? '{"entries":[]}' : Promise.reject(err)));
    } else {
      if (!this.opts.revocationsURL || !this.client || !this.bundlePem) return;
      const res = await this.client.get(this.opts.revocationsURL, { etag: this.revocationsEtag });
      if (res.status === 304) return;
      if (res.status !== 200) throw new Error(`GET ${this.opts.revocationsURL}: HTTP ${res.status}`);
      text = res.body;
      this.revocationsEtag = res.etag;
    }
    const serials = parseRevocations(text);
    const changed = serials.size !== this.revoked.size || [...serials].some((s) => !this.revoked.has(s));
    this.revoked = serials;
    if (changed) {
      this.log.info({ revoked: serials.size }, "revocation list updated");
      for (const fn of this.revocationListeners) fn();
    }
  }

  private merge() {
    const seen = new Set<string>();
    const pems: string[] = [];
    for (const der of [...this.fileBundle, ...this.remoteBundle]) {
      const h = createHash("sha256").update(der).digest("hex");
      if (seen.has(h)) continue;
      seen.add(h);
      pems.push(pemEncode("CERTIFICATE", der));
    }
    const next = pems.join("") || undefined;
    if (next === this.bundlePem) return;
    this.bundlePem = next;
    this.log.info({ cas: pems.length }, "trust bundle updated");
    for (const fn of this.listeners) fn();
  }
}

/** The serials of a /v1/revocations document, normalized (lowercase, no leading zeros). */
export function parseRevocations(text: string): Set<string> {
  const doc = JSON.parse(text);
  if (!doc || !Array.isArray(doc.entries)) throw new Error('the revocation list must be {"entries": [...]}');
  const out = new Set<string>();
  for (const e of doc.entries) {
    if (typeof e?.serial === "string" && /^[0-9a-fA-F]{1,64}$/.test(e.serial)) out.add(e.serial.toLowerCase().replace(/^0+/, ""));
  }
  return out;
}
