import { strict as assert } from "node:assert";
import type { RuntimeRuleSpec } from "../../crds/types.gen.ts";
import { evaluatePod, MAX_MESSAGE, MAX_WARNING, podSpecOf, type PodUnderReview } from "../../policy/admission.ts";
import { parseImage } from "../../common/images.ts";
import { fromVulnerabilityReport } from "../../scans/parse.ts";
import { type Vulnerability } from "../../scans/records.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import { jsonFixture, yamlFixture } from "../harness/fixtures.ts";

const admissionSample = (name: string): any => jsonFixture(`admission/${name}`);
const daemonSet = (): any => yamlFixture("pod-specs/node-sentinel-daemonset.yaml");
const NOW = new Date("2025-06-01T12:00:00Z");

const rule = (name: string, spec: Partial<RuntimeRuleSpec>, namespace = "demo"): RuleRef => ({ namespace, name, spec: { selector: {}, ...spec } });

// A pod that passes every pod-security default, so cases only see what they add.
const compliant = (containers: any[], extra: any = {}) => ({
  securityContext: { runAsNonRoot: true },
  containers: containers.map((c) => ({ securityContext: { allowPrivilegeEscalation: false }, ...c })),
  ...extra,
});
const review = (podSpec: any, labels: Record<string, string> = { app: "orders" }): PodUnderReview => ({ namespace: "demo", labels, podSpec, owner: "Deployment demo/orders" });

function scans(): ScanIndex {
  const idx = new ScanIndex();
  const crit = (n: number): Vulnerability[] => Array.from({ length: n }, (_, i) => ({ id: `CVE-2024-000${i + 1}`, severity: "CRITICAL" as const, pkg: "openssl", installedVersion: "1.0", fixedVersion: "1.1" }));
  idx.upsert("vr/demo/orders", { image: parseImage("ghcr.io/acme/orders:1.0"), source: "VulnerabilityReport demo/replicaset-orders-app", vulnerabilities: crit(3) });
  idx.upsert("vr/demo/clean", { image: parseImage("ghcr.io/acme/clean:1.0"), source: "VulnerabilityReport demo/replicaset-clean", vulnerabilities: [] });
  idx.upsert("vr/default/nginx", fromVulnerabilityReport(yamlFixture("trivy-operator/web-nginx-2-critical.yaml")));
  return idx;
}

describe("admission: which rules apply", () => {
  it("admits a pod no rule selects, with nothing to say", () => {
    const v = evaluatePod(review(compliant([{ name: "o", image: "ghcr.io/acme/orders:1.0" }]), { app: "payments" }), [rule("baseline", { selector: { matchLabels: { app: "orders" } }, vulnerabilities: { thresholds: { critical: 0 } } })], scans(), NOW);
    assert.deepEqual(v, { allowed: true, warnings: [], message: "", rules: [] });
  });

  it("ignores rules of other namespaces", () => {
    const v = evaluatePod(review(compliant([{ name: "o", image: "ghcr.io/acme/orders:1.0" }])), [rule("baseline", { vulnerabilities: { thresholds: { critical: 0 } } }, "other")], scans(), NOW);
    assert.equal(v.allowed, true);
    assert.equal(v.rules.length, 0);
  });

  it("evaluates every image of every container kind once per rule", () => {
    const spec = compliant([{ name: "a", image: "ghcr.io/acme/clean:1.0" }, { name: "b", image: "ghcr.io/acme/clean:1.0" }], {
      initContainers: [{ name: "i", image: "ghcr.io/acme/orders:1.0", securityContext: { allowPrivilegeEscalation: false } }],
      ephemeralContainers: [{ name: "e", image: "busybox", securityContext: { allowPrivilegeEscalation: false } }],
    });
    const v = evaluatePod(review(spec), [rule("a", { vulnerabilities: { thresholds: { critical: 5 } } }), rule("b", { vulnerabilities: { thresholds: { critical: 5 } } })], scans(), NOW);
    for (const rv of v.rules) assert.deepEqual(rv.images.map((i) => i.image), ["ghcr.io/acme/clean:1.0", "ghcr.io/acme/orders:1.0", "busybox"]);
  });

  it("compiles a rule's selector once and still sees a changed spec", () => {
    const spec: RuntimeRuleSpec = { selector: { matchLabels: { app: "orders" } }, podSecurity: { allowPrivileged: false } };
    const priv = compliant([{ name: "p", image: "ghcr.io/acme/clean:1.0", securityContext: { privileged: true, allowPrivilegeEscalation: false } }]);
    assert.equal(evaluatePod(review(priv), [{ namespace: "demo", name: "r", spec }], scans(), NOW).allowed, false);
    assert.equal(evaluatePod(review(priv, { app: "other" }), [{ namespace: "demo", name: "r", spec }], scans(), NOW).allowed, true);
    const changed: RuntimeRuleSpec = { ...spec, selector: { matchLabels: { app: "other" } } };
    assert.equal(evaluatePod(review(priv), [{ namespace: "demo", name: "r", spec: changed }], scans(), NOW).allowed, true);
  });
});

describe("admission decisions", () => {
  it("refuses an image over threshold with a message naming what was refused, the image, counts, threshold, rule and scan", () => {
    const v = evaluatePod(review(compliant([{ name: "o", image: "ghcr.io/acme/orders:1.0" }])), [rule("baseline", { vulnerabilities: { thresholds: { critical: 0 } } })], scans(), NOW);
    assert.equal(v.allowed, false);
    assert.equal(
      v.message,
      "Deployment demo/orders refused by RuntimeRule demo/baseline: image ghcr.io/acme/orders:1.0 has 3 critical (threshold 0) vulnerabilities (scan: VulnerabilityReport demo/replicaset-orders-app)" +
        ": upgrade the image, or add an exemption with an expires date to spec.vulnerabilities.exemptions of RuntimeRule demo/baseline",
    );
    assert.equal(v.rules[0].decision, "deny");
    assert.match(v.rules[0].message, /^RuntimeRule demo\/baseline refuses it: image ghcr\.io\/acme\/orders:1\.0 has 3 critical/);
  });

  it("lists every violation of every enforcing rule in one message", () => {
    const spec = compliant([{ name: "o", image: "ghcr.io/acme/orders:1.0", securityContext: { privileged: true, allowPrivilegeEscalation: false } }]);
    const v = evaluatePod(
      review(spec),
      [rule("baseline", { vulnerabilities: { thresholds: { critical: 0 } }, podSecurity: {} }), rule("registries", { podSecurity: { allowPrivileged: true, allowedRegistries: ["quay.io"] } })],
      scans(),
      NOW,
    );
    assert.equal(v.allowed, false);
    assert.match(v.message, /^Deployment demo\/orders refused by RuntimeRule demo\/baseline: image ghcr\.io\/acme\/orders:1\.0 has 3 critical \(threshold 0\)/);
    assert.match(v.message, /; spec\.containers\[0\]\.securityContext\.privileged is true \(container "o"\) but the rule forbids privileged containers \(set spec\.podSecurity\.allowPrivileged: true to allow\)/);
    assert.match(v.message, /; and by RuntimeRule demo\/registries: spec\.containers\[0\]\.image ghcr\.io\/acme\/orders:1\.0 \(container "o"\) is not from an allowed registry \(quay\.io\)/);
  });

  it("refuses on a pod-security violation even when every image is clean", () => {
    const spec = podSpecOf("Pod", admissionSample("request-pod-privileged-init-container.json").object)!;
    const v = evaluatePod({ namespace: "default", labels: spec.labels, podSpec: spec.podSpec, owner: "Pod default/web" }, [rule("no-privileged", { podSecurity: { allowPrivileged: false, requireRunAsNonRoot: false, allowPrivilegeEscalation: true } }, "default")], scans(), NOW);
    assert.equal(v.allowed, false);
    assert.deepEqual(v.rules[0].podSecurity.map((p) => p.field), ["spec.initContainers[0].securityContext.privileged"]);
    assert.match(v.message, /^Pod default\/web refused by RuntimeRule default\/no-privileged: spec\.initContainers\[0\]\.securityContext\.privileged is true/);
  });

  it("an audit rule never denies: its violations become warnings", () => {
    const spec = compliant([{ name: "o", image: "ghcr.io/acme/orders:1.0", securityContext: { privileged: true, allowPrivilegeEscalation: false } }]);
    const v = evaluatePod(review(spec), [rule("audit", { enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "deny" }, podSecurity: {} })], scans(), NOW);
    assert.equal(v.allowed, true);
    assert.equal(v.message, "");
    assert.equal(v.rules[0].decision, "warn");
    assert.deepEqual(v.warnings, [
      "RuntimeRule demo/audit (audit) would refuse it: image ghcr.io/acme/orders:1.0 has 3 critical (threshold 0) vulnerabilities (scan: VulnerabilityReport demo/replicaset-orders-app)",
      'RuntimeRule demo/audit (audit) would refuse it: spec.containers[0].securityContext.privileged is true (container "o") but the rule forbids privileged containers (set spec.podSecurity.allowPrivileged: true to allow)',
    ]);
  });

  it("an enforcing rule admits an unscanned image with a warning under unscannedImages: warn", () => {
    const v = evaluatePod(review(compliant([{ name: "n", image: "ghcr.io/acme/new:0.1" }, { name: "c", image: "ghcr.io/acme/clean:1.0" }])), [rule("baseline", { vulnerabilities: { thresholds: { critical: 0 } } })], scans(), NOW);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.warnings, ["RuntimeRule demo/baseline: image ghcr.io/acme/new:0.1 has no vulnerability scan yet (spec.vulnerabilities.unscannedImages: warn)"]);
    assert.equal(v.rules[0].decision, "warn");
  });

  it("refuses unscanned images under unscannedImages: deny, naming them all in one sentence", () => {
    const v = evaluatePod(review(compliant([{ name: "a", image: "ghcr.io/acme/a:1" }, { name: "b", image: "ghcr.io/acme/b:1" }])), [rule("strict", { vulnerabilities: { unscannedImages: "deny" } })], scans(), NOW);
    assert.equal(v.allowed, false);
    assert.match(v.message, /^Deployment demo\/orders refused by RuntimeRule demo\/strict: images ghcr\.io\/acme\/a:1 and ghcr\.io\/acme\/b:1 have no vulnerability scan yet and the rule refuses unscanned images/);
  });

  it("admits under unscannedImages: rescan without a warning; the verdict says it will be re-evaluated", () => {
    const v = evaluatePod(review(compliant([{ name: "a", image: "ghcr.io/acme/a:1" }])), [rule("later", { vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "rescan" } })], scans(), NOW);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.warnings, []);
    assert.match(v.rules[0].images[0].message, /re-evaluate it when a report arrives/);
  });

  it("judges an invalid image reference as unscanned and says why", () => {
    const v = evaluatePod(review(compliant([{ name: "x", image: "Not/Valid" }])), [rule("strict", { vulnerabilities: { unscannedImages: "deny" } })], scans(), NOW);
    assert.equal(v.allowed, false);
    assert.match(v.message, /image "Not\/Valid" is not a valid reference \(invalid image reference "Not\/Valid": .*\), so no scan can match it/);
  });

  it("matches a Trivy Operator report for an image written as a bare Docker Hub name", () => {
    const v = evaluatePod(
      { namespace: "default", labels: {}, podSpec: compliant([{ name: "web", image: "nginx:1.25.3" }]), owner: "Pod default/web" },
      [rule("baseline", { vulnerabilities: { thresholds: { critical: 1 } } }, "default")],
      scans(),
      NOW,
    );
    assert.equal(v.allowed, false);
    assert.match(v.message, /image nginx:1\.25\.3 has 2 critical \(threshold 1\) vulnerabilities \(scan: VulnerabilityReport default\/replicaset-web-7f9c6d5b8-nginx\)/);
  });

  it("keeps a node agent DaemonSet's many violations within the message limit and says how many were left out", () => {
    const ds = podSpecOf("DaemonSet", daemonSet())!;
    const rules = [
      rule("baseline", { vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "deny" }, podSecurity: { allowedRegistries: ["ghcr.io"], requireDigest: true } }, "default"),
      rule("second", { podSecurity: {} }, "default"),
      rule("audit", { enforcement: "audit", podSecurity: {} }, "default"),
    ];
    const v = evaluatePod({ namespace: "default", labels: ds.labels, podSpec: ds.podSpec, owner: "DaemonSet default/node-sentinel" }, rules, scans(), NOW);
    assert.equal(v.allowed, false);
    assert.ok(v.message.length <= MAX_MESSAGE, `${v.message.length} chars`);
    // Too much to explain in full: every refusing rule gets a share, and names what it can briefly.
    assert.match(v.message, /^DaemonSet default\/node-sentinel refused by RuntimeRule default\/baseline: unscanned: quay\.io\/node-sentinel\/sentinel:2\.1\.0, /);
    assert.match(v.message, /; privileged: spec\.containers\[0\] \("sentinel"\) and spec\.initContainers\[0\] \("probe-loader"\); hostPath: "\/run\/containerd\/containerd\.sock", /);
    assert.match(v.message, /; and \d+ more; and by RuntimeRule default\/second: securityContext\.privileged is true in spec\.containers\[0\] \("sentinel"\)/, "beyond the budget, a count instead of the rest");
    assert.match(v.rules[2].message, /^RuntimeRule default\/audit \(audit\) would refuse it: securityContext\.privileged is true/);
    assert.ok(v.warnings.length > 0 && v.warnings.every((w) => w.length <= MAX_WARNING));
    assert.deepEqual(v.rules.map((r) => r.decision), ["deny", "deny", "warn"]);
  });
});

describe("pod specs inside admitted objects", () => {
  const template = { metadata: { labels: { app: "orders" } }, spec: { containers: [{ name: "c", image: "nginx" }] } };
  const cases: [string, string, any, boolean][] = [
    ["a Pod is its own spec and labels", "Pod", { metadata: { labels: { app: "orders" } }, spec: template.spec }, true],
    ["a Deployment carries a pod template", "Deployment", { spec: { template } }, true],
    ["a StatefulSet carries a pod template", "StatefulSet", { spec: { template } }, true],
    ["a DaemonSet carries a pod template", "DaemonSet", { spec: { template } }, true],
    ["a ReplicaSet carries a pod template", "ReplicaSet", { spec: { template } }, true],
    ["a Job carries a pod template", "Job", { spec: { template } }, true],
    ["a CronJob carries it inside its job template", "CronJob", { spec: { jobTemplate: { spec: { template } } } }, true],
    ["a Service has no pod spec", "Service", { spec: { template } }, false],
    ["a Deployment without a template has no pod spec", "Deployment", { spec: {} }, false],
    ["a null object has no pod spec", "Pod", null, false],
  ];
  for (const [name, kind, obj, found] of cases) {
    it(name, () => {
      const got = podSpecOf(kind, obj);
      if (!found) return assert.equal(got, undefined);
      assert.deepEqual(got, { podSpec: template.spec, labels: { app: "orders" } });
    });
  }

  it("reads the node agent DaemonSet's template", () => {
    const got = podSpecOf("DaemonSet", daemonSet())!;
    assert.deepEqual(got.labels, { "app.kubernetes.io/name": "node-sentinel", "app.kubernetes.io/instance": "node-sentinel" });
    assert.equal(got.podSpec.containers.length, 2);
    assert.equal(got.podSpec.initContainers.length, 2);
  });

  it("finds no pod spec in the non-pod admission sample", () => {
    const req = admissionSample("request-service-update.json");
    assert.equal(podSpecOf(req.kind.kind, req.object), undefined);
  });

  it("gives a pod without labels an empty label set", () => {
    assert.deepEqual(podSpecOf("Pod", { spec: { containers: [] } }), { podSpec: { containers: [] }, labels: {} });
  });
});
