// The scan index holds identical findings and lists once (scans/intern.ts): records with the same
// findings share one frozen list, the lookups answer as before, and removing the last record that
// uses a finding lets it go.
import { strict as assert } from "node:assert";
import { parseImage } from "../../common/images.ts";
import type { Vulnerability } from "../../scans/records.ts";
import { ScanIndex } from "../../scans/scan-index.ts";

const finding = (id: string, fixed?: string): Vulnerability => ({ id, severity: "HIGH", pkg: "openssl", installedVersion: "3.0.1", ...(fixed ? { fixedVersion: fixed } : {}), title: `${id} in openssl` });
const record = (image: string, source: string, vulns: Vulnerability[]) => ({ image: parseImage(image), source, vulnerabilities: vulns });

describe("scan index: identical records are shared", () => {
  it("records with the same findings share one frozen list; each keeps its own image and source", () => {
    const idx = new ScanIndex();
    for (let i = 0; i < 100; i++) idx.upsert(`vr/demo/r${i}`, record(`ghcr.io/acme/svc-${i}:1.0`, `VulnerabilityReport demo/r${i}`, [finding("CVE-2024-0001", "3.0.2"), finding("CVE-2024-0002")]));
    assert.deepEqual(idx.interner.stats, { findings: 2, lists: 1 });
    const a = idx.lookup(parseImage("ghcr.io/acme/svc-1:1.0"))!;
    const b = idx.lookup(parseImage("ghcr.io/acme/svc-2:1.0"))!;
    assert.equal(a.source, "VulnerabilityReport demo/r1");
    assert.equal(b.source, "VulnerabilityReport demo/r2");
    assert.equal(a.vulnerabilities, b.vulnerabilities);
    assert.ok(Object.isFrozen(a.vulnerabilities) && Object.isFrozen(a.vulnerabilities[0]));
    assert.deepEqual(a.vulnerabilities, [finding("CVE-2024-0001", "3.0.2"), finding("CVE-2024-0002")]);
  });

  it("a finding that differs in any field is its own; lists share the findings they have in common", () => {
    const idx = new ScanIndex();
    idx.upsert("a", record("ghcr.io/acme/a:1", "A", [finding("CVE-1", "2"), finding("CVE-2")]));
    idx.upsert("b", record("ghcr.io/acme/b:1", "B", [finding("CVE-1", "2"), finding("CVE-2", "9")]));
    assert.deepEqual(idx.interner.stats, { findings: 3, lists: 2 });
    const a = idx.lookup(parseImage("ghcr.io/acme/a:1"))!;
    const b = idx.lookup(parseImage("ghcr.io/acme/b:1"))!;
    assert.equal(a.vulnerabilities[0], b.vulnerabilities[0]);
    assert.notEqual(a.vulnerabilities[1], b.vulnerabilities[1]);
    assert.equal(b.vulnerabilities[1].fixedVersion, "9");
  });

  it("replacing and removing records releases what no record uses any more", () => {
    const idx = new ScanIndex();
    idx.upsert("a", record("ghcr.io/acme/a:1", "A", [finding("CVE-1")]));
    idx.upsert("b", record("ghcr.io/acme/b:1", "B", [finding("CVE-1")]));
    idx.upsert("a", record("ghcr.io/acme/a:1", "A", [finding("CVE-3")]));
    assert.deepEqual(idx.interner.stats, { findings: 2, lists: 2 });
    idx.remove("b");
    assert.deepEqual(idx.interner.stats, { findings: 1, lists: 1 });
    idx.remove("a");
    assert.deepEqual(idx.interner.stats, { findings: 0, lists: 0 });
    assert.equal(idx.lookup(parseImage("ghcr.io/acme/a:1")), undefined);
  });
});
