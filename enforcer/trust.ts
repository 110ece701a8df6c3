// What the enforcer trusts: the CA bundle (the mounted file and the operator's /v1/bundle,
// merged, so a new CA is trusted as soon as either source has it) and the revocation list
// (/v1/revocations with the pod's token: the full list once, then `?since=<version>` for what was
// added and removed, 304 when nothing changed). A failed refresh keeps the last good state: forgetting
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
  /** The version of the revocation list held (the operator's, opaque here). */
  private revocationsVersion?: string;
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
    let next: Set<string>;
    if (this.opts.revocationsFile) {
      const text = await readFile(this.opts.revocationsFile, "utf8").catch((err) => (err.code === "ENOENT" ? '{"entries":[]}' : Promise.reject(err)));
      next = parseRevocations(text);
    } else {
      if (!this.opts.revocationsURL || !this.client || !this.bundlePem) return;
      const url = new URL(this.opts.revocationsURL);
      const have = this.revocationsVersion;
      if (have !== undefined) url.searchParams.set("since", have);
      const res = await this.client.get(url.toString(), { etag: have !== undefined ? `"${have}"` : undefined, auth: true });
      if (res.status === 304) return;
      if (res.status === 400) this.revocationsVersion = undefined; // the full list next time
      if (res.status !== 200) throw new Error(`GET ${this.opts.revocationsURL}: HTTP ${res.status}`);
      const delta = parseRevocationAnswer(res.body);
      next = applyRevocationAnswer(this.revoked, delta);
      this.revocationsVersion = delta.version;
    }
    const changed = next.size !== this.revoked.size || [...next].some((s) => !this.revoked.has(s));
    this.revoked = next;
    if (changed) {
      this.log.info({ revoked: next.size }, "revocation list updated");
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

export type RevocationAnswer = { version: string; full: true; serials: string[] } | { version: string; full: false; added: string[]; removed: string[] };

const normal = (s: unknown) => (typeof s === "string" && /^[0-9a-fA-F]{1,64}$/.test(s) ? s.toLowerCase().replace(/^0+/, "") : undefined);

/** A /v1/revocations answer, checked: a version, and the full list or what was added and removed. */
export function parseRevocationAnswer(text: string): RevocationAnswer {
  const doc = JSON.parse(text);
  if (!doc || typeof doc.version !== "string" || !/^[0-9.]{1,20480}$/.test(doc.version)) throw new Error("the revocation answer has no valid version");
  const serials = (v: unknown, what: string) => {
    if (!Array.isArray(v)) throw new Error(`the revocation answer's ${what} must be a list`);
    return v.map(normal).filter((s): s is string => s !== undefined);
  };
  if (doc.full === true) return { version: doc.version, full: true, serials: serials(doc.serials, "serials") };
  if (doc.full === false) return { version: doc.version, full: false, added: serials(doc.added, "added"), removed: serials(doc.removed, "removed") };
  throw new Error("the revocation answer must say whether it is the full list");
}

/** The set after an answer: replaced by a full list, else `removed` taken out and `added` put in. */
export function applyRevocationAnswer(current: ReadonlySet<string>, a: RevocationAnswer): Set<string> {
  if (a.full) return new Set(a.serials);
  const next = new Set(current);
  for (const s of a.removed) next.delete(s);
  for (const s of a.added) next.add(s);
  return next;
}
