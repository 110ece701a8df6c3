import { strict as assert } from "node:assert";
import type { RuntimeRuleVulnerabilities } from "../../crds/types.gen.ts";
import { parseImage } from "../../common/images.ts";
import { fromTrivyJSON, fromVulnerabilityReport } from "../../scans/parse.ts";
import { type ScanRecord, type Vulnerability } from "../../scans/records.ts";
import { evaluateImage, type RuleRef } from "../../policy/vulnerabilities.ts";
import { jsonFixture, yamlFixture } from "../harness/fixtures.ts";

const NOW = new Date("2025-06-01T12:00:00Z");

const rule = (vulnerabilities: RuntimeRuleVulnerabilities | undefined, enforcement: "enforce" | "audit" = "enforce"): RuleRef => ({
  namespace: "demo",
  name: "baseline",
  spec: { selector: {}, enforcement, ...(vulnerabilities ? { vulnerabilities } : {}) },
});

const ORDERS = parseImage("ghcr.io/acme/orders:1.0");
const scan = (vulns: Vulnerability[], image = ORDERS): ScanRecord => ({ image, source: "VulnerabilityReport demo/replicaset-orders-app", vulnerabilities: vulns });
const v = (id: string, severity: Vulnerability["severity"], fixedVersion?: string): Vulnerability => ({ id, severity, pkg: "openssl", installedVersion: "1.0", ...(fixedVersion ? { fixedVersion } : {}) });

// 3 critical (one of them unfixed), 2 high.
const ORDERS_SCAN = scan([v("CVE-2024-0001", "CRITICAL", "1.1"), v("CVE-2024-0002", "CRITICAL", "1.1"), v("CVE-2024-0003", "CRITICAL"), v("CVE-2024-0004", "HIGH", "2"), v("CVE-2024-0005", "HIGH", "2")]);

describe("vulnerability thresholds", () => {
  const cases: [string, RuntimeRuleVulnerabilities, "allow" | "deny", string, Partial<Record<string, number>>][] = [
    ["denies an image over the critical threshold", { thresholds: { critical: 0 } }, "deny", "OverThreshold", { CRITICAL: 3, HIGH: 2 }],
    ["allows an image exactly at the threshold", { thresholds: { critical: 3, high: 2 } }, "allow", "WithinThresholds", { CRITICAL: 3, HIGH: 2 }],
    ["an absent severity has no limit", { thresholds: { high: 5 } }, "allow", "WithinThresholds", { CRITICAL: 3 }],
    ["ignoreUnfixed does not count findings without a fixed version", { thresholds: { critical: 2 }, ignoreUnfixed: true }, "allow", "WithinThresholds", { CRITICAL: 2 }],
    ["without ignoreUnfixed unfixed findings count", { thresholds: { critical: 2 } }, "deny", "OverThreshold", { CRITICAL: 3 }],
  ];
  for (const [name, vulns, decision, reason, counts] of cases) {
    it(name, () => {
      const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule(vulns), NOW);
      assert.equal(verdict.decision, decision);
      assert.equal(verdict.reason, reason);
      for (const [s, n] of Object.entries(counts)) assert.equal(verdict.counts[s as keyof typeof verdict.counts], n, s);
      assert.equal(verdict.source, "VulnerabilityReport demo/replicaset-orders-app");
    });
  }

  it("explains a denial with the image, counts vs thresholds, the rule, the scan and the fix", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule({ thresholds: { critical: 0, high: 1 } }), NOW);
    assert.deepEqual(verdict.exceeded, [
      { severity: "CRITICAL", count: 3, threshold: 0 },
      { severity: "HIGH", count: 2, threshold: 1 },
    ]);
    assert.match(verdict.message, /^image ghcr\.io\/acme\/orders:1\.0 has 3 critical \(threshold 0\) and 2 high \(threshold 1\) vulnerabilities/);
    assert.match(verdict.message, /CVE-2024-0001 in openssl 1\.0, fixed in 1\.1/);
    assert.match(verdict.message, /RuntimeRule demo\/baseline \(scan: VulnerabilityReport demo\/replicaset-orders-app\)/);
    assert.match(verdict.message, /upgrade the image, or add an exemption to spec\.vulnerabilities\.exemptions of RuntimeRule demo\/baseline with an expires date$/);
  });

  it("audit mode never denies: what would deny becomes warn", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule({ thresholds: { critical: 0 } }, "audit"), NOW);
    assert.equal(verdict.decision, "warn");
    assert.equal(verdict.reason, "OverThreshold");
    assert.equal(verdict.enforcement, "audit");
    assert.match(verdict.message, /audit mode/);
  });

  it("a rule without spec.vulnerabilities allows and says so", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule(undefined), NOW);
    assert.equal(verdict.decision, "allow");
    assert.equal(verdict.reason, "NoVulnerabilityPolicy");
    assert.match(verdict.message, /RuntimeRule demo\/baseline has no spec\.vulnerabilities/);
  });
});

describe("vulnerability exemptions", () => {
  const EXPIRES = "2025-06-01T12:00:00Z";
  const exempting = (images?: string[], expires = EXPIRES): RuntimeRuleVulnerabilities => ({
    thresholds: { critical: 2 },
    exemptions: [{ id: "CVE-2024-0001", expires, reason: "JIRA-123: not reachable", ...(images ? { images } : {}) }],
  });

  it("exempts a finding until the instant before expiry", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule(exempting()), new Date(Date.parse(EXPIRES) - 1));
    assert.equal(verdict.decision, "allow");
    assert.equal(verdict.counts.CRITICAL, 2);
    assert.deepEqual(verdict.exempted, ["CVE-2024-0001"]);
    assert.deepEqual(verdict.expiredExemptions, []);
  });

  it("counts the finding again at the expiry instant itself", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule(exempting()), new Date(EXPIRES));
    assert.equal(verdict.decision, "deny");
    assert.equal(verdict.counts.CRITICAL, 3);
    assert.deepEqual(verdict.exempted, []);
    assert.deepEqual(verdict.expiredExemptions, ["CVE-2024-0001"]);
    assert.match(verdict.message, /the exemptions for CVE-2024-0001 have expired, so they count again/);
  });

  it("an exemption whose expiry cannot be read never applies", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule(exempting(undefined, "next tuesday")), NOW);
    assert.deepEqual(verdict.exempted, []);
    assert.deepEqual(verdict.expiredExemptions, ["CVE-2024-0001"]);
    assert.equal(verdict.decision, "deny");
  });

  it("the same exemption gives the same verdict for a report read from Trivy Operator or from Trivy JSON", () => {
    const fromOperator = fromVulnerabilityReport(yamlFixture("trivy-operator/web-nginx-2-critical.yaml"));
    const trivy = jsonFixture("trivy-cli/billing-full.json");
    const fromCLI = fromTrivyJSON(trivy, "file billing-full.json");
    const r = rule({ thresholds: { critical: 1 }, exemptions: [{ id: "CVE-2023-38545", expires: EXPIRES, reason: "r" }, { id: "CVE-2022-48174", expires: EXPIRES, reason: "r" }] });
    for (const [rec, exempted] of [[fromOperator, "CVE-2023-38545"], [fromCLI, "CVE-2022-48174"]] as const) {
      const before = evaluateImage(rec.image, rec, r, new Date(Date.parse(EXPIRES) - 1));
      const at = evaluateImage(rec.image, rec, r, new Date(EXPIRES));
      assert.equal(before.decision, "allow", rec.source);
      assert.deepEqual(before.exempted, [exempted]);
      assert.equal(at.decision, "deny", rec.source);
      assert.deepEqual(at.expiredExemptions, [exempted]);
    }
  });

  it("an exemption id covers every package the finding appears in", () => {
    const rec = fromTrivyJSON(jsonFixture("trivy-cli/billing-full.json"), "x");
    const verdict = evaluateImage(rec.image, rec, rule({ thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2022-48174", expires: "2030-01-01T00:00:00Z", reason: "busybox and ssl_client" }] }), NOW);
    assert.equal(verdict.counts.CRITICAL, 0);
    assert.equal(verdict.decision, "allow");
  });

  const scoped: [string, string[] | undefined, string, boolean][] = [
    ["an exemption without images applies to every image", undefined, "quay.io/other/app:1", true],
    ["an exemption applies to an image under its repository prefix", ["ghcr.io/acme"], "ghcr.io/acme/orders:1.0", true],
    ["an exemption applies to the exact repository", ["ghcr.io/acme/orders"], "ghcr.io/acme/orders:1.0", true],
    ["an exemption prefix matches whole path segments only", ["ghcr.io/acme/orders"], "ghcr.io/acme/orders-v2:1.0", false],
    ["an exemption does not apply to another registry", ["ghcr.io/acme"], "quay.io/acme/orders:1.0", false],
    ["an exemption for a Docker Hub name applies to the normalized image", ["nginx"], "docker.io/library/nginx:1", true],
  ];
  for (const [name, images, ref, applies] of scoped) {
    it(name, () => {
      const image = parseImage(ref);
      const verdict = evaluateImage(image, scan(ORDERS_SCAN.vulnerabilities, image), rule(exempting(images, "2030-01-01T00:00:00Z")), NOW);
      assert.deepEqual(verdict.exempted, applies ? ["CVE-2024-0001"] : []);
      assert.equal(verdict.decision, applies ? "allow" : "deny");
    });
  }

  it("an exemption for an unfixed finding that ignoreUnfixed already drops is not reported as used", () => {
    const verdict = evaluateImage(ORDERS, ORDERS_SCAN, rule({ thresholds: { critical: 2 }, ignoreUnfixed: true, exemptions: [{ id: "CVE-2024-0003", expires: "2030-01-01T00:00:00Z", reason: "r" }] }), NOW);
    assert.deepEqual(verdict.exempted, []);
    assert.equal(verdict.counts.CRITICAL, 2);
  });

  it("counts findings known only from a report's summary even with ignoreUnfixed", () => {
    const rec = fromVulnerabilityReport(yamlFixture("trivy-operator/ingress-summary-only.yaml"));
    const verdict = evaluateImage(rec.image, rec, rule({ thresholds: { high: 5 }, ignoreUnfixed: true, exemptions: [{ id: "CVE-2023-44487", expires: "2030-01-01T00:00:00Z", reason: "r" }] }), NOW);
    assert.equal(verdict.counts.HIGH, 6, "7 counted by the summary, one of them exempted");
    assert.equal(verdict.decision, "deny");
  });
});

describe("images without scan data", () => {
  const cases: [string, RuntimeRuleVulnerabilities["unscannedImages"], "enforce" | "audit", "allow" | "warn" | "deny", RegExp][] = [
    ["deny refuses an unscanned image", "deny", "enforce", "deny", /has no vulnerability scan yet and RuntimeRule demo\/baseline refuses unscanned images/],
    ["deny in audit mode only warns", "deny", "audit", "warn", /audit mode, so it is admitted/],
    ["warn admits with a warning", "warn", "enforce", "warn", /admits it with a warning/],
    ["the default is warn", undefined, "enforce", "warn", /unscannedImages: warn/],
    ["allow admits silently", "allow", "enforce", "allow", /admits unscanned images/],
    ["rescan admits now and says it will re-evaluate when a report arrives", "rescan", "enforce", "allow", /will re-evaluate it when a report arrives, quarantining the pod if it breaks the thresholds/],
  ];
  for (const [name, mode, enforcement, decision, message] of cases) {
    it(name, () => {
      const verdict = evaluateImage(ORDERS, undefined, rule({ thresholds: { critical: 0 }, ...(mode ? { unscannedImages: mode } : {}) }, enforcement), NOW);
      assert.equal(verdict.reason, "Unscanned");
      assert.equal(verdict.decision, decision);
      assert.match(verdict.message, message);
      assert.equal(verdict.source, undefined);
    });
  }
});
