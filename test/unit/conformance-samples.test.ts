// Conformance with upstream samples: real files from Trivy, Trivy Operator, kube-rs, kubewarden,
// falco and go-spiffe, copied byte for byte into ../shared/samples (see its SOURCES.md), run
// through the same parsers and evaluators as the project's own fixtures in test/fixtures/. An
// extra check, not a requirement: where the folder is absent (a lone clone) it says so and is
// skipped; TENET_UPSTREAM_SAMPLES points it at another copy.
import "reflect-metadata";
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { run, type CLIDeps } from "../../cli/tenet.ts";
import { createCA, loadCA } from "../../operator/ca/keypair.ts";
import { readCertIdentity } from "../../pki/certificate.ts";
import { splitPEM } from "../../pki/pem.ts";
import { svidViolations } from "../../pki/svid.ts";
import { evaluatePod, MAX_MESSAGE, podSpecOf } from "../../policy/admission.ts";
import { parseImage } from "../../common/images.ts";
import { podSecurityViolations, summarizeViolations } from "../../policy/podsecurity.ts";
import { fromTrivyJSON, fromVulnerabilityReport } from "../../scans/parse.ts";
import { SUMMARY_ONLY_ID, type ScanRecord, type Severity } from "../../scans/records.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import { evaluateImage } from "../../policy/vulnerabilities.ts";
import { injectPod, type InjectionConfig } from "../../admission/inject.ts";
import { applyPatch, jsonPatch } from "../../admission/patch.ts";
import { fixturePath, upstreamSamplesPresent, UPSTREAM_SAMPLES } from "../harness/fixtures.ts";
import { testInjectionConfig } from "../harness/injection.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const SHOWN = process.env.TENET_UPSTREAM_SAMPLES ? UPSTREAM_SAMPLES : path.relative(REPO, UPSTREAM_SAMPLES);
const text = (rel: string) => readFileSync(path.join(UPSTREAM_SAMPLES, rel), "utf8");
const json = (rel: string): any => JSON.parse(text(rel));
const yaml = (rel: string): any => YAML.parse(text(rel));
const svid = (name: string) => text(`spiffe/go-spiffe-x509svid-testdata/${name}`);

function countsOf(rec: ScanRecord): Record<Severity, number> {
  const c: Record<Severity, number> = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  for (const v of rec.vulnerabilities) c[v.severity]++;
  return c;
}
const counts = (critical: number, high: number, medium: number, low: number, unknown: number) => ({ CRITICAL: critical, HIGH: high, MEDIUM: medium, LOW: low, UNKNOWN: unknown });

describe(`conformance with the upstream samples in ${SHOWN}`, () => {
  if (!upstreamSamplesPresent()) {
    it(`upstream samples not found at ${SHOWN}: conformance check skipped`, function () {
      this.skip();
    });
    return;
  }

  describe("Trivy Operator's VulnerabilityReport CRD and test/fixtures/crds", () => {
    const upstream = yaml("trivy-operator/aquasecurity.github.io_vulnerabilityreports.yaml");
    const ours = YAML.parse(readFileSync(fixturePath("crds/aquasecurity.github.io_vulnerabilityreports.yaml"), "utf8"));
    const version = (crd: any) => crd.spec.versions.find((v: any) => v.name === "v1alpha1");

    it("has the same name, group, names, scope and served storage version", () => {
      const pick = (crd: any) => ({
        name: crd.metadata.name,
        group: crd.spec.group,
        names: crd.spec.names,
        scope: crd.spec.scope,
        versions: crd.spec.versions.map((v: any) => ({ name: v.name, served: v.served, storage: v.storage })),
      });
      assert.deepEqual(pick(ours), pick(upstream));
    });

    it("requires the same fields at every level, and declares each of its fields as upstream does", () => {
      const problems: string[] = [];
      const walk = (up: any, our: any, at: string) => {
        if (!our) return;
        if (up.type !== our.type) problems.push(`${at}: type ${our.type}, upstream ${up.type}`);
        if (JSON.stringify([...(up.required ?? [])].sort()) !== JSON.stringify([...(our.required ?? [])].sort())) {
          problems.push(`${at}: requires ${JSON.stringify(our.required ?? [])}, upstream ${JSON.stringify(up.required ?? [])}`);
        }
        for (const k of ["enum", "minimum", "format", "x-kubernetes-preserve-unknown-fields"]) {
          if (JSON.stringify(up[k]) !== JSON.stringify(our[k])) problems.push(`${at}: ${k} ${JSON.stringify(our[k])}, upstream ${JSON.stringify(up[k])}`);
        }
        for (const [name, child] of Object.entries<any>(our.properties ?? {})) {
          if (!up.properties?.[name]) problems.push(`${at}.${name}: not in the upstream CRD`);
          else walk(up.properties[name], child, `${at}.${name}`);
        }
        if (up.items || our.items) walk(up.items ?? {}, our.items, `${at}[]`);
        if (up.additionalProperties || our.additionalProperties) walk(up.additionalProperties ?? {}, our.additionalProperties, `${at}{}`);
      };
      walk(version(upstream).schema.openAPIV3Schema, version(ours).schema.openAPIV3Schema, "");
      assert.deepEqual(problems, []);
    });

    it("declares every field Tenet reads from a report", () => {
      const report = version(ours).schema.openAPIV3Schema.properties.report.properties;
      for (const f of ["artifact", "registry", "os", "scanner", "summary", "updateTimestamp", "vulnerabilities"]) assert.ok(report[f], f);
      for (const f of ["repository", "tag", "digest"]) assert.ok(report.artifact.properties[f], `artifact.${f}`);
      for (const f of ["vulnerabilityID", "severity", "resource", "installedVersion", "fixedVersion", "title"]) assert.ok(report.vulnerabilities.items.properties[f], `vulnerabilities[].${f}`);
    });
  });

  describe("Trivy CLI JSON reports", () => {
    const goldens: [string, string, ReturnType<typeof counts>][] = [
      ["a full scan counts 2 critical and 4 medium findings", "alpine-39.json.golden", counts(2, 0, 4, 0, 0)],
      ["a HIGH,CRITICAL --ignore-unfixed scan counts 2 critical findings", "alpine-39-high-critical.json.golden", counts(2, 0, 0, 0, 0)],
      ["a result without a Vulnerabilities key is clean", "sl-micro-rancher5.4.json.golden", counts(0, 0, 0, 0, 0)],
      ["a report without a Results key is clean", "alpine-39-skip.json.golden", counts(0, 0, 0, 0, 0)],
    ];
    for (const [name, file, want] of goldens) {
      it(name, () => {
        const rec = fromTrivyJSON(json(`trivy-cli/${file}`), `file ${file}`);
        assert.deepEqual(countsOf(rec), want);
        assert.equal(rec.scannedAt, "2021-08-25T12:20:30.000000005Z");
      });
    }

    it("names the image from RepoTags when ArtifactName is an archive path, and keeps each finding's package and versions", () => {
      const rec = fromTrivyJSON(json("trivy-cli/alpine-39.json.golden"), "x");
      assert.equal(rec.image.full, "ghcr.io/aquasecurity/trivy-test-images:alpine-39");
      const musl = rec.vulnerabilities.find((v) => v.pkg === "musl");
      assert.deepEqual({ ...musl, title: undefined }, { id: "CVE-2019-14697", severity: "CRITICAL", pkg: "musl", installedVersion: "1.1.20-r4", fixedVersion: "1.1.20-r5", title: undefined });
    });
  });

  describe("Trivy Operator VulnerabilityReports", () => {
    it("reads the docs example: nginx:1.16 from index.docker.io with 2 critical findings", () => {
      const rec = fromVulnerabilityReport(yaml("trivy-operator/docs-example-1.yaml"));
      assert.equal(rec.image.full, "docker.io/library/nginx:1.16");
      assert.equal(rec.source, "VulnerabilityReport default/replicaset-nginx-6d4cf56db6-nginx");
      assert.deepEqual(countsOf(rec), counts(2, 0, 0, 0, 0));
      assert.equal(rec.scannedAt, undefined);
      assert.equal(rec.vulnerabilities.find((v) => v.id === "CVE-2018-25009")?.fixedVersion, undefined, "an empty fixedVersion means no fix");
    });

    it("keeps the envtest fixture's summary counts, which exceed its list", () => {
      const rec = fromVulnerabilityReport(yaml("trivy-operator/vulnerability-ttl.yaml"));
      assert.equal(rec.image.full, "k8s.gcr.io/coredns/coredns:v1.8.0");
      assert.deepEqual(countsOf(rec), counts(0, 12, 6, 0, 9));
      assert.equal(rec.vulnerabilities.filter((v) => v.id !== SUMMARY_ONLY_ID).length, 1);
      assert.equal(rec.scannedAt, "2022-12-08T15:50:37Z");
      const verdict = evaluateImage(rec.image, rec, { namespace: "demo", name: "r", spec: { selector: {}, vulnerabilities: { thresholds: { high: 10 }, ignoreUnfixed: true, exemptions: [{ id: "CVE-2021-3121", expires: "2030-01-01T00:00:00Z", reason: "r" }] } } }, new Date("2025-06-01T12:00:00Z"));
      assert.equal(verdict.counts.HIGH, 11, "12 counted by the summary, one of them exempted");
    });

    it("reads the clean design example without a namespace", () => {
      const rec = fromVulnerabilityReport(yaml("trivy-operator/design-clean-1.yaml"));
      assert.equal(rec.image.full, "ghcr.io/fluxcd/source-controller:v1.4.1");
      assert.equal(rec.source, "VulnerabilityReport replicaset-source-controller-b5d5cfdf4-manager");
      assert.deepEqual(rec.vulnerabilities, []);
    });

    it("gives the same exemption verdict for a report from Trivy Operator and from Trivy JSON", () => {
      const EXPIRES = "2026-01-01T00:00:00Z";
      const rule = { namespace: "demo", name: "baseline", spec: { selector: {}, vulnerabilities: { thresholds: { critical: 1 }, exemptions: [{ id: "CVE-2019-20367", expires: EXPIRES, reason: "r" }, { id: "CVE-2019-14697", expires: EXPIRES, reason: "r" }] } } };
      const fromOperator = fromVulnerabilityReport(yaml("trivy-operator/docs-example-1.yaml"));
      const fromCLI = fromTrivyJSON(json("trivy-cli/alpine-39.json.golden"), "file alpine-39.json");
      for (const [rec, exempted] of [[fromOperator, "CVE-2019-20367"], [fromCLI, "CVE-2019-14697"]] as const) {
        const before = evaluateImage(rec.image, rec, rule, new Date(Date.parse(EXPIRES) - 1));
        const at = evaluateImage(rec.image, rec, rule, new Date(EXPIRES));
        assert.deepEqual([before.decision, before.exempted, at.decision, at.expiredExemptions], ["allow", [exempted], "deny", [exempted]], rec.source);
      }
    });
  });

  describe("kubewarden's AdmissionRequests and kube-rs's AdmissionReview", () => {
    const permissive = { allowPrivileged: true, allowHostNamespaces: true, allowedHostPaths: ["/"], requireRunAsNonRoot: false, allowPrivilegeEscalation: true };
    const podOf = (file: string) => podSpecOf("Pod", json(`admission/${file}`).object)!.podSpec;
    const fields = (spec: any, ps: any) => podSecurityViolations(spec, ps).map((v) => v.field);

    it("catches the privileged init container, and what the CRD defaults forbid", () => {
      const spec = podOf("kubewarden-privileged_init_container.json");
      const vs = podSecurityViolations(spec, { ...permissive, allowPrivileged: false });
      assert.deepEqual(vs.map((v) => v.field), ["spec.initContainers[0].securityContext.privileged"]);
      assert.match(vs[0].message, /\(init container "nginx"\) but the rule forbids privileged containers/);
      assert.deepEqual(fields(spec, {}), [
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
        "spec.containers[1].securityContext.allowPrivilegeEscalation",
        "spec.initContainers[0].securityContext.privileged",
        "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
        "spec.securityContext.runAsNonRoot",
      ]);
    });

    it("catches the privileged ephemeral container and finds nothing privileged in the other pod", () => {
      assert.deepEqual(fields(podOf("kubewarden-privileged_ephemeral_container.json"), { ...permissive, allowPrivileged: false }), ["spec.ephemeralContainers[0].securityContext.privileged"]);
      assert.deepEqual(fields(podOf("kubewarden-no_privileged_containers.json"), { ...permissive, allowPrivileged: false }), []);
    });

    it("finds no pod spec in a DELETE (object null) nor in an Endpoints update", () => {
      const del = json("admission/kubewarden-req_delete.json");
      assert.equal(del.operation, "DELETE");
      assert.equal(podSpecOf(del.kind.kind, del.object), undefined);
      const other = json("admission/kubewarden-req_not_a_pod.json");
      assert.equal(podSpecOf(other.kind.kind, other.object), undefined);
    });

    it("injects kube-rs's captured pod (GKE), keeping its managedFields, annotations and volumes, idempotently", () => {
      const cfg: InjectionConfig = { ...testInjectionConfig, image: "tenet-operator:dev", args: ["enforcer/main.ts"] };
      const input = json("admission/kube-rs-admissionreview-v1-pod-create.json").request.object;
      const out = injectPod(structuredClone(input), cfg);
      assert.deepEqual(out.spec.volumes[0], input.spec.volumes[0]);
      assert.equal(out.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"], input.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]);
      assert.deepEqual(out.metadata.managedFields, input.metadata.managedFields);
      assert.deepEqual(applyPatch(input, jsonPatch(input, out)), out);
      assert.deepEqual(jsonPatch(out, injectPod(out, cfg)), []);
    });
  });

  describe("falco's DaemonSet (2 containers, 2 init containers, privileged, hostPath)", () => {
    const daemonSet = () => podSpecOf("DaemonSet", yaml("pod-specs/falco-daemonset-2containers-2initcontainers.yaml"))!;

    it("reads the template and finds every privileged container and disallowed hostPath", () => {
      const { podSpec, labels } = daemonSet();
      assert.deepEqual(labels, { "app.kubernetes.io/name": "falco", "app.kubernetes.io/instance": "falco" });
      assert.deepEqual([podSpec.containers.length, podSpec.initContainers.length], [2, 2]);
      const got = podSecurityViolations(podSpec, { allowedHostPaths: ["/proc", "/sys", "/etc"], allowedRegistries: ["docker.io/falcosecurity"] }).map((v) => v.field);
      assert.ok(got.includes("spec.containers[0].securityContext.privileged"));
      assert.ok(got.includes("spec.initContainers[0].securityContext.privileged"));
      assert.ok(!got.includes("spec.containers[1].securityContext.privileged"), "falcoctl has a null securityContext");
      for (const i of [0, 1, 2, 3, 4, 5, 11, 12, 13, 15]) assert.ok(got.includes(`spec.volumes[${i}].hostPath.path`), `volume ${i}`);
      assert.equal(got.filter((f) => f.startsWith("spec.volumes")).length, 10);
      assert.ok(!got.some((f) => f.endsWith(".image")));
      const lines = summarizeViolations(podSecurityViolations(podSpec, {}));
      assert.equal(lines.length, 4);
      assert.match(lines[1], /^14 hostPath volumes mount paths the rule does not allow: "\/var\/run\/docker\.sock", /);
    });

    it("keeps its many violations within the admission message limit", () => {
      const { podSpec, labels } = daemonSet();
      const rule = (name: string, spec: any) => ({ namespace: "default", name, spec: { selector: {}, ...spec } });
      const v = evaluatePod(
        { namespace: "default", labels, podSpec, owner: "DaemonSet default/falco" },
        [rule("baseline", { vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "deny" }, podSecurity: { allowedRegistries: ["ghcr.io"], requireDigest: true } }), rule("second", { podSecurity: {} })],
        new ScanIndex(),
        new Date("2025-06-01T12:00:00Z"),
      );
      assert.equal(v.allowed, false);
      assert.ok(v.message.length <= MAX_MESSAGE, `${v.message.length} chars`);
      assert.match(v.message, /^DaemonSet default\/falco refused by RuntimeRule default\/baseline: unscanned: docker\.io\/falcosecurity\/falco:0\.44\.1, /);
      assert.match(v.message, /; and \d+ more; and by RuntimeRule default\/second: /);
    });
  });

  describe("go-spiffe's X509-SVID testdata", () => {
    const cases: [string, string, RegExp | null][] = [
      ["accepts the good leaf", "good-leaf-only.pem", null],
      ["catches a leaf with cA=true (B1)", "wrong-leaf-ca-true.pem", /cA=true.*\(B1\)/],
      ["catches a leaf with keyCertSign (B4)", "wrong-leaf-cert-sign.pem", /keyCertSign.*\(B4\)/],
      ["catches a leaf with cRLSign (B4)", "wrong-leaf-crl-sign.pem", /cRLSign.*\(B4\)/],
      ["catches a leaf with no URI SAN (A1)", "wrong-leaf-empty-id.pem", /no URI SAN.*\(A1\)/],
      ["catches a leaf without digitalSignature (B3)", "wrong-leaf-no-digital-signature.pem", /lacks digitalSignature \(B3\)/],
    ];
    for (const [name, file, expected] of cases) {
      it(name, () => {
        const v = svidViolations(svid(file));
        if (!expected) assert.deepEqual(v, []);
        else assert.ok(v.some((s) => expected.test(s)), v.join("\n"));
      });
    }

    it("reports the corrupt and non-PEM files as unreadable, and refuses the corrupt one as a CA", () => {
      assert.match(svidViolations(svid("corrupt-cert.pem"))[0], /cannot be read: malformed certificate/);
      assert.match(svidViolations(svid("not-pem"))[0], /no PEM CERTIFICATE block/);
      assert.throws(() => loadCA(svid("corrupt-cert.pem"), createCA({ commonName: "x", validitySeconds: 60 }).keyPem), /does not parse/);
    });

    it("reads the leaf, the leaf after its key, and a leaf with its intermediate", () => {
      const id = readCertIdentity(svid("good-leaf-only.pem"));
      assert.deepEqual([id.spiffeID, id.subject], ["spiffe://example.org/workload-1", "C=US, O=SPIFFE"]);
      assert.ok(id.notAfter < new Date("2025-04-01T00:00:00Z"));
      assert.equal(splitPEM(svid("good-key-and-cert.pem")).length, 1);
      assert.equal(readCertIdentity(svid("good-key-and-cert.pem")).spiffeID, "spiffe://example.org/workload-1");
      assert.equal(splitPEM(svid("good-leaf-and-intermediate.pem")).length, 2);
      assert.equal(readCertIdentity(svid("good-leaf-and-intermediate.pem")).isCA, false);
      assert.throws(() => readCertIdentity(svid("key-pkcs8-ecdsa.pem")), /no CERTIFICATE PEM block \(found PRIVATE KEY\)/);
    });

    it("`tenet inspect cert` lists the rule the cA=true leaf breaks", () => {
      const out: string[] = [];
      const deps: CLIDeps = { readFile: () => Buffer.from(svid("wrong-leaf-ca-true.pem")), stdout: (s) => out.push(s), stderr: () => {}, now: () => new Date("2030-05-01T12:00:00Z") };
      assert.equal(run(["inspect", "cert", "bad.pem"], deps), 0);
      assert.match(out.join(""), /^X509-SVID {5}does NOT conform \(\d violations?\):\n {2}- the leaf certificate has basicConstraints cA=true/m);
    });
  });

  it("matches a bare Docker Hub name to the docs example's report", () => {
    const idx = new ScanIndex();
    idx.upsert("vr", fromVulnerabilityReport(yaml("trivy-operator/docs-example-1.yaml")));
    assert.equal(idx.lookup(parseImage("nginx:1.16"))?.source, "VulnerabilityReport default/replicaset-nginx-6d4cf56db6-nginx");
  });
});
