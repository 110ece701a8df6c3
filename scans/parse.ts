// Vulnerability scan data from the ecosystem's formats (Trivy Operator VulnerabilityReports, Trivy
// CLI JSON), reduced to one record shape (scans/records.ts).
import { ImageRefError, parseImage, repositoryOf, type ImageRef } from "../common/images.ts";
import { ScanParseError, SEVERITIES, SUMMARY_ONLY_ID, type ScanRecord, type Severity, type Vulnerability } from "./records.ts";

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
