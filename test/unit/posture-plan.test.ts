import { strict as assert } from "node:assert";
import type { RuntimeRuleSpec } from "../../crds/types.gen.ts";
import { toCachedPod } from "../../operator/cache/pods.ts";
import { injectPod } from "../../admission/inject.ts";
import { planPosture, type PosturePlan } from "../../operator/posture/evaluate.ts";
import { parseImage } from "../../common/images.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";

const NOW = new Date("2026-06-01T12:00:00Z");
const ENFORCER_IMAGE = "tenet-operator:dev";
const INJECTION = { image: ENFORCER_IMAGE, args: [], caEndpoint: "https://tenet-operator.tenet-system.svc:443", inboundPort: 15443, outboundPort: 15001, healthPort: 15021, resources: { requests: {}, limits: {} }, tokenExpirationSeconds: 3600, version: "test", capture: { enabled: false, image: "tenet.local/tenet-capture:dev", inboundPort: 15006, outboundPort: 15002, enforcerUID: 15900 } };
const rule = (name: string, spec: Partial<RuntimeRuleSpec>): RuleRef => ({ namespace: "demo", name, spec: { selector: {}, ...spec } });
const strict = rule("strict", { vulnerabilities: { thresholds: { critical: 0 } } });

function index(): ScanIndex {
  const idx = new ScanIndex();
  idx.upsert("vr/bad", { image: parseImage("ghcr.io/acme/bad:1.0"), source: "VulnerabilityReport demo/bad", vulnerabilities: [{ id: "CVE-2024-3094", severity: "CRITICAL", fixedVersion: "1.1" }] });
  idx.upsert("vr/good", { image: parseImage("ghcr.io/acme/good:1.0"), source: "VulnerabilityReport demo/good", vulnerabilities: [] });
  return idx;
}

function pod(image: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}, extra: any = {}) {
  return toCachedPod({
    metadata: { name: "p", namespace: "demo", uid: "u", resourceVersion: "1", labels: { app: "p", ...meta.labels }, annotations: meta.annotations },
    spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image, securityContext: { allowPrivilegeEscalation: false } }], ...extra },
  });
}

const plan = (p: ReturnType<typeof pod>, rules: RuleRef[] = [strict], ns: Record<string, string> = {}): PosturePlan =>
  planPosture({ pod: p, rules, scans: index(), namespaceLabels: ns, now: NOW, injection: INJECTION });

describe("posture plan (pure: the admission verdict, plus quarantine and release from labels)", () => {
  it("calls a pod over a threshold violating and quarantines it in enforce mode", () => {
    const p = plan(pod("ghcr.io/acme/bad:1.0"));
    assert.equal(p.posture, "violating");
    assert.equal(p.detail?.reason, "OverThreshold");
    assert.deepEqual(p.detail?.counts, { critical: 1 });
    assert.deepEqual(p.detail?.rules, ["demo/strict"]);
    assert.equal(p.quarantine, true);
  });

  it("labels but does not quarantine in audit mode", () => {
    const p = plan(pod("ghcr.io/acme/bad:1.0"), [rule("audit", { enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } })]);
    assert.equal(p.posture, "violating");
    assert.equal(p.quarantine, false);
  });

  it("calls a pod within thresholds only thanks to an exemption warn, and violating once it expires", () => {
    const ex = rule("ex", { vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-3094", expires: "2026-06-01T12:00:10Z", reason: "r" }] } });
    const p = plan(pod("ghcr.io/acme/bad:1.0"), [ex]);
    assert.equal(p.posture, "warn");
    assert.equal(p.nextExpiry, Date.parse("2026-06-01T12:00:10Z"));
    const later = planPosture({ pod: pod("ghcr.io/acme/bad:1.0"), rules: [ex], scans: index(), namespaceLabels: {}, now: new Date("2026-06-01T12:00:10Z"), injection: INJECTION });
    assert.equal(later.posture, "violating", "at the expires instant the vulnerability counts again, as at admission");
  });

  it("calls an image with no scan unscanned, and keeps a quarantine in place while unscanned", () => {
    const p = plan(pod("ghcr.io/acme/unknown:1.0", { labels: { "tenet.dev/quarantined": "true" } }));
    assert.equal(p.posture, "unscanned");
    assert.equal(p.keepQuarantine, true, "deleting a report must not release a pod");
  });

  it("releases automatically when clean, unless a rule sets autoRelease: false", () => {
    const q = { labels: { "tenet.dev/quarantined": "true" } };
    assert.equal(plan(pod("ghcr.io/acme/good:1.0", q)).keepQuarantine, false);
    const manual = rule("manual", { vulnerabilities: { thresholds: { critical: 0 } }, quarantine: { autoRelease: false } });
    assert.equal(plan(pod("ghcr.io/acme/good:1.0", q), [manual]).keepQuarantine, true);
  });

  it("honours an explicit release and does not quarantine again for the same violation", () => {
    const p = plan(pod("ghcr.io/acme/bad:1.0", { labels: { "tenet.dev/quarantined": "true" }, annotations: { "tenet.dev/release": "INC-1" } }));
    assert.equal(p.explicitRelease, true);
    assert.equal(p.quarantine, false);
    assert.ok(p.released);
    const again = plan(pod("ghcr.io/acme/bad:1.0", { annotations: { "tenet.dev/released": p.released! } }));
    assert.equal(again.quarantine, false);
    const other = plan(pod("ghcr.io/acme/bad:1.0", { annotations: { "tenet.dev/released": "0000" } }));
    assert.equal(other.quarantine, true, "another violation quarantines again");
  });

  it("treats an opted-in pod without the enforcer as violating, and ignores the enforcer image when it is there", () => {
    const bypass = plan(pod("ghcr.io/acme/good:1.0", { annotations: { "tenet.dev/inject": "true" } }));
    assert.equal(bypass.posture, "violating");
    assert.equal(bypass.detail?.reason, "EnforcerMissing");
    assert.equal(bypass.quarantine, true);
    const raw = injectPod({ metadata: { name: "p", namespace: "demo", uid: "u", resourceVersion: "1", labels: { app: "p" } }, spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image: "ghcr.io/acme/good:1.0", securityContext: { allowPrivilegeEscalation: false } }] } }, INJECTION);
    const injected = plan(toCachedPod(raw), [strict], { "tenet.dev/inject": "enabled" });
    assert.equal(injected.posture, "clean", "the enforcer's own image is not judged");
    assert.equal(plan(pod("ghcr.io/acme/good:1.0", { annotations: { "tenet.dev/inject": "false" } }), [strict], { "tenet.dev/inject": "enabled" }).posture, "clean", "opted out");
  });

  it("gives no posture to a pod no rule selects", () => {
    const p = plan(pod("ghcr.io/acme/bad:1.0"), [rule("other", { selector: { matchLabels: { app: "x" } }, vulnerabilities: { thresholds: { critical: 0 } } })]);
    assert.equal(p.posture, undefined);
    assert.equal(p.quarantine, false);
  });
});
