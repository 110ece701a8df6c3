// `tenet check` as a pipeline runs it: the compiled CLI (build/cli/tenet.js, `npm run build`) as
// a process, its exit codes and outputs — JUnit validated against test/fixtures/schemas/junit.xsd,
// SARIF against our SARIF 2.1.0 schema — on every example, on the rejected Deployment, and on
// hostile and malformed input.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { built } from "../harness/build.ts";
import { validateJSON } from "../harness/json-schema.ts";
import { compileXSD, parseXML, validateXML } from "../harness/xml-schema.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const TENET = built("build/cli/tenet.js");
const sarifSchema = JSON.parse(fs.readFileSync(path.join(REPO, "test/fixtures/schemas/sarif-2.1.0.schema.json"), "utf8"));
const junitSchema = compileXSD(fs.readFileSync(path.join(REPO, "test/fixtures/schemas/junit.xsd"), "utf8"));
// Before the exemption in examples/runtimerule-baseline.yaml expires (2027-06-30), and after.
const BEFORE = "2026-12-01T00:00:00Z";
const AFTER = "2027-07-01T00:00:00Z";

function tenet(args: string[], input?: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [TENET, ...args], { cwd: REPO, input, encoding: "utf8", env: { PATH: process.env.PATH, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let dir: string;
const write = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
};

const RULE = (ns: string, extra = "") => `apiVersion: tenet.dev/v1alpha1
kind: RuntimeRule
metadata: {name: strict, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: web}}
  enforcement: ${extra || "enforce"}
  vulnerabilities: {thresholds: {critical: 0}, unscannedImages: warn}
  podSecurity: {allowPrivileged: false, allowedRegistries: [ghcr.io/acme]}
`;
const DEPLOY = (ns: string, name: string, image: string, extra = "") => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: ${image}
          securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false}${extra}
`;

describe("tenet check (the compiled CLI, spawned)", function () {
  this.timeout(60_000);
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tenet-check-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe("the examples", () => {
    it("admits the quick start's workloads (exit 0) and notes the APIPolicy that selects nothing", () => {
      const r = tenet(["check", "examples/", "--at", BEFORE]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^OK {8}Deployment demo\/orders {2}examples\/workloads\.yaml:5/m);
      assert.match(r.out, /^OK {8}Deployment demo\/frontend {2}examples\/workloads\.yaml:57/m);
      assert.match(r.out, /^ {2}RuntimeRule demo\/baseline admits it/m);
      assert.match(r.out, /^note: APIPolicy demo\/broken \(examples\/apipolicy-broken\.yaml:6\) selects no workload in the inputs$/m);
      assert.match(r.out, /2 workloads: 0 denied, 0 with warnings, 2 admitted, 0 unmatched; 3 policies, 1 selecting nothing — exit 0/);
    });

    it("refuses examples/rejected/deployment-billing.yaml with the webhook's message (exit 1)", () => {
      const r = tenet(["check", "examples/", "examples/rejected", "--at", BEFORE]);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, /^DENIED {4}Deployment demo\/billing {2}examples\/rejected\/deployment-billing\.yaml:4$/m);
      assert.match(
        r.out,
        /^ {2}Deployment demo\/billing refused by RuntimeRule demo\/baseline: image ghcr\.io\/acme\/billing:2\.3\.1@sha256:7d3b\w+ has 2 critical \(threshold 0\) vulnerabilities \(scan: ConfigMap tenet-system\/trivy-billing key billing\.json\): upgrade the image, or add an exemption with an expires date to spec\.vulnerabilities\.exemptions of RuntimeRule demo\/baseline$/m,
      );
      assert.match(r.out, /exit 1 \(1 of 3 workloads would be refused\)/);
    });

    it("reads a rendered stream on stdin: kubectl kustomize examples | tenet check - -f examples/rejected", () => {
      const bin = execFileSync("bash", ["hack/controlplane.sh", "bin"], { cwd: REPO, encoding: "utf8" }).trim();
      const rendered = execFileSync(path.join(bin, "kubectl"), ["kustomize", "examples"], { cwd: REPO, encoding: "utf8" });
      const r = tenet(["check", "-", "-f", "examples/rejected", "--at", BEFORE], rendered);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, /^OK {8}Deployment demo\/orders {2}\(stdin\):\d+ \(document \d+\)$/m);
      assert.match(r.out, /^DENIED {4}Deployment demo\/billing/m);
    });

    it("judges the new scan of examples/new-scan as rescans do, and honours the exemption until it expires", () => {
      const before = tenet(["check", "examples/", "examples/new-scan", "--at", BEFORE, "-o", "json"]);
      assert.equal(before.code, 1);
      const orders = JSON.parse(before.out).results.find((x: any) => x.name === "orders");
      assert.equal(orders.outcome, "denied");
      assert.match(orders.denials[0].message, /has 1 critical \(threshold 0\)/, "CVE-2024-45337 is exempted until 2027-06-30");
      const after = tenet(["check", "examples/", "examples/new-scan", "--at", AFTER, "-o", "json"]);
      assert.match(JSON.parse(after.out).results.find((x: any) => x.name === "orders").denials[0].message, /has 2 critical \(threshold 0\)/);
    });

    it("exits 4 with --strict when a policy selects nothing (examples/apipolicy-broken.yaml)", () => {
      const r = tenet(["check", "examples/", "--strict", "--at", BEFORE]);
      assert.equal(r.code, 4);
      assert.match(r.out, /exit 4 \(--strict: 1 policy selecting no workload\)/);
    });

    it("exits 4 when nothing matched: the rejected Deployment without its rules, or no workload at all", () => {
      const alone = tenet(["check", "examples/rejected"]);
      assert.equal(alone.code, 4);
      assert.match(alone.out, /^UNMATCHED Deployment demo\/billing/m);
      assert.match(alone.out, /no RuntimeRule selects any of the 1 workload: nothing was checked/);
      const none = tenet(["check", "examples/runtimerule-baseline.yaml", "examples/namespace.yaml"]);
      assert.equal(none.code, 4);
      assert.match(none.out, /no workload in the inputs/);
    });
  });

  describe("warnings, injection and Tenet's metadata", () => {
    it("admits audit-rule findings with warnings (exit 0), and exits 3 with --fail-on-warn", () => {
      const f = write("audit.yaml", RULE("shop", "audit") + "---\n" + DEPLOY("shop", "web", "docker.io/library/nginx:1"));
      const r = tenet(["check", f]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^WARN {6}Deployment shop\/web/m);
      assert.match(r.out, /^ {2}warning: RuntimeRule shop\/strict \(audit\) would refuse it: .*not from an allowed registry/m);
      assert.equal(tenet(["check", f, "--fail-on-warn"]).code, 3);
    });

    it("runs injection first: a Pod whose port clashes with the enforcer's is refused by the mutating webhook, a Deployment's pods likewise", () => {
      const ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {tenet.dev/inject: enabled}}\n";
      const pod = `apiVersion: v1\nkind: Pod\nmetadata: {name: clash, namespace: shop, labels: {app: web}}\nspec:\n  containers: [{name: app, image: ghcr.io/acme/web:1, ports: [{containerPort: 15443}]}]\n`;
      const f = write("inject.yaml", [ns, RULE("shop"), pod, DEPLOY("shop", "web", "ghcr.io/acme/web:1", "\n          ports: [{containerPort: 15021}]")].join("---\n"));
      const r = tenet(["check", f, "-o", "json"]);
      assert.equal(r.code, 1, r.out + r.err);
      const res = JSON.parse(r.out).results;
      const p = res.find((x: any) => x.kind === "Pod");
      assert.deepEqual([p.outcome, p.denials[0].stage, p.denials[0].reason], ["denied", "mutate", "InjectionConflict"]);
      assert.match(p.denials[0].message, /^Tenet cannot inject its enforcer into this pod: container "app" uses port 15443, which the Tenet enforcer needs for its inbound mTLS listener/);
      const d = res.find((x: any) => x.kind === "Deployment");
      assert.equal(d.denials[0].stage, "pods");
      assert.match(d.denials[0].message, /^the pods of Deployment shop\/web would be refused: Tenet cannot inject its enforcer into this pod: container "app" uses port 15021/);
      // Without the namespace's opt-in label nothing is injected, and both are admitted.
      const plain = write("plain.yaml", [RULE("shop"), pod, DEPLOY("shop", "web", "ghcr.io/acme/web:1")].join("---\n"));
      const ok = JSON.parse(tenet(["check", plain, "-o", "json"]).out);
      assert.deepEqual(ok.results.map((x: any) => [x.kind, x.injection, x.denials.map((d: any) => d.stage)]), [["Pod", "NotOptedIn", ["validate"]], ["Deployment", "NotOptedIn", []]]);
    });

    it("refuses a Pod that sets Tenet's own metadata, as the validating webhook does", () => {
      const pod = `apiVersion: v1\nkind: Pod\nmetadata: {name: forged, namespace: shop, labels: {app: web}, annotations: {tenet.dev/quarantined-by: nothing}}\nspec:\n  containers: [{name: app, image: ghcr.io/acme/web:1}]\n`;
      const r = tenet(["check", write("forged.yaml", RULE("shop") + "---\n" + pod)]);
      assert.equal(r.code, 1);
      assert.match(r.out, /tenet-check may not change annotation tenet\.dev\/quarantined-by of pod shop\/forged: only Tenet's own ServiceAccount writes them/);
    });

    it("reads Trivy JSON report files and VulnerabilityReports given next to the manifests", () => {
      const trivy = JSON.stringify({ SchemaVersion: 2, ArtifactName: "ghcr.io/acme/web:1", ArtifactType: "container_image", Results: [{ Target: "x", Vulnerabilities: [{ VulnerabilityID: "CVE-2024-0001", Severity: "CRITICAL", PkgName: "p", InstalledVersion: "1", FixedVersion: "2" }] }] });
      const r = tenet(["check", write("scan/web.json", trivy), write("scan/app.yaml", RULE("shop") + "---\n" + DEPLOY("shop", "web", "ghcr.io/acme/web:1"))]);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, /has 1 critical \(threshold 0\) vulnerabilities \(scan: .*web\.json:1\)/);
      const vr = `apiVersion: aquasecurity.github.io/v1alpha1\nkind: VulnerabilityReport\nmetadata: {name: web, namespace: shop}\nreport:\n  artifact: {repository: acme/web, tag: "1"}\n  registry: {server: ghcr.io}\n  summary: {criticalCount: 3}\n`;
      const r2 = tenet(["check", write("vr.yaml", [RULE("shop"), DEPLOY("shop", "web", "ghcr.io/acme/web:1"), vr].join("---\n"))]);
      assert.match(r2.out, /has 3 critical \(threshold 0\) vulnerabilities \(scan: VulnerabilityReport shop\/web\)/);
      // A report from another, untrusted namespace speaks for its own pods only (as in the operator).
      const r3 = tenet(["check", write("vr-other.yaml", [RULE("shop"), DEPLOY("shop", "web", "ghcr.io/acme/web:1"), vr.replace("namespace: shop", "namespace: elsewhere")].join("---\n"))]);
      assert.equal(r3.code, 0);
      assert.match(r3.out, /no vulnerability scan yet/);
    });

    it("expands List kinds and reads every workload kind", () => {
      const t = { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "docker.io/x:1" }] } };
      const items = [
        { apiVersion: "v1", kind: "Pod", metadata: { name: "p", labels: { app: "web" } }, spec: t.spec },
        ...["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"].map((k) => ({ apiVersion: "apps/v1", kind: k, metadata: { name: k.toLowerCase() }, spec: { selector: {}, template: t } })),
        { apiVersion: "batch/v1", kind: "Job", metadata: { name: "job" }, spec: { template: t } },
        { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "cron" }, spec: { schedule: "* * * * *", jobTemplate: { spec: { template: t } } } },
        { apiVersion: "v1", kind: "Service", metadata: { name: "svc" }, spec: {} },
      ];
      const f = write("list.json", JSON.stringify({ apiVersion: "v1", kind: "List", items }));
      const r = tenet(["check", f, write("rule.yaml", RULE("default")), "-o", "json"]);
      assert.equal(r.code, 1);
      const out = JSON.parse(r.out);
      assert.deepEqual(out.results.map((x: any) => `${x.kind}/${x.outcome}`), ["Pod/denied", "Deployment/denied", "StatefulSet/denied", "DaemonSet/denied", "ReplicaSet/denied", "Job/denied", "CronJob/denied"]);
      assert.deepEqual(out.ignored.map((x: any) => x.object), ["Service default/svc"]);
      assert.match(out.results[6].denials[0].message, /^CronJob default\/cron refused by RuntimeRule default\/strict: .*not from an allowed registry/);
    });
  });

  describe("formats", () => {
    const cases: [string, string[]][] = [
      ["denied", ["examples/", "examples/rejected"]],
      ["warnings and unmatched", ["examples/", "examples/rejected/deployment-billing.yaml", "-n", "other", "--fail-on-warn"]],
    ];
    for (const [name, args] of cases) {
      it(`writes JUnit XML that validates against the JUnit schema (${name})`, () => {
        const r = tenet(["check", ...args, "-o", "junit", "--at", BEFORE]);
        const doc = parseXML(r.out);
        assert.deepEqual(validateXML(junitSchema, doc), []);
        const suite = doc.children[0];
        assert.equal(Number(suite.attrs.tests), suite.children.filter((c) => c.name === "testcase").length);
        assert.equal(Number(suite.attrs.failures), suite.children.filter((c) => c.children.some((x) => x.name === "failure")).length);
      });
      it(`writes SARIF that validates against the SARIF 2.1.0 schema (${name})`, () => {
        const r = tenet(["check", ...args, "-o", "sarif", "--at", BEFORE]);
        const log = JSON.parse(r.out);
        assert.deepEqual(validateJSON(sarifSchema, log), []);
        assert.equal(log.runs[0].invocations[0].exitCode, r.code);
      });
    }

    it("names the denying RuntimeRule, file and line in SARIF and JUnit", () => {
      const sarif = JSON.parse(tenet(["check", "examples/", "examples/rejected", "-o", "sarif", "--at", BEFORE]).out);
      const denied = sarif.runs[0].results.filter((x: any) => x.level === "error");
      assert.equal(denied.length, 1);
      assert.equal(denied[0].ruleId, "RuntimeRule/demo/baseline");
      assert.deepEqual(denied[0].locations[0].physicalLocation, { artifactLocation: { uri: "examples/rejected/deployment-billing.yaml" }, region: { startLine: 4 } });
      const junit = parseXML(tenet(["check", "examples/", "examples/rejected", "-o", "junit", "--at", BEFORE]).out);
      const failed = junit.children[0].children.filter((c) => c.children.some((x) => x.name === "failure"));
      assert.deepEqual(failed.map((c) => [c.attrs.name, c.attrs.file, c.attrs.line]), [["Deployment demo/billing", "examples/rejected/deployment-billing.yaml", "4"]]);
      assert.equal(failed[0].children[0].attrs.type, "RuntimeRuleViolation");
    });

    it("the validators catch what the schemas forbid (so the checks above can fail)", () => {
      const log = JSON.parse(tenet(["check", "examples/", "-o", "sarif"]).out);
      log.runs[0].results.push({ ruleId: "x", level: "fatal", message: {}, locations: [{ physicalLocation: { region: { startLine: 0 } } }] });
      log.runs[0].extra = true;
      const problems = validateJSON(sarifSchema, log);
      for (const p of [/level: "fatal" is not one of/, /message: matches 0 of the anyOf/, /startLine: 0 < minimum 1/, /physicalLocation: matches 0 of the anyOf/, /runs\[0\]: has extra/]) assert.ok(problems.some((x) => p.test(x)), `${p} in ${problems.join("; ")}`);
      const xml = tenet(["check", "examples/", "-o", "junit"]).out.replace(/<testcase /, '<testcase bogus="1" ').replace(/tests="\d+"/, 'tests="many"').replace("</testsuite>", "<testcase/></testsuite>");
      const errs = validateXML(junitSchema, parseXML(xml));
      for (const p of [/attribute bogus is not declared/, /tests="many" is not an xs:int/, /lacks required attribute name/]) assert.ok(errs.some((x) => p.test(x)), `${p} in ${errs.join("; ")}`);
      assert.throws(() => parseXML("<a><b></a>"), /expected <\/b>/);
    });

    it("JSON: the report with every verdict, policy and skipped object", () => {
      const r = JSON.parse(tenet(["check", "examples/", "examples/rejected", "-o", "json", "--at", BEFORE]).out);
      assert.equal(r.exitCode, 1);
      assert.deepEqual(r.summary, { workloads: 3, denied: 1, warned: 0, admitted: 2, unmatched: 0, unusedPolicies: 1 });
      assert.deepEqual(r.policies.map((p: any) => [p.kind, p.name, p.selects]), [
        ["RuntimeRule", "demo/baseline", ["Deployment demo/orders", "Deployment demo/frontend", "Deployment demo/billing"]],
        ["APIPolicy", "demo/broken", []],
        ["APIPolicy", "demo/orders", ["Deployment demo/orders"]],
      ]);
      assert.ok(r.ignored.some((x: any) => x.object === "Service demo/orders"));
    });
  });

  describe("bad input: exit 2 with a message naming the file, document and fix", () => {
    const bad: [string, () => string[], RegExp][] = [
      ["a missing file", () => ["/nonexistent/x.yaml"], /tenet check: \/nonexistent\/x\.yaml: no such file or directory/],
      ["invalid YAML", () => [write("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")], /bad\.yaml:\d+: invalid YAML: /],
      ["a document that is not an object", () => [write("list.yaml", "- a\n- b\n")], /list\.yaml:1: expected a Kubernetes object .* got a list/],
      ["no kind", () => [write("nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n")], /nokind\.yaml:1: not a Kubernetes object: it has no kind/],
      ["a workload without containers", () => [write("empty.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: e}\nspec: {template: {spec: {}}}\n")], /Deployment default\/e has no spec\.template\.spec\.containers; the API server would refuse it/],
      ["a workload without a name", () => [write("noname.yaml", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: x}]}\n")], /Pod has no metadata\.name/],
      ["the same object twice, differently", () => [write("a.yaml", RULE("shop")), write("b.yaml", RULE("shop").replace("critical: 0", "critical: 1"))], /b\.yaml:1: RuntimeRule shop\/strict is also defined at .*a\.yaml:1, differently; keep one/],
      ["a broken Trivy report", () => [write("t.json", JSON.stringify({ SchemaVersion: 3, ArtifactName: "x" }))], /t\.json:1: unreadable Trivy report: SchemaVersion is 3/],
      ["a document nested too deep", () => [write("deep.json", JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", data: JSON.parse("[".repeat(100) + "]".repeat(100)) }))], /deep\.json:1: nested \d+ levels deep; the limit is 64/],
      ["a billion-laughs document", () => [write("laughs.yaml", "a: &a [x,x,x,x,x,x,x,x,x]\n" + Array.from({ length: 9 }, (_, i) => `${"bcdefghij"[i]}: &${"bcdefghij"[i]} [${Array(9).fill(`*${"abcdefghi"[i]}`).join(",")}]`).join("\n") + "\n")], /laughs\.yaml:1: cannot read the document: .*alias/i],
      ["a binary file", () => [write("bin.yaml", "\u0000\u0001ELF")], /bin\.yaml: not a text file/],
      ["an empty directory", () => [fs.mkdtempSync(path.join(dir, "empty-"))], /a directory with no \.yaml, \.yml or \.json files/],
      ["stdin twice", () => ["-", "-"], /"-" \(stdin\) is given twice/],
      ["an unknown option", () => ["examples/", "--yaml"], /unknown option --yaml/],
      ["an unknown format", () => ["examples/", "-o", "xml"], /--output "xml" is not one of text, json, junit, sarif/],
      ["a bad --at", () => ["examples/", "--at", "tomorrow"], /--at "tomorrow" is not an RFC 3339 time/],
      ["no inputs", () => [], /no inputs: give files, directories, or - for stdin/],
    ];
    for (const [name, args, message] of bad) {
      it(name, () => {
        const r = tenet(["check", ...args()], "");
        assert.equal(r.code, 2, r.out + r.err);
        assert.match(r.err, message);
      });
    }

    it("reports every problem of a run at once, and still writes valid SARIF and JUnit", () => {
      const a = write("two-a.yaml", "kind: Pod\n");
      const b = write("two-b.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n");
      const r = tenet(["check", a, b, "-o", "sarif"]);
      assert.equal(r.code, 2);
      assert.equal((r.err.match(/^tenet check: /gm) ?? []).length, 2);
      const log = JSON.parse(r.out);
      assert.deepEqual(validateJSON(sarifSchema, log), []);
      assert.equal(log.runs[0].invocations[0].executionSuccessful, false);
      assert.equal(log.runs[0].invocations[0].toolExecutionNotifications.length, 2);
      const junit = tenet(["check", a, b, "-o", "junit"]);
      assert.deepEqual(validateXML(junitSchema, parseXML(junit.out)), []);
      assert.match(junit.out, /errors="2"/);
    });

    it("skips unknown kinds (CRDs of other tools) instead of failing on them", () => {
      const f = write("unknown.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\n" + RULE("default") + "---\n" + DEPLOY("default", "web", "ghcr.io/acme/web:1"));
      const r = tenet(["check", f, "-v"]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^skipped: Widget default\/w \(.*unknown\.yaml:1 \(document 1\)\): admission does not judge this kind$/m);
    });

    it("reads a large stream (5,000 Deployments) and stops at the size limits", () => {
      const many = Array.from({ length: 5000 }, (_, i) => DEPLOY("default", `web-${i}`, "ghcr.io/acme/web:1")).join("---\n");
      const r = tenet(["check", "-", "-f", write("rule-many.yaml", RULE("default")), "-o", "json"], many);
      assert.equal(r.code, 0, r.err);
      assert.equal(JSON.parse(r.out).summary.workloads, 5000);
      const huge = "a: " + "x".repeat(33 * 1024 * 1024) + "\n";
      const big = tenet(["check", "-"], huge);
      assert.equal(big.code, 2);
      assert.match(big.err, /\(stdin\): \d+ bytes, over the limit of 33554432 bytes per input; split it/);
    });
  });

  describe("tenet check api", () => {
    const claims = () => write("claims.json", JSON.stringify({ iss: "https://auth.acme.example", aud: "orders", scope: "orders", azp: "acme-web", exp: Math.floor(Date.parse("2030-01-01") / 1000) }));
    const api = (...args: string[]) => tenet(["check", "api", ...args, "--workload", "demo/orders", "-f", "examples/"]);

    it("allows the frontend with a JWT that meets the rule: decision, rule, reason (exit 0)", () => {
      const r = api("--as", "spiffe://cluster.local/ns/demo/sa/frontend", "--jwt-claims", claims(), "GET", "/v1/orders/42");
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^decision {2}allow$/m);
      assert.match(r.out, /^rule {6}demo\/orders frontend-reads-and-creates-orders$/m);
      assert.match(r.out, /^reason {4}Allowed: /m);
      assert.match(r.out, /^api {7}orders \(scope read\)$/m);
    });

    it("names the ServiceIdentity instead of the SPIFFE ID, and denies without the JWT (401, exit 1)", () => {
      const r = api("--as", "demo/frontend", "POST", "/v1/orders");
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, /^decision {2}deny$/m);
      assert.match(r.out, /^reason {4}JWTMissing: /m);
      assert.match(r.out, /^status {4}answered 401 by the enforcer$/m);
      assert.match(r.out, /^request {3}spiffe:\/\/cluster\.local\/ns\/demo\/sa\/frontend → POST \/v1\/orders on Deployment demo\/orders$/m);
    });

    it("checks the claims: a wrong azp, an expired token, a scope no rule grants", () => {
      const wrong = write("wrong.json", JSON.stringify({ iss: "https://auth.acme.example", aud: "orders", scope: "orders", azp: "mallory" }));
      assert.match(api("--as", "demo/frontend", "--jwt-claims", wrong, "GET", "/v1/orders").out, /JWTInvalid: .*azp/);
      const expired = write("expired.json", JSON.stringify({ iss: "https://auth.acme.example", aud: "orders", scope: "orders", azp: "acme-web", exp: 1 }));
      assert.match(api("--as", "demo/frontend", "--jwt-claims", expired, "GET", "/v1/orders").out, /expired/);
      const del = api("--as", "demo/frontend", "--jwt-claims", claims(), "DELETE", "/v1/orders/1", "-o", "json");
      assert.equal(del.code, 1);
      assert.equal(JSON.parse(del.out).decision.reason, "NoRuleAllows");
    });

    it("denies a violating caller by the deny rule, allows anyone the health endpoint", () => {
      const r = api("--as", "spiffe://cluster.local/ns/other/sa/x", "--attr", "tenet.dev/posture=violating", "GET", "/v1/orders");
      assert.equal(r.code, 1);
      assert.match(r.out, /^rule {6}demo\/orders deny-violating-callers$/m);
      assert.equal(api("--as", "spiffe://cluster.local/ns/other/sa/x", "GET", "/healthz").code, 0);
    });

    it("exits 4 when no APIPolicy selects the workload, 2 on bad input", () => {
      const r = tenet(["check", "api", "--as", "demo/orders", "GET", "/", "--workload", "demo/frontend", "-f", "examples/"]);
      assert.equal(r.code, 4, r.out + r.err);
      assert.match(r.out, /Unprotected/);
      assert.match(tenet(["check", "api", "--as", "demo/nobody", "GET", "/", "--workload", "demo/orders", "-f", "examples/"]).err, /no ServiceIdentity demo\/nobody in the inputs/);
      assert.match(tenet(["check", "api", "--as", "demo/frontend", "GET", "/", "--workload", "demo/nothing", "-f", "examples/"]).err, /no workload demo\/nothing in the inputs/);
      assert.match(api("--as", "spiffe://cluster.local/ns/a/sa/b", "GET").err, /expected METHOD and PATH/);
      assert.match(api("--as", "demo/frontend", "--jwt-claims", write("nojson.json", "{"), "GET", "/").err, /not JSON/);
      assert.match(api("--as", "spiffe://UPPER/ns", "GET", "/").err, /--as .*the SPIFFE ID/);
    });
  });
});
