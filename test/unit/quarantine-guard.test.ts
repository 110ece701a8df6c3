// Issue 11 item 4 (a, b): the pod metadata Tenet's quarantine rests on, guarded by the validating webhook.
import { strict as assert } from "node:assert";
import { protectTenetMetadata, releaseReview } from "../../admission/protect.ts";
import { desiredWebhookConfigurations } from "../../operator/admission/webhook-config.ts";
import type { AdmissionRequest } from "../../admission/review.ts";
import { toCachedPod } from "../../operator/cache/pods.ts";
import { planPosture } from "../../operator/posture/evaluate.ts";
import { parseImage } from "../../common/images.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";

const TENET = "system:serviceaccount:tenet-system:tenet-operator";
const podMeta = (labels: Record<string, string> = {}, annotations: Record<string, string> = {}) => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "shop", labels, annotations }, spec: { containers: [] } });
const update = (before: any, after: any, username = "alice"): AdmissionRequest => ({
  uid: "1",
  kind: { group: "", version: "v1", kind: "Pod" },
  resource: { group: "", version: "v1", resource: "pods" },
  namespace: "shop",
  operation: "UPDATE",
  userInfo: { username, groups: ["system:authenticated"] },
  object: after,
  oldObject: before,
});
const deps = (mayRelease = false) => ({ isTenet: (u: string | undefined) => u === TENET, mayRelease: async () => mayRelease });
const quarantined = podMeta({ "tenet.dev/quarantined": "true", "tenet.dev/posture": "violating" }, { "tenet.dev/certificates": '{"0a":"2030-01-01T00:00:00Z"}' });

describe("quarantine guard: Tenet's pod metadata (issue 11 item 4)", () => {
  it("refuses anyone but Tenet emptying the serials, removing the quarantine or changing the posture", async () => {
    for (const after of [
      podMeta({ "tenet.dev/quarantined": "true", "tenet.dev/posture": "violating" }, { "tenet.dev/certificates": "{}" }),
      podMeta({ "tenet.dev/posture": "violating" }, quarantined.metadata.annotations),
      podMeta({ "tenet.dev/quarantined": "true", "tenet.dev/posture": "clean" }, quarantined.metadata.annotations),
      podMeta(quarantined.metadata.labels, { ...quarantined.metadata.annotations, "tenet.dev/released": "0123456789abcdef" }),
    ]) {
      const r = await protectTenetMetadata(update(quarantined, after), deps());
      assert.equal(r?.allowed, false);
      assert.match(r!.message!, /alice may not change .*only Tenet's own ServiceAccount/);
      assert.equal(await protectTenetMetadata(update(quarantined, after, TENET), deps()), undefined, "Tenet may");
    }
  });

  it("guards the same keys on updates through pods/status and pods/ephemeralcontainers", async () => {
    const after = podMeta({ "tenet.dev/posture": "clean" }, quarantined.metadata.annotations);
    for (const subResource of ["status", "ephemeralcontainers"]) {
      const r = await protectTenetMetadata({ ...update(quarantined, after), subResource }, deps());
      assert.equal(r?.allowed, false, subResource);
      assert.match(r!.message!, /only Tenet's own ServiceAccount/);
    }
    const status = desiredWebhookConfigurations({ service: { namespace: "tenet-system", name: "tenet-operator", port: 443 }, caBundlePEM: "x", timeoutSeconds: 5 }, "tenet-system")
      .validating.webhooks[0].rules.find((r: any) => r.resources.includes("pods/status"));
    assert.deepEqual(status?.operations, ["UPDATE"], "pods/status updates reach the webhook");
  });

  it("lets anyone change other metadata, and quarantine a pod by hand", async () => {
    assert.equal(await protectTenetMetadata(update(quarantined, podMeta({ ...quarantined.metadata.labels, team: "x" }, quarantined.metadata.annotations)), deps()), undefined);
    assert.equal(await protectTenetMetadata(update(podMeta(), podMeta({ "tenet.dev/quarantined": "true" })), deps()), undefined);
  });

  it("refuses tenet.dev/certificates or tenet.dev/released planted at create time", async () => {
    const create = { ...update(undefined, podMeta({}, { "tenet.dev/released": "0123456789abcdef" })), operation: "CREATE" as const, oldObject: undefined };
    assert.equal((await protectTenetMetadata(create, deps()))?.allowed, false);
  });

  it("needs update on runtimerules/release (SubjectAccessReview) to set tenet.dev/release, not to remove it", async () => {
    const asked = podMeta(quarantined.metadata.labels, { ...quarantined.metadata.annotations, "tenet.dev/release": "INC-1" });
    const r = await protectTenetMetadata(update(quarantined, asked), deps(false));
    assert.equal(r?.allowed, false);
    assert.match(r!.message!, /update runtimerules\/release \(apiGroup tenet\.dev\)/);
    assert.equal(await protectTenetMetadata(update(quarantined, asked), deps(true)), undefined);
    assert.equal(await protectTenetMetadata(update(asked, quarantined), deps(false)), undefined);
    assert.deepEqual(releaseReview({ username: "alice", groups: ["g"] }, "shop").spec.resourceAttributes, { namespace: "shop", verb: "update", group: "tenet.dev", resource: "runtimerules", subresource: "release" });
  });

  it("has the validating webhook sent metadata-only updates that touch the guarded keys", () => {
    const { validating } = desiredWebhookConfigurations({ service: { namespace: "tenet-system", name: "tenet-operator", port: 443 }, caBundlePEM: "x", timeoutSeconds: 5 }, "tenet-system");
    const expr = validating.webhooks[0].matchConditions[0].expression;
    for (const k of ["tenet.dev/release", "tenet.dev/certificates", "tenet.dev/quarantined", "tenet.dev/posture", "tenet.dev/released"]) assert.ok(expr.includes(`'${k}'`), k);
    assert.match(expr, /object\.spec != oldObject\.spec/);
  });

  it("skips only Tenet's own metadata-only updates, and only for the configured usernames", () => {
    const ep = { service: { namespace: "tenet-system", name: "tenet-operator", port: 443 }, caBundlePEM: "x", timeoutSeconds: 5 };
    const none = desiredWebhookConfigurations(ep, "tenet-system").validating.webhooks[0].matchConditions;
    assert.deepEqual(none.map((c) => c.name), ["spec-or-tenet-metadata-changed"]);
    const conds = desiredWebhookConfigurations(ep, "tenet-system", ["system:serviceaccount:tenet-system:tenet-operator", 'odd"name']).validating.webhooks[0].matchConditions;
    assert.deepEqual(conds.map((c) => c.name), ["spec-or-tenet-metadata-changed", "not-tenet-metadata-write"]);
    assert.equal(conds[1].expression, `!(request.operation == 'UPDATE' && object.spec == oldObject.spec && request.userInfo.username in ["system:serviceaccount:tenet-system:tenet-operator", "odd\\"name"])`);
  });
});

describe("quarantine guard: relabelling does not release (issue 11 item 4c)", () => {
  const INJECTION = { image: "tenet.local/tenet-enforcer:dev", args: [], caEndpoint: "https://tenet-operator.tenet-system.svc:443", inboundPort: 15443, outboundPort: 15001, healthPort: 15021, resources: { requests: {}, limits: {} }, tokenExpirationSeconds: 3600, version: "test", capture: { enabled: false, image: "tenet.local/tenet-capture:dev", inboundPort: 15006, outboundPort: 15002, enforcerUID: 15900 } };
  const strict: RuleRef = { namespace: "demo", name: "strict", spec: { selector: { matchLabels: { app: "orders" } }, vulnerabilities: { thresholds: { critical: 0 } } } as any };
  const lax: RuleRef = { namespace: "demo", name: "lax", spec: { selector: { matchLabels: { app: "other" } }, vulnerabilities: { thresholds: { critical: 5 } } } as any };
  const index = () => {
    const idx = new ScanIndex();
    idx.upsert("vr/bad", { image: parseImage("ghcr.io/acme/bad:1.0"), source: "VulnerabilityReport demo/bad", vulnerabilities: [{ id: "CVE-2024-3094", severity: "CRITICAL", fixedVersion: "1.1" }] });
    return idx;
  };
  const plan = (labels: Record<string, string>, annotations: Record<string, string> = {}, rules: RuleRef[] = [strict, lax]) =>
    planPosture({
      pod: toCachedPod({ metadata: { name: "p", namespace: "demo", uid: "u", resourceVersion: "1", labels, annotations }, spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image: "ghcr.io/acme/bad:1.0", securityContext: { allowPrivilegeEscalation: false } }] } }),
      rules,
      scans: index(),
      namespaceLabels: {},
      now: new Date("2026-06-01T12:00:00Z"),
      injection: INJECTION,
    });

  it("records the rules that quarantined the pod", () => {
    const p = plan({ app: "orders" });
    assert.equal(p.quarantine, true);
    assert.equal(p.quarantinedBy, JSON.stringify(["demo/strict"]));
  });

  it("keeps a pod quarantined when it is relabelled so that no rule selects it", () => {
    const p = plan({ app: "nothing", "tenet.dev/quarantined": "true" }, { "tenet.dev/quarantined-by": '["demo/strict"]' });
    assert.equal(p.keepQuarantine, true);
    assert.equal(p.quarantinedBy, '["demo/strict"]');
    assert.equal(plan({ app: "nothing", "tenet.dev/quarantined": "true" }).keepQuarantine, true, "without a record too");
  });

  it("keeps it quarantined when relabelled to a laxer rule it passes", () => {
    const p = plan({ app: "other", "tenet.dev/quarantined": "true" }, { "tenet.dev/quarantined-by": '["demo/strict"]' });
    assert.equal(p.posture, "clean");
    assert.equal(p.keepQuarantine, true);
  });

  it("still releases automatically when the quarantining rule itself allows the pod again", () => {
    const relaxed: RuleRef = { ...strict, spec: { ...strict.spec, vulnerabilities: { thresholds: { critical: 5 } } } as any };
    assert.equal(plan({ app: "orders", "tenet.dev/quarantined": "true" }, { "tenet.dev/quarantined-by": '["demo/strict"]' }, [relaxed]).keepQuarantine, false);
  });
});
