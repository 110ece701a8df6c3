// Vulnerability scan data from the ecosystem's formats (Trivy Operator VulnerabilityReports, Trivy
// CLI JSON), reduced to one record shape, and the in-memory index admission and rescans look in.

import { ImageRefError, parseImage, repositoryOf, type ImageRef } from "./images.ts";

export type Severity = "CRITICAL" | "HIGH" | "MEDIUM" | "LOW" | "UNKNOWN";
export const SEVERITIES: readonly Severity[] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

export interface Vulnerability {
  id: string;
  severity: Severity;
  pkg?: string;
  installedVersion?: string;
  fixedVersion?: string;
  title?: string;
}

export interface ScanRecord {
  image: ImageRef;
  /** e.g. "VulnerabilityReport demo/replicaset-orders-app" or "ConfigMap tenet-system/trivy-reports key orders.json" */
  source: string;
  scannedAt?: string;
  vulnerabilities: Vulnerability[];
}

export class ScanParseError extends Error {
  override name = "ScanParseError";
}

/**
 * The id of a vulnerability known only from a report's summary counts. Such entries can never be
 * exempted (exemption ids are CVE or GHSA ids), and since nobody knows whether they have a fix,
 * ignoreUnfixed does not drop them either: an incomplete report must not make an image look cleaner.
 */
export const SUMMARY_ONLY_ID = "UNKNOWN";

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function severityOf(v: unknown): Severity {
  const s = typeof v === "string" ? v.toUpperCase() : "";
  return (SEVERITIES as readonly string[]).includes(s) ? (s as Severity) : "UNKNOWN";
}

function optString(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function timestamp(v: unknown): string | undefined {
  if (v instanceof Date) return isNaN(v.getTime()) ? undefined : v.toISOString();
  return optString(v);
}

function vuln(id: string, severity: Severity, pkg: unknown, installed: unknown, fixed: unknown, title: unknown): Vulnerability {
  const out: Vulnerability = { id, severity };
  const p = optString(pkg);
  if (p !== undefined) out.pkg = p;
  const i = optString(installed);
  if (i !== undefined) out.installedVersion = i;
  const f = optString(fixed);
  if (f !== undefined) out.fixedVersion = f;
  const t = optString(title);
  if (t !== undefined) out.title = t;
  return out;
}

const SUMMARY_FIELDS: [Severity, string][] = [
  ["CRITICAL", "criticalCount"],
  ["HIGH", "highCount"],
  ["MEDIUM", "mediumCount"],
  ["LOW", "lowCount"],
  ["UNKNOWN", "unknownCount"],
];

/** Reads an aquasecurity.github.io/v1alpha1 VulnerabilityReport (as the API server returns it). */
export function fromVulnerabilityReport(obj: unknown): ScanRecord {
  const meta = isObject(obj) && isObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === "string" && meta.name ? meta.name : "(unnamed)";
  const source = `VulnerabilityReport ${typeof meta.namespace === "string" && meta.namespace ? `${meta.namespace}/` : ""}${name}`;
  const bad: (field: string, why: string) => never = (field, why) => {
    throw new ScanParseError(`${source}: ${field} ${why}`);
  };

  if (!isObject(obj)) throw new ScanParseError(`VulnerabilityReport: expected an object, got ${obj === null ? "null" : Array.isArray(obj) ? "an array" : typeof obj}`);
  if (obj.kind !== undefined && obj.kind !== "VulnerabilityReport") bad("kind", `is "${obj.kind}", expected "VulnerabilityReport"`);
  if (obj.apiVersion !== undefined && !(typeof obj.apiVersion === "string" && obj.apiVersion.startsWith("aquasecurity.github.io/"))) {
    bad("apiVersion", `is "${obj.apiVersion}", expected aquasecurity.github.io/v1alpha1`);
  }
  const report = obj.report;
  if (!isObject(report)) bad("report", report === undefined ? "is missing" : "is not an object");
  const artifact = report.artifact;
  if (!isObject(artifact)) bad("report.artifact", artifact === undefined ? "is missing" : "is not an object");
  if (typeof artifact.repository !== "string" || artifact.repository === "") bad("report.artifact.repository", "is missing or not a string");
  for (const f of ["tag", "digest"]) {
    if (artifact[f] !== undefined && artifact[f] !== null && typeof artifact[f] !== "string") bad(`report.artifact.${f}`, "is not a string");
  }
  if (report.registry !== undefined && !isObject(report.registry)) bad("report.registry", "is not an object");
  const server = optString(report.registry?.server);

  const tag = optString(artifact.tag);
  const digest = optString(artifact.digest);
  const ref = `${server ? `${server}/` : ""}${artifact.repository}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`;
  let image: ImageRef;
  try {
    image = parseImage(ref);
  } catch (e) {
    if (!(e instanceof ImageRefError)) throw e;
    return bad("report.artifact", `does not name a valid image (${e.message})`);
  }

  const vulnerabilities: Vulnerability[] = [];
  const listed: Record<Severity, number> = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  if (report.vulnerabilities !== undefined && report.vulnerabilities !== null) {
    if (!Array.isArray(report.vulnerabilities)) bad("report.vulnerabilities", "is not a list");
    report.vulnerabilities.forEach((v: unknown, i: number) => {
      const at = `report.vulnerabilities[${i}]`;
      if (!isObject(v)) bad(at, "is not an object");
      if (typeof v.vulnerabilityID !== "string" || v.vulnerabilityID === "") bad(`${at}.vulnerabilityID`, "is missing or not a string");
      const sev = severityOf(v.severity);
      listed[sev]++;
      vulnerabilities.push(vuln(v.vulnerabilityID, sev, v.resource, v.installedVersion, v.fixedVersion, v.title));
    });
  }

  const summary = report.summary;
  if (summary !== undefined && summary !== null && !isObject(summary)) bad("report.summary", "is not an object");
  if (isObject(summary)) {
    for (const [sev, field] of SUMMARY_FIELDS) {
      const n = summary[field];
      if (n === undefined || n === null) continue;
      if (!Number.isInteger(n) || n < 0) bad(`report.summary.${field}`, `is ${JSON.stringify(n)}, expected a non-negative integer`);
      // A report may list fewer vulnerabilities than its summary counts (the list is absent, or
      // trimmed, as in Trivy Operator's own test fixtures). The summary is what the scanner found,
      // so we add placeholder entries for the difference: thresholds see the real counts.
      for (let k = listed[sev]; k < n; k++) {
        vulnerabilities.push({ id: SUMMARY_ONLY_ID, severity: sev, title: `counted from report.summary.${field}; the report does not list it` });
      }
    }
  } else if (report.vulnerabilities === undefined || report.vulnerabilities === null) {
    // Neither a list nor counts: we cannot tell a clean image from a missing scan, so we refuse to guess.
    bad("report", "has neither vulnerabilities nor summary");
  }

  const rec: ScanRecord = { image, source, vulnerabilities };
  const at = timestamp(report.updateTimestamp) ?? timestamp(meta.creationTimestamp);
  if (at !== undefined) rec.scannedAt = at;
  return rec;
}

// `trivy image --input x.tar` reports the archive's path as ArtifactName: that names no image.
const ARCHIVE = /(^[./~]|\.(tar|tar\.gz|tgz|tar\.zst|oci)$)/i;

function tryParse(ref: unknown): ImageRef | undefined {
  if (typeof ref !== "string" || ref === "" || ARCHIVE.test(ref)) return undefined;
  try {
    return parseImage(ref);
  } catch {
    return undefined;
  }
}

/**
 * Reads `trivy image --format json` output (SchemaVersion 2). The image is ArtifactName, or, when
 * that is an archive path, the first of Metadata.RepoTags / RepoDigests; the digest comes from
 * Metadata.RepoDigests (the one of the same repository first). No Results, or a Result without
 * Vulnerabilities, means no findings.
 */
export function fromTrivyJSON(doc: unknown, source: string): ScanRecord {
  const bad: (field: string, why: string) => never = (field, why) => {
    throw new ScanParseError(`${source}: ${field} ${why}`);
  };
  if (!isObject(doc)) {
    throw new ScanParseError(`${source}: not a Trivy JSON report (expected an object, got ${doc === null ? "null" : Array.isArray(doc) ? "an array" : typeof doc})`);
  }
  if (doc.SchemaVersion !== undefined && doc.SchemaVersion !== 2) bad("SchemaVersion", `is ${JSON.stringify(doc.SchemaVersion)}; only SchemaVersion 2 (trivy image --format json) is supported`);
  if (doc.ArtifactType !== undefined && doc.ArtifactType !== "container_image") bad("ArtifactType", `is "${doc.ArtifactType}", expected "container_image"`);
  const meta = isObject(doc.Metadata) ? doc.Metadata : {};
  const tags: unknown[] = Array.isArray(meta.RepoTags) ? meta.RepoTags : [];
  const digests: unknown[] = Array.isArray(meta.RepoDigests) ? meta.RepoDigests : [];

  let image = tryParse(doc.ArtifactName);
  if (!image) for (const t of tags) if ((image = tryParse(t))) break;
  if (!image) for (const d of digests) if ((image = tryParse(d))) break;
  if (!image) {
    bad("ArtifactName", `(${JSON.stringify(doc.ArtifactName)}) is not an image reference and Metadata.RepoTags/RepoDigests name none`);
  }
  const img = image as ImageRef;
  if (!img.digest) {
    const parsed = digests.map(tryParse).filter((d): d is ImageRef => !!d?.digest);
    const pick = parsed.find((d) => repositoryOf(d) === repositoryOf(img)) ?? parsed[0];
    if (pick) image = parseImage(`${img.raw}@${pick.digest}`);
  }

  const vulnerabilities: Vulnerability[] = [];
  if (doc.Results !== undefined && doc.Results !== null) {
    if (!Array.isArray(doc.Results)) bad("Results", "is not a list");
    doc.Results.forEach((r: unknown, i: number) => {
      if (!isObject(r)) bad(`Results[${i}]`, "is not an object");
      const vs = r.Vulnerabilities;
      if (vs === undefined || vs === null) return;
      if (!Array.isArray(vs)) bad(`Results[${i}].Vulnerabilities`, "is not a list");
      vs.forEach((v: unknown, j: number) => {
        const at = `Results[${i}].Vulnerabilities[${j}]`;
        if (!isObject(v)) bad(at, "is not an object");
        if (typeof v.VulnerabilityID !== "string" || v.VulnerabilityID === "") bad(`${at}.VulnerabilityID`, "is missing or not a string");
        vulnerabilities.push(vuln(v.VulnerabilityID, severityOf(v.Severity), v.PkgName, v.InstalledVersion, v.FixedVersion, v.Title));
      });
    });
  }
  const rec: ScanRecord = { image: image as ImageRef, source, vulnerabilities };
  const at = timestamp(doc.CreatedAt);
  if (at !== undefined) rec.scannedAt = at;
  return rec;
}

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
  /** Records that carry a digest, by digest: the same digest is the same content in any repository. */
  private byDigest = new Map<string, Entry[]>();
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
   */
  lookup(image: ImageRef): ScanRecord | undefined {
    const list = this.byRepo.get(repositoryOf(image));
    if (!list) return image.digest !== undefined ? this.newestOf(this.byDigest.get(image.digest))?.rec : undefined;
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
    if (!byDigest && image.digest !== undefined) byDigest = this.newestOf(this.byDigest.get(image.digest));
    return (byDigest ?? byTag)?.rec;
  }

  private newestOf(list: Entry[] | undefined): Entry | undefined {
    let best: Entry | undefined;
    for (const e of list ?? []) if (!best || newer(e, best)) best = e;
    return best;
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
