// The in-memory index of scan records that admission and rescans look images up in.
import { repositoryOf, type ImageRef } from "../common/images.ts";
import type { ScanRecord } from "./records.ts";

interface Entry {
  key: string;
  rec: ScanRecord;
  at: number; // scannedAt in ms; -Infinity when unknown, so any dated scan is newer
  seq: number; // upsert order, breaks ties
}

/**
 * Scan records by source object. Records are treated as immutable once upserted (evaluators cache
 * derived counts per record): replace a record by upserting its key again.
 */
export class ScanIndex {
  private byKey = new Map<string, Entry>();
  private byRepo = new Map<string, Entry[]>();
  private seq = 0;
  private _version = 0;

  get size(): number {
    return this.byKey.size;
  }

  /** Bumps on every change, so callers can cache verdicts. */
  get version(): number {
    return this._version;
  }

  /** key = the source object (a report can be replaced or deleted). */
  upsert(key: string, rec: ScanRecord): void {
    this.detach(key);
    const parsed = rec.scannedAt ? Date.parse(rec.scannedAt) : NaN;
    const e: Entry = { key, rec, at: isNaN(parsed) ? -Infinity : parsed, seq: this.seq++ };
    this.byKey.set(key, e);
    const repo = repositoryOf(rec.image);
    const list = this.byRepo.get(repo);
    if (list) list.push(e);
    else this.byRepo.set(repo, [e]);
    this._version++;
  }

  remove(key: string): void {
    if (this.detach(key)) this._version++;
  }

  /**
   * The scan describing this image. A record with the same repository and digest wins; otherwise
   * one with the same repository and tag, unless that record's digest differs from the image's
   * (then the tag has moved and the report describes other content). Newest scannedAt wins among
   * equals, then the latest upsert.
   */
  lookup(image: ImageRef): ScanRecord | undefined {
    const list = this.byRepo.get(repositoryOf(image));
    if (!list) return undefined;
    let byDigest: Entry | undefined;
    let byTag: Entry | undefined;
    for (const e of list) {
      const r = e.rec.image;
      if (image.digest !== undefined && r.digest === image.digest) {
        if (!byDigest || newer(e, byDigest)) byDigest = e;
      } else if (!byDigest && image.tag !== undefined && r.tag === image.tag && (image.digest === undefined || r.digest === undefined)) {
        if (!byTag || newer(e, byTag)) byTag = e;
      }
    }
    return (byDigest ?? byTag)?.rec;
  }

  private detach(key: string): boolean {
    const old = this.byKey.get(key);
    if (!old) return false;
    this.byKey.delete(key);
    const repo = repositoryOf(old.rec.image);
    const list = this.byRepo.get(repo);
    if (list) {
      const i = list.indexOf(old);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byRepo.delete(repo);
    }
    return true;
  }
}

function newer(a: Entry, b: Entry): boolean {
  return a.at > b.at || (a.at === b.at && a.seq > b.seq);
}
