// Issue 11 item 8: which namespaces' scan reports speak for which pods.
import { strict as assert } from "node:assert";
import { parseImage } from "../../common/images.ts";
import { configFromEnv } from "../../operator/config.ts";
import { evaluatePod, type PodUnderReview } from "../../policy/admission.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import type { ScanRecord, Vulnerability } from "../../scans/records.ts";
import { ScanIndex } from "../../scans/scan-index.ts";

const NOW = new Date("2025-06-01T12:00:00Z");
const IMAGE = "ghcr.io/acme/orders:1.0";
const DIGEST = "sha256:" + "ab".repeat(32);
const crit = (n: number): Vulnerability[] => Array.from({ length: n }, (_, i) => ({ id: `CVE-2024-100${i}`, severity: "CRITICAL" as const }));
const rec = (ref: string, source: string, scannedAt: string, vulnerabilities: Vulnerability[]): ScanRecord => ({ image: parseImage(ref), source, scannedAt, vulnerabilities });
const shopPod = (image = IMAGE): PodUnderReview => ({
  namespace: "shop",
  labels: { app: "orders" },
  podSpec: { securityContext: { runAsNonRoot: true }, containers: [{ name: "o", image, securityContext: { allowPrivilegeEscalation: false } }] },
  owner: "Pod shop/orders-0",
});
const rules: RuleRef[] = [{ namespace: "shop", name: "strict", spec: { selector: {}, vulnerabilities: { thresholds: { critical: 0 } } } }];
const trusted = () => new ScanIndex(["trivy-system", "tenet-system"]);

describe("scan reports speak only for pods they may (issue 11 item 8)", () => {
  it("a report planted in namespace evil does not change the verdict for a pod in namespace shop", () => {
    const idx = trusted();
    idx.upsert("vr/shop/orders", rec(IMAGE, "VulnerabilityReport shop/orders", "2025-05-01T00:00:00Z", crit(2)), "shop");
    assert.equal(evaluatePod(shopPod(), rules, idx, NOW).allowed, false, "the shop report: 2 criticals, refused");
    // A clean report, newer (the writer chooses updateTimestamp), in another tenant's namespace.
    idx.upsert("vr/evil/orders", rec(IMAGE, "VulnerabilityReport evil/orders", "2030-01-01T00:00:00Z", []), "evil");
    assert.equal(idx.lookup(parseImage(IMAGE), "shop")?.source, "VulnerabilityReport shop/orders");
    assert.equal(evaluatePod(shopPod(), rules, idx, NOW).allowed, false, "the planted clean report does not clear the image in shop");
    assert.equal(idx.lookup(parseImage(IMAGE), "evil")?.source, "VulnerabilityReport evil/orders", "it still speaks for pods in evil");
    // Nor can a planted vulnerable report block a clean image elsewhere.
    const clean = trusted();
    clean.upsert("vr/shop/orders", rec(IMAGE, "VulnerabilityReport shop/orders", "2025-05-01T00:00:00Z", []), "shop");
    clean.upsert("vr/evil/orders", rec(IMAGE, "VulnerabilityReport evil/orders", "2030-01-01T00:00:00Z", crit(5)), "evil");
    assert.equal(evaluatePod(shopPod(), rules, clean, NOW).allowed, true);
  });

  it("a report in evil for the pod's digest is ignored too (the digest index is filtered the same way)", () => {
    const idx = trusted();
    idx.upsert("vr/shop/orders", rec(`${IMAGE}@${DIGEST}`, "shop digest", "2025-05-01T00:00:00Z", crit(1)), "shop");
    idx.upsert("vr/evil/mirror", rec(`evil.example/mirror@${DIGEST}`, "evil mirror digest", "2030-01-01T00:00:00Z", []), "evil");
    assert.equal(idx.lookup(parseImage(`${IMAGE}@${DIGEST}`), "shop")?.source, "shop digest");
    const only = trusted();
    only.upsert("vr/evil/mirror", rec(`evil.example/mirror@${DIGEST}`, "evil mirror digest", "2030-01-01T00:00:00Z", []), "evil");
    assert.equal(only.lookup(parseImage(`${IMAGE}@${DIGEST}`), "shop"), undefined, "unscanned for shop, not clean");
  });

  it("a report in the pod's own namespace, or in a trusted scanner namespace, does", () => {
    const own = trusted();
    own.upsert("vr/shop/orders", rec(IMAGE, "VulnerabilityReport shop/orders", "2025-05-01T00:00:00Z", crit(1)), "shop");
    assert.equal(evaluatePod(shopPod(), rules, own, NOW).allowed, false);
    const scanner = trusted();
    scanner.upsert("vr/trivy-system/orders", rec(IMAGE, "VulnerabilityReport trivy-system/orders", "2025-05-01T00:00:00Z", crit(1)), "trivy-system");
    assert.equal(evaluatePod(shopPod(), rules, scanner, NOW).allowed, false, "trivy-system speaks for every namespace");
    const tenet = trusted();
    tenet.upsert("cm/trivy-reports/orders.json", rec(IMAGE, "ConfigMap tenet-system/trivy-reports key orders.json", "2025-05-01T00:00:00Z", crit(1)), "tenet-system");
    assert.equal(evaluatePod(shopPod(), rules, tenet, NOW).allowed, false, "Tenet's own namespace (Trivy JSON ConfigMaps) too");
    // Which one speaks when both do: the usual order (newest).
    scanner.upsert("vr/shop/orders", rec(IMAGE, "VulnerabilityReport shop/orders", "2025-06-01T00:00:00Z", []), "shop");
    assert.equal(scanner.lookup(parseImage(IMAGE), "shop")?.source, "VulnerabilityReport shop/orders");
  });

  it("the trusted scanner namespaces come from TENET_SCAN_NAMESPACES (default trivy-system and Tenet's namespace)", () => {
    assert.deepEqual(configFromEnv({}).scanNamespaces, ["trivy-system", "tenet-system"]);
    assert.deepEqual(configFromEnv({ TENET_NAMESPACE: "tenet" }).scanNamespaces, ["trivy-system", "tenet"]);
    assert.deepEqual(configFromEnv({ TENET_SCAN_NAMESPACES: "scanners, security" }).scanNamespaces, ["scanners", "security"]);
    assert.deepEqual(configFromEnv({ TENET_SCAN_NAMESPACES: "" }).scanNamespaces, [], "empty: every report speaks for its own namespace only");
    const idx = new ScanIndex(configFromEnv({ TENET_SCAN_NAMESPACES: "scanners" }).scanNamespaces);
    idx.upsert("vr/trivy-system/orders", rec(IMAGE, "trivy-system", "2025-05-01T00:00:00Z", crit(1)), "trivy-system");
    assert.equal(idx.lookup(parseImage(IMAGE), "shop"), undefined, "trivy-system no longer trusted");
    idx.upsert("vr/scanners/orders", rec(IMAGE, "scanners", "2025-05-01T00:00:00Z", crit(1)), "scanners");
    assert.equal(idx.lookup(parseImage(IMAGE), "shop")?.source, "scanners");
  });
});
