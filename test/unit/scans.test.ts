import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { parseImage } from "../../common/images.ts";
import { fromTrivyJSON, fromVulnerabilityReport } from "../../scans/parse.ts";
import { ScanParseError, SUMMARY_ONLY_ID, type ScanRecord, type Severity } from "../../scans/records.ts";
import { ScanIndex } from "../../scans/scan-index.ts";

import { jsonFixture, yamlFixture } from "../harness/fixtures.ts";

const trivyGolden = (name: string): any => jsonFixture(`trivy-cli/${name}`);
const report = (name: string): any => yamlFixture(`trivy-operator/${name}`);

function countsOf(rec: ScanRecord): Record<Severity, number> {
  const c: Record<Severity, number> = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  for (const v of rec.vulnerabilities) c[v.severity]++;
  return c;
}
const counts = (critical: number, high: number, medium: number, low: number, unknown: number) => ({ CRITICAL: critical, HIGH: high, MEDIUM: medium, LOW: low, UNKNOWN: unknown });

describe("Trivy CLI JSON reports", () => {
  const goldens: [string, string, ReturnType<typeof counts>][] = [
    ["a full scan counts 2 critical and 4 medium findings", "billing-full.json", counts(2, 0, 4, 0, 0)],
    ["a HIGH,CRITICAL --ignore-unfixed scan counts 2 critical findings", "billing-high-critical.json", counts(2, 0, 0, 0, 0)],
    ["a result without a Vulnerabilities key is clean", "static-site-no-vulnerabilities.json", counts(0, 0, 0, 0, 0)],
    ["a report without a Results key is clean", "billing-skip-dirs-no-results.json", counts(0, 0, 0, 0, 0)],
  ];
  for (const [name, file, want] of goldens) {
    it(name, () => {
      const rec = fromTrivyJSON(trivyGolden(file), `file ${file}`);
      assert.deepEqual(countsOf(rec), want);
      assert.equal(rec.source, `file ${file}`);
      assert.equal(rec.scannedAt, "2025-05-20T09:14:03.123456789Z");
    });
  }

  it("names the image from RepoTags when ArtifactName is an archive path", () => {
    const rec = fromTrivyJSON(trivyGolden("billing-full.json"), "x");
    assert.equal(rec.image.full, "ghcr.io/acme/billing:2.3.0");
  });

  it("keeps package, versions and title of each finding", () => {
    const rec = fromTrivyJSON(trivyGolden("billing-full.json"), "x");
    const busybox = rec.vulnerabilities.find((v) => v.pkg === "busybox");
    assert.deepEqual(
      { ...busybox, title: undefined },
      { id: "CVE-2022-48174", severity: "CRITICAL", pkg: "busybox", installedVersion: "1.36.1-r2", fixedVersion: "1.36.1-r6", title: undefined },
    );
  });

  it("takes the image from ArtifactName and the digest from RepoDigests of the same repository", () => {
    const digest = "sha256:" + "ab".repeat(32);
    const other = "sha256:" + "cd".repeat(32);
    const rec = fromTrivyJSON(
      { SchemaVersion: 2, ArtifactName: "ghcr.io/acme/orders:1.0", ArtifactType: "container_image", Metadata: { RepoTags: ["ghcr.io/acme/orders:1.0"], RepoDigests: [`mirror.io/acme/orders@${other}`, `ghcr.io/acme/orders@${digest}`] }, Results: null },
      "ConfigMap tenet-system/trivy-reports key orders.json",
    );
    assert.equal(rec.image.full, `ghcr.io/acme/orders:1.0@${digest}`);
    assert.deepEqual(rec.vulnerabilities, []);
  });

  it("treats an unknown severity as UNKNOWN rather than dropping the finding", () => {
    const rec = fromTrivyJSON({ ArtifactName: "nginx:1", Results: [{ Vulnerabilities: [{ VulnerabilityID: "CVE-2024-1", Severity: "SEVERE" }] }] }, "x");
    assert.deepEqual(countsOf(rec), counts(0, 0, 0, 0, 1));
  });

  const malformed: [string, unknown, RegExp][] = [
    ["refuses a document that is not an object", [1, 2], /^cm key a\.json: not a Trivy JSON report \(expected an object, got an array\)$/],
    ["refuses an old schema version", { SchemaVersion: 1, ArtifactName: "nginx" }, /SchemaVersion is 1; only SchemaVersion 2/],
    ["refuses a filesystem scan", { SchemaVersion: 2, ArtifactName: ".", ArtifactType: "filesystem" }, /ArtifactType is "filesystem", expected "container_image"/],
    ["refuses a report that names no image", { SchemaVersion: 2, ArtifactName: "img.tar", Metadata: {} }, /ArtifactName \("img\.tar"\) is not an image reference/],
    ["refuses Results that are not a list", { ArtifactName: "nginx", Results: {} }, /Results is not a list/],
    ["names the finding that lacks an id", { ArtifactName: "nginx", Results: [{}, { Vulnerabilities: [{ VulnerabilityID: "CVE-1" }, { Severity: "HIGH" }] }] }, /Results\[1\]\.Vulnerabilities\[1\]\.VulnerabilityID is missing/],
  ];
  for (const [name, doc, message] of malformed) {
    it(name, () => assert.throws(() => fromTrivyJSON(doc, "cm key a.json"), (e: unknown) => e instanceof ScanParseError && message.test(e.message)));
  }
});

describe("Trivy Operator VulnerabilityReports", () => {
  it("reads a docs-style report: nginx:1.25.3 from index.docker.io with 2 critical findings", () => {
    const rec = fromVulnerabilityReport(report("web-nginx-2-critical.yaml"));
    assert.equal(rec.image.full, "docker.io/library/nginx:1.25.3");
    assert.equal(rec.source, "VulnerabilityReport default/replicaset-web-7f9c6d5b8-nginx");
    assert.deepEqual(countsOf(rec), counts(2, 0, 0, 0, 0));
    assert.equal(rec.scannedAt, undefined, "the report has no updateTimestamp nor creationTimestamp");
    assert.equal(rec.vulnerabilities.find((v) => v.id === "CVE-2023-45853")?.fixedVersion, undefined, "an empty fixedVersion means no fix");
  });

  it("keeps the summary's counts when the report lists fewer findings than it counts", () => {
    const rec = fromVulnerabilityReport(report("ingress-summary-only.yaml"));
    assert.equal(rec.image.full, "registry.k8s.io/ingress-nginx/controller:v1.9.4");
    assert.deepEqual(countsOf(rec), counts(0, 7, 4, 0, 3));
    assert.equal(rec.vulnerabilities.filter((v) => v.id !== SUMMARY_ONLY_ID).length, 1);
    assert.equal(rec.scannedAt, "2024-11-04T08:30:00Z");
  });

  it("reads a clean report without a namespace", () => {
    const rec = fromVulnerabilityReport(report("catalog-clean.yaml"));
    assert.equal(rec.image.full, "ghcr.io/acme/catalog:4.2.0");
    assert.equal(rec.source, "VulnerabilityReport replicaset-catalog-6c9d8f7b5-catalog");
    assert.deepEqual(rec.vulnerabilities, []);
  });

  it("synthesizes findings from the summary when the list is absent", () => {
    const r = report("web-nginx-2-critical.yaml");
    delete r.report.vulnerabilities;
    r.report.summary = { criticalCount: 1, highCount: 3, mediumCount: 0, lowCount: 0, unknownCount: 0, noneCount: 0 };
    const rec = fromVulnerabilityReport(r);
    assert.deepEqual(countsOf(rec), counts(1, 3, 0, 0, 0));
    assert.ok(rec.vulnerabilities.every((v) => v.id === SUMMARY_ONLY_ID));
  });

  it("reads a digest-only artifact and the creation time as the scan time", () => {
    const digest = "sha256:" + "ef".repeat(32);
    const rec = fromVulnerabilityReport({
      apiVersion: "aquasecurity.github.io/v1alpha1",
      kind: "VulnerabilityReport",
      metadata: { name: "pod-x", namespace: "demo", creationTimestamp: new Date("2025-01-02T03:04:05Z") },
      report: { artifact: { repository: "acme/orders", digest }, registry: { server: "ghcr.io" }, summary: { criticalCount: 0, highCount: 0, mediumCount: 0, lowCount: 0, unknownCount: 0 } },
    });
    assert.equal(rec.image.full, `ghcr.io/acme/orders@${digest}`);
    assert.equal(rec.scannedAt, "2025-01-02T03:04:05.000Z");
  });

  const broken: [string, (r: any) => unknown, RegExp][] = [
    ["refuses something that is not an object", () => "nope", /^VulnerabilityReport: expected an object, got string$/],
    ["refuses another kind", (r) => ({ ...r, kind: "ConfigAuditReport" }), /^VulnerabilityReport default\/replicaset-web-7f9c6d5b8-nginx: kind is "ConfigAuditReport"/],
    ["names a missing report field", (r) => ({ ...r, report: undefined }), /VulnerabilityReport default\/replicaset-web-7f9c6d5b8-nginx: report is missing$/],
    ["names a missing artifact repository", (r) => ({ ...r, report: { ...r.report, artifact: { tag: "1" } } }), /: report\.artifact\.repository is missing or not a string$/],
    ["names an artifact that is no image", (r) => ({ ...r, report: { ...r.report, artifact: { repository: "Library/Nginx" } } }), /: report\.artifact does not name a valid image \(.*must be lowercase\)$/],
    ["names the finding without an id", (r) => ({ ...r, report: { ...r.report, vulnerabilities: [r.report.vulnerabilities[0], { severity: "HIGH" }] } }), /: report\.vulnerabilities\[1\]\.vulnerabilityID is missing or not a string$/],
    ["names a negative summary count", (r) => ({ ...r, report: { ...r.report, summary: { ...r.report.summary, highCount: -1 } } }), /: report\.summary\.highCount is -1, expected a non-negative integer$/],
    ["refuses a report with neither findings nor summary", (r) => ({ ...r, report: { ...r.report, vulnerabilities: undefined, summary: undefined } }), /: report has neither vulnerabilities nor summary$/],
  ];
  for (const [name, mutate, message] of broken) {
    it(name, () => {
      assert.throws(() => fromVulnerabilityReport(mutate(report("web-nginx-2-critical.yaml"))), (e: unknown) => e instanceof ScanParseError && message.test(e.message));
    });
  }
});

describe("the scan index", () => {
  const D1 = "sha256:" + "11".repeat(32);
  const D2 = "sha256:" + "22".repeat(32);
  const rec = (ref: string, source: string, scannedAt?: string, ids: string[] = []): ScanRecord => ({
    image: parseImage(ref),
    source,
    ...(scannedAt ? { scannedAt } : {}),
    vulnerabilities: ids.map((id) => ({ id, severity: "HIGH" as const })),
  });

  it("finds a scan by repository and tag", () => {
    const idx = new ScanIndex();
    idx.upsert("a", rec("ghcr.io/acme/orders:1.0", "A"));
    assert.equal(idx.lookup(parseImage("ghcr.io/acme/orders:1.0"))?.source, "A");
    assert.equal(idx.lookup(parseImage("ghcr.io/acme/orders:1.1")), undefined);
    assert.equal(idx.lookup(parseImage("ghcr.io/acme/other:1.0")), undefined);
  });

  it("matches docker.io images however they were written", () => {
    const idx = new ScanIndex();
    idx.upsert("vr", fromVulnerabilityReport(report("web-nginx-2-critical.yaml")));
    assert.equal(idx.lookup(parseImage("nginx:1.25.3"))?.source, "VulnerabilityReport default/replicaset-web-7f9c6d5b8-nginx");
    assert.equal(idx.lookup(parseImage("docker.io/library/nginx:1.25.3"))?.source, "VulnerabilityReport default/replicaset-web-7f9c6d5b8-nginx");
  });

  it("prefers a digest match over a newer tag match", () => {
    const idx = new ScanIndex();
    idx.upsert("by-digest", rec(`ghcr.io/acme/orders:1.0@${D1}`, "digest", "2024-01-01T00:00:00Z"));
    idx.upsert("by-tag", rec("ghcr.io/acme/orders:1.0", "tag", "2025-01-01T00:00:00Z"));
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`))?.source, "digest");
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders@${D1}`))?.source, "digest");
  });

  it("falls back to the tag for a digest-pinned image, but not to a scan of another digest", () => {
    const idx = new ScanIndex();
    idx.upsert("other-content", rec(`ghcr.io/acme/orders:1.0@${D2}`, "other digest"));
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`)), undefined, "the tag moved: that scan describes other content");
    idx.upsert("tag-only", rec("ghcr.io/acme/orders:1.0", "tag only"));
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`))?.source, "tag only");
    assert.equal(idx.lookup(parseImage("ghcr.io/acme/orders:1.0"))?.source, "tag only", "a tag-only pod matches any scan of the tag, newest first");
  });

  it("decides a digest-pinned image by the report for its digest, even one filed under another repository, never by a tag-only report", () => {
    const idx = new ScanIndex();
    // The same content (same digest) scanned where it was mirrored: it is known vulnerable.
    idx.upsert("mirror", rec(`mirror.example.com/acme/orders@${D1}`, "mirror digest", "2024-01-01T00:00:00Z", ["CVE-2024-1"]));
    // A newer, clean report found only by tag, for the repository the pod names.
    idx.upsert("tag-only", rec("ghcr.io/acme/orders:1.0", "clean tag only", "2025-01-01T00:00:00Z"));
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`))?.source, "mirror digest");
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders@${D1}`))?.source, "mirror digest");
    // Same repository first when both exist.
    idx.upsert("own", rec(`ghcr.io/acme/orders@${D1}`, "own digest", "2023-01-01T00:00:00Z", ["CVE-2024-1"]));
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`))?.source, "own digest");
    // A tag-only pod still matches the tag-only report; another digest is still unknown.
    assert.equal(idx.lookup(parseImage("ghcr.io/acme/orders:1.0"))?.source, "clean tag only");
    idx.remove("own");
    idx.remove("mirror");
    assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`))?.source, "clean tag only", "with no report for the digest anywhere, the tag may decide");
  });

  it("never lets a report found only by tag clear an image whose digest is known vulnerable, whatever the order", () => {
    for (const order of [["digest", "tag"], ["tag", "digest"]]) {
      const idx = new ScanIndex();
      for (const which of order) {
        if (which === "digest") idx.upsert("d", rec(`ghcr.io/acme/orders:2.0@${D1}`, "vulnerable digest", "2020-01-01T00:00:00Z", ["CVE-2024-1"]));
        else idx.upsert("t", rec("ghcr.io/acme/orders:1.0", "clean tag", "2030-01-01T00:00:00Z"));
      }
      assert.equal(idx.lookup(parseImage(`ghcr.io/acme/orders:1.0@${D1}`))?.source, "vulnerable digest", order.join(" then "));
    }
  });

  it("picks the newest scan among equals, and a dated scan over an undated one", () => {
    const idx = new ScanIndex();
    idx.upsert("new", rec("ghcr.io/a/b:1", "new", "2025-03-01T00:00:00Z"));
    idx.upsert("old", rec("ghcr.io/a/b:1", "old", "2025-01-01T00:00:00Z"));
    idx.upsert("undated", rec("ghcr.io/a/b:1", "undated"));
    assert.equal(idx.lookup(parseImage("ghcr.io/a/b:1"))?.source, "new");
  });

  it("replaces a record when its source is upserted again, even for another image", () => {
    const idx = new ScanIndex();
    idx.upsert("k", rec("ghcr.io/a/b:1", "first"));
    idx.upsert("k", rec("ghcr.io/a/c:1", "second"));
    assert.equal(idx.size, 1);
    assert.equal(idx.lookup(parseImage("ghcr.io/a/b:1")), undefined);
    assert.equal(idx.lookup(parseImage("ghcr.io/a/c:1"))?.source, "second");
  });

  it("forgets a removed record and bumps the version only on changes", () => {
    const idx = new ScanIndex();
    const v0 = idx.version;
    idx.upsert("k", rec("ghcr.io/a/b:1", "first"));
    const v1 = idx.version;
    assert.ok(v1 > v0);
    idx.remove("missing");
    assert.equal(idx.version, v1, "removing an unknown key changes nothing");
    idx.remove("k");
    assert.ok(idx.version > v1);
    assert.equal(idx.size, 0);
    assert.equal(idx.lookup(parseImage("ghcr.io/a/b:1")), undefined);
  });
});
