import { strict as assert } from "node:assert";
import { defaultCAPolicy, loadAuthorities, nextPlanAt, planAuthorities, type CAState } from "../../operator/ca/authorities.ts";
import { durationSeconds, identityAttributes } from "../../operator/ca/attributes.ts";
import { loadCA } from "../../operator/ca/keypair.ts";

const policy = { ...defaultCAPolicy, validitySeconds: 100 * 86_400, rotateBeforeSeconds: 10 * 86_400, propagationSeconds: 60, maxLeafTTLSeconds: 86_400 };
const t0 = new Date("2026-11-01T00:00:00Z");
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const statuses = (s: CAState) => s.authorities.map((a) => a.status);

describe("CA rotation policy (planAuthorities)", () => {
  it("creates exactly one active CA when there is none", () => {
    const { state, changed, notes } = planAuthorities(undefined, t0, policy);
    assert.ok(changed);
    assert.deepEqual(statuses(state), ["active"]);
    assert.equal(notes[0].reason, "CACreated");
    assert.equal(loadAuthorities(state).active.subject.includes("Tenet"), true);
  });

  it("changes nothing for a healthy CA", () => {
    const first = planAuthorities(undefined, t0, policy).state;
    const again = planAuthorities(first, at(3600), policy);
    assert.equal(again.changed, false);
    assert.deepEqual(again.state, first);
  });

  it("on request adds a pending CA to the bundle that does not sign until propagation has passed", () => {
    const s0 = planAuthorities(undefined, t0, policy).state;
    const s1 = planAuthorities(s0, at(10), policy, "please").state;
    assert.deepEqual(statuses(s1), ["active", "pending"]);
    assert.equal(loadAuthorities(s1).active.serial, loadAuthorities(s0).active.serial, "the old CA still signs");
    assert.equal(loadAuthorities(s1).all.length, 2, "both are in the bundle");
    assert.equal(planAuthorities(s1, at(20), policy, "please").changed, false, "one request rotates once");
    assert.equal(nextPlanAt(s1), at(70).getTime());

    const s2 = planAuthorities(s1, at(70), policy, "please").state;
    assert.deepEqual(statuses(s2), ["retired", "active"]);
    assert.notEqual(loadAuthorities(s2).active.serial, loadAuthorities(s0).active.serial, "the new CA signs");
    assert.equal(s2.authorities[0].removeAt, at(70 + 86_400).toISOString(), "the old CA stays until its last leaf expires");

    const s3 = planAuthorities(s2, at(70 + 86_400), policy, "please").state;
    assert.deepEqual(statuses(s3), ["active"], "then it leaves the bundle");
  });

  it("rotates on its own when the active CA nears expiry", () => {
    const s0 = planAuthorities(undefined, t0, policy).state;
    assert.equal(planAuthorities(s0, at(89 * 86_400), policy).changed, false);
    const s1 = planAuthorities(s0, at(91 * 86_400), policy);
    assert.deepEqual(statuses(s1.state), ["active", "pending"]);
    assert.match(s1.notes[0].message, /active CA expires/);
  });

  it("refuses a state with no active CA or a broken key, naming the entry", () => {
    const s0 = planAuthorities(undefined, t0, policy).state;
    assert.throws(() => loadAuthorities({ ...s0, authorities: s0.authorities.map((a) => ({ ...a, status: "retired" as const })) }), /exactly one active CA, found 0/);
    const other = planAuthorities(undefined, t0, policy).state.authorities[0];
    assert.throws(() => loadAuthorities({ ...s0, authorities: [{ ...s0.authorities[0], key: other.key }] }), /authorities\[0\] \(active\)/);
    assert.throws(() => loadCA("not a pem", "nope"));
  });
});

describe("identity attributes", () => {
  const si = { apiVersion: "tenet.dev/v1alpha1", kind: "ServiceIdentity", metadata: { name: "orders", namespace: "demo" }, spec: { selector: {}, attributes: { team: "pay", posture: "clean" } } } as any;
  const pod = (labels: Record<string, string>, annotations?: Record<string, string>) =>
    ({
      metadata: { name: "orders-0", namespace: "demo", uid: "u1", resourceVersion: "1", labels, annotations },
      spec: {
        serviceAccountName: "orders",
        containers: [
          { name: "app", image: "ghcr.io/acme/orders@sha256:abc" },
        ],
      },
      status: {},
      // The posture label was written by Tenet's posture controller (see trust-boundary.test.ts).
      postureByTenet: true,
    }) as any;

  it("derives image, digest, commit, version, tier and posture from the pod", () => {
    const a = identityAttributes(pod({ "app.kubernetes.io/version": "1.2", tier: "backend", "tenet.dev/posture": "warn" }, { "tenet.dev/commit": "9f1c" }), si);
    assert.equal(a.image, "ghcr.io/acme/orders@sha256:abc");
    assert.equal(a["image.digest"], "sha256:abc");
    assert.equal(a.commit, "9f1c");
    assert.equal(a.version, "1.2");
    assert.equal(a.tier, "backend");
    assert.equal(a.posture, "warn");
    assert.equal(a.team, "pay");
  });

  it("never lets a static attribute override what the pod's posture says", () => {
    assert.equal(identityAttributes(pod({}), si).posture, "unscanned");
  });

  it("parses Go durations", () => {
    assert.equal(durationSeconds("1h30m", 0), 5400);
    assert.equal(durationSeconds("90s", 0), 90);
    assert.equal(durationSeconds(undefined, 7), 7);
  });
});
