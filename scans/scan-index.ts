// The in-memory index of scan records that admission and rescans look images up in.
import { repositoryOf, type ImageRef } from "../common/images.ts";
import { ScanInterner } from "./intern.ts";
import type { ScanRecord } from "./records.ts";

interface Entry {
  key: string;
  rec: ScanRecord;
  /** Namespace of the source object; undefined for records with no namespace (CLI input files). */
  namespace?: string;
  at: number; // scannedAt in ms; -Infinity when unknown, so any dated scan is newer
  seq: number; // upsert order, breaks ties
}

/**
 * Scan records by source object. Records are treated as immutable once upserted (evaluators cache
 * derived counts per record): replace a record by upserting its key again.
 *
 * Who a record speaks for (issue 11 item 8): a record from namespace X describes images for pods
 * in X only, unless X is a trusted scanner namespace (`trustedNamespaces`, TENET_SCAN_NAMESPACES:
 * by default trivy-system and Tenet's own namespace), whose records apply to pods everywhere.
 * Records upserted without a namespace (the CLI's input files) apply everywhere.
 */
export class ScanIndex {
  private readonly trusted: ReadonlySet<string>;

  constructor(trustedNamespaces: Iterable<string> = []) {
    this.trusted = new Set(trustedNamespaces);
  }

  private byKey = new Map<string, Entry>();
  private byRepo = new Map<string, Entry[]>();
  /** Records that carry a digest, by digest: the same digest is the same content in any repository. */
  private byDigest = new Map<string, Entry[]>();
  private seq = 0;
  private _version = 0;
  /** Identical findings and lists, held once (intern.ts). */
  readonly interner = new ScanInterner();

  get size(): number {
    return this.byKey.size;
  }

  /** Bumps on every change, so callers can cache verdicts. */
  get version(): number {
    return this._version;
  }

  /** key = the source object (a report can be replaced or deleted). */
  upsert(key: string, rec: ScanRecord, namespace?: string): void {
    this.detach(key);
    rec = this.interner.intern(rec);
    const parsed = rec.scannedAt ? Date.parse(rec.scannedAt) : NaN;
    const e: Entry = { key, rec, namespace, at: isNaN(parsed) ? -Infinity : parsed, seq: this.seq++ };
    this.byKey.set(key, e);
    const repo = repositoryOf(rec.image);
    const list = this.byRepo.get(repo);
    if (list) list.push(e);
    else this.byRepo.set(repo, [e]);
    const digest = rec.image.digest;
    if (digest !== undefined) {
      const same = this.byDigest.get(digest);
      if (same) same.push(e);
      else this.byDigest.set(digest, [e]);
    }
    this._version++;
  }

  remove(key: string): void {
    if (this.detach(key)) this._version++;
  }

  /**
   * The scan describing this image. For a digest-pinned image, a record of that digest decides:
   * one of the same repository first, else one of any repository (a digest names content, wherever
   * it was pushed or mirrored), so a report found only by tag can never clear content that is known
   * by its digest. Otherwise a record with the same repository and tag, unless that record's digest
   * differs from the image's (then the tag has moved and the report describes other content).
   * Newest scannedAt wins among equals, then the latest upsert.
   *
   * `podNamespace`: the namespace of the pod the image runs in; only records that speak for it
   * count (its own namespace's, trusted scanner namespaces', namespace-less ones). Undefined (the
   * CLI): every record counts.
   */
  lookup(image: ImageRef, podNamespace?: string): ScanRecord | undefined {
    const ok = (e: Entry) => podNamespace === undefined || e.namespace === undefined || e.namespace === podNamespace || this.trusted.has(e.namespace);
    const list = this.byRepo.get(repositoryOf(image));
    if (!list) return image.digest !== undefined ? this.newestOf(this.byDigest.get(image.digest), ok)?.rec : undefined;
    let byDigest: Entry | undefined;
    let byTag: Entry | undefined;
    for (const e of list) {
      if (!ok(e)) continue;
      const r = e.rec.image;
      if (image.digest !== undefined && r.digest === image.digest) {
        if (!byDigest || newer(e, byDigest)) byDigest = e;
      } else if (!byDigest && image.tag !== undefined && r.tag === image.tag && (image.digest === undefined || r.digest === undefined)) {
        if (!byTag || newer(e, byTag)) byTag = e;
      }
    }
    if (!byDigest && image.digest !== undefined) byDigest = this.newestOf(this.byDigest.get(image.digest), ok);
    return (byDigest ?? byTag)?.rec;
  }

  private newestOf(list: Entry[] | undefined, ok: (e: Entry) => boolean): Entry | undefined {
    let best: Entry | undefined;
    for (const e of list ?? []) if (ok(e) && (!best || newer(e, best))) best = e;
    return best;
  }

  private detach(key: string): boolean {
    const old = this.byKey.get(key);
    if (!old) return false;
    this.byKey.delete(key);
    this.interner.release(old.rec);
    const repo = repositoryOf(old.rec.image);
    const list = this.byRepo.get(repo);
    if (list) {
      const i = list.indexOf(old);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byRepo.delete(repo);
    }
    const digest = old.rec.image.digest;
    const same = digest !== undefined ? this.byDigest.get(digest) : undefined;
    if (same) {
      const i = same.indexOf(old);
      if (i >= 0) same.splice(i, 1);
      if (same.length === 0) this.byDigest.delete(digest!);
    }
    return true;
  }
}

function newer(a: Entry, b: Entry): boolean {
  return a.at > b.at || (a.at === b.at && a.seq > b.seq);
}
