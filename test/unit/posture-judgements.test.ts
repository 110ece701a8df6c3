import { strict as assert } from "node:assert";
import type { RuntimeRuleSpec } from "../../crds/types.gen.ts";
import { toCachedPod } from "../../operator/cache/pods.ts";
import { injectPod } from "../../admission/inject.ts";
import { planPosture } from "../../operator/posture/evaluate.ts";
import { JudgementCache } from "../../operator/posture/judgements.ts";
import { parseImage } from "../../common/images.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";

const NOW = new Date("2026-06-01T12:00:00Z");
const INJECTION = { image: "tenet-operator:dev", args: [], caEndpoint: "https://tenet-operator.tenet-system.svc:443", inboundPort: 15443, outboundPort: 15001, healthPort: 15021, resources: { requests: {}, limits: {} }, tokenExpirationSeconds: 3600, version: "test", capture: { enabled: false, image: "tenet.local/tenet-capture:dev", inboundPort: 15006, outboundPort: 15002, enforcerUID: 15900 } };
const rule = (name: string, spec: Partial<RuntimeRuleSpec>): RuleRef => ({ namespace: "demo", name, spec: { selector: {}, ...spec } });
const strict = rule("strict", { vulnerabilities: { thresholds: { critical: 0 } } });
const secure = rule("secure", { selector: { matchLabels: { tier: "web" } }, podSecurity: { privileged: "deny" } } as Partial<RuntimeRuleSpec>);

function index(): ScanIndex {
  const idx = new ScanIndex();
  idx.upsert("vr/bad", { image: parseImage("ghcr.io/acme/bad:1.0"), source: "VulnerabilityReport demo/bad", vulnerabilities: [{ id: "CVE-2024-3094", severity: "CRITICAL", fixedVersion: "1.1" }] });
  idx.upsert("vr/good", { image: parseImage("ghcr.io/acme/good:1.0"), source: "VulnerabilityReport demo/good", vulnerabilities: [] });
  return idx;
}

/** A replica of a template: its own name, the template's labels and spec. */
function replica(name: string, image: string, o: { labels?: Record<string, string>; annotations?: Record<string, string>; privileged?: boolean } = {}) {
  return toCachedPod({
    metadata: { name, namespace: "demo", uid: `u-${name}`, resourceVersion: "1", labels: { app: "web", tier: "web", ...o.labels }, annotations: o.annotations },
    spec: { containers: [{ name: "app", image, ...(o.privileged ? { securityContext: { privileged: true } } : {}) }] },
  });
}

function both(pod: ReturnType<typeof replica>, rules: RuleRef[], scans: ScanIndex, cache: JudgementCache, now = NOW) {
  const fresh = planPosture({ pod, rules, scans, namespaceLabels: {}, now, injection: INJECTION });
  const cached = planPosture({ pod, rules, scans, namespaceLabels: {}, now, injection: INJECTION, judgements: cache });
  return { fresh, cached };
}

describe("posture judgements shared by a template's pods (operator/posture/judgements.ts)", () => {
  it("gives the pods of one template one frozen security object, and other specs their own", () => {
    const a = replica("web-1", "ghcr.io/acme/good:1.0");
    const b = replica("web-2", "ghcr.io/acme/good:1.0", { labels: { "tenet.dev/posture": "clean" } });
    const c = replica("other", "ghcr.io/acme/bad:1.0");
    assert.equal(a.security, b.security);
    assert.notEqual(a.security, c.security);
    assert.ok(Object.isFrozen(a.security) && Object.isFrozen(a.security.containers) && Object.isFrozen(a.security.containers![0]));
    assert.throws(() => ((a.security.containers as any)[0].image = "x"), TypeError);
  });

  it("answers every golden pod exactly as a fresh evaluation, per pod state included, and hits for the second replica", () => {
    const scans = index();
    const rules = [strict, secure];
    const golden = [
      ["ghcr.io/acme/bad:1.0", {}],
      ["ghcr.io/acme/good:1.0", {}],
      ["ghcr.io/acme/unknown:1.0", {}],
      ["ghcr.io/acme/good:1.0", { privileged: true }],
      ["not a valid image", {}],
    ] as const;
    for (const [image, o] of golden) {
      const cache = new JudgementCache();
      // Same template, different per-pod state: a quarantine in place, an explicit release, nothing.
      const states: { labels?: Record<string, string>; annotations?: Record<string, string> }[] = [{}, { labels: { "tenet.dev/quarantined": "true" }, annotations: { "tenet.dev/quarantined-by": '["demo/strict"]' } }, { labels: { "tenet.dev/quarantined": "true" }, annotations: { "tenet.dev/release": "accepted" } }];
      states.forEach((st, i) => {
        const { fresh, cached } = both(replica(`web-${i}`, image, { ...o, ...st }), rules, scans, cache);
        assert.deepEqual(cached, fresh, `${image} ${JSON.stringify(o)} state ${i}`);
      });
      assert.equal(cache.misses, 1, `${image}: judged once`);
      assert.equal(cache.hits, 2, `${image}: replicas after the first are hits`);
    }
  });

  it("starts over when a report, a rule spec, the selection, the clock past an exemption, or the injected containers change", () => {
    const cache = new JudgementCache();
    const scans = index();
    const judged = (pod: ReturnType<typeof replica>, rules: RuleRef[], now = NOW) => planPosture({ pod, rules, scans, namespaceLabels: {}, now, injection: INJECTION, judgements: cache });
    assert.equal(judged(replica("w1", "ghcr.io/acme/good:1.0"), [strict]).posture, "clean");

    // A new report for the image.
    scans.upsert("vr/good", { image: parseImage("ghcr.io/acme/good:1.0"), source: "VulnerabilityReport demo/good", vulnerabilities: [{ id: "CVE-2025-1", severity: "CRITICAL", fixedVersion: "2" }] });
    assert.equal(judged(replica("w2", "ghcr.io/acme/good:1.0"), [strict]).posture, "violating");

    // The rule's spec replaced (the informer's new object), thresholds relaxed.
    const relaxed = rule("strict", { vulnerabilities: { thresholds: { critical: 5 } } });
    assert.equal(judged(replica("w3", "ghcr.io/acme/good:1.0"), [relaxed]).posture, "clean");

    // Selection: labels that the rule no longer selects.
    const webOnly = rule("strict", { selector: { matchLabels: { tier: "web" } }, vulnerabilities: { thresholds: { critical: 0 } } });
    assert.equal(judged(replica("w4", "ghcr.io/acme/good:1.0"), [webOnly]).posture, "violating");
    assert.equal(judged(replica("w5", "ghcr.io/acme/good:1.0", { labels: { tier: "batch" } }), [webOnly]).posture, undefined);

    // An exemption expiring.
    const ex = rule("ex", { vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2025-1", expires: "2026-06-01T12:00:10Z", reason: "r" }] } });
    assert.equal(judged(replica("w6", "ghcr.io/acme/good:1.0"), [ex]).posture, "warn");
    assert.equal(judged(replica("w7", "ghcr.io/acme/good:1.0"), [ex], new Date("2026-06-01T12:00:09Z")).posture, "warn");
    assert.equal(judged(replica("w8", "ghcr.io/acme/good:1.0"), [ex], new Date("2026-06-01T12:00:10Z")).posture, "violating");

    // Tenet's injected enforcer is left out of judgement; a look-alike is judged.
    const strictPS = rule("ps", { podSecurity: { privilegeEscalation: "deny" } } as Partial<RuntimeRuleSpec>);
    const raw = (name: string) => injectPod({ metadata: { name, namespace: "demo", uid: name, resourceVersion: "1", labels: { app: "web" } }, spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image: "ghcr.io/acme/good:1.0", securityContext: { allowPrivilegeEscalation: false } }] } }, INJECTION);
    const injected = toCachedPod(raw("i1"));
    const fresh = planPosture({ pod: injected, rules: [strictPS], scans, namespaceLabels: {}, now: NOW, injection: INJECTION });
    assert.deepEqual(judged(injected, [strictPS]), fresh);
    const forged = toCachedPod(raw("i2"));
    const other = { ...INJECTION, image: "somebody-else:1" };
    assert.deepEqual(
      planPosture({ pod: forged, rules: [strictPS], scans, namespaceLabels: {}, now: NOW, injection: other, judgements: cache }),
      planPosture({ pod: forged, rules: [strictPS], scans, namespaceLabels: {}, now: NOW, injection: other }),
      "with another injection configuration the same enforcer is not Tenet's: judged, not taken from the entry",
    );
  });

  it("holds at most its bound of entries", () => {
    const cache = new JudgementCache(10);
    const scans = index();
    for (let i = 0; i < 50; i++) planPosture({ pod: replica(`p${i}`, `ghcr.io/acme/img-${i}:1.0`), rules: [strict], scans, namespaceLabels: {}, now: NOW, injection: INJECTION, judgements: cache });
    assert.equal(cache.size, 10);
  });
});
