// The project's own fixtures say what they claim to: the generated SVIDs are checked by readers
// independent of Tenet's CA code (node's X509Certificate, the openssl CLI), and the
// VulnerabilityReports against the required fields of test/fixtures/crds.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import { podSpecOf } from "../../policy/admission.ts";
import { fixtureText, jsonFixture, yamlFixture } from "../harness/fixtures.ts";
import { SVID_ID, SVID_NOT_AFTER, testSVIDs, type TestSVIDs } from "../harness/svids.ts";

const svids = await testSVIDs();
const certs = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!.map((b) => new crypto.X509Certificate(b));
const opensslText = (pem: string) => execFileSync("openssl", ["x509", "-noout", "-text"], { input: pem, encoding: "utf8" });

describe("test fixtures: the generated X509-SVIDs", () => {
  const leaves: [keyof TestSVIDs, RegExp[], RegExp[]][] = [
    ["good-leaf-only.pem", [/CA:FALSE/, /Key Usage: critical\s+Digital Signature\n/, /URI:spiffe:\/\/example\.org\/workload-1\n/], [/DNS:/]],
    ["wrong-leaf-ca-true.pem", [/Basic Constraints: critical\s+CA:TRUE/, /URI:spiffe/], []],
    ["wrong-leaf-cert-sign.pem", [/CA:FALSE/, /Digital Signature, Certificate Sign\n/], []],
    ["wrong-leaf-crl-sign.pem", [/CA:FALSE/, /Digital Signature, CRL Sign\n/], []],
    ["wrong-leaf-empty-id.pem", [/DNS:example\.org/], [/URI:/]],
    ["wrong-leaf-no-digital-signature.pem", [/Key Usage: critical\s+Key Agreement\n/], [/Digital Signature/]],
    ["wrong-leaf-two-uris.pem", [/URI:spiffe:\/\/example\.org\/workload-1, URI:spiffe:\/\/example\.org\/workload-2/], []],
  ];
  for (const [name, present, absent] of leaves) {
    it(`${name} is what its name says (openssl)`, () => {
      const t = opensslText(svids[name]);
      for (const re of present) assert.match(t, re);
      for (const re of absent) assert.doesNotMatch(t, re);
      assert.match(t, /Subject: C ?= ?US, O ?= ?SPIFFE\n/);
    });
  }

  it("are expired, with a SPIFFE ID node reads the same way", () => {
    const [leaf] = certs(svids["good-leaf-only.pem"]);
    assert.equal(new Date(leaf.validTo).getTime(), SVID_NOT_AFTER.getTime());
    assert.equal(leaf.subjectAltName, `URI:${SVID_ID}`);
    assert.equal(leaf.ca, false);
  });

  it("chain a leaf to the intermediate that signed it, and the key to the leaf", () => {
    const [leaf, inter] = certs(svids["good-leaf-and-intermediate.pem"]);
    assert.equal(inter.ca, true);
    assert.ok(leaf.checkIssued(inter) && leaf.verify(inter.publicKey));
    const key = crypto.createPrivateKey(svids["good-key-and-cert.pem"]);
    assert.ok(certs(svids["good-key-and-cert.pem"])[0].checkPrivateKey(key));
    assert.ok(certs(svids["good-cert-and-key.pem"])[0].checkPrivateKey(crypto.createPrivateKey(svids["good-cert-and-key.pem"])));
    assert.equal(crypto.createPrivateKey(svids["key-pkcs8-ecdsa.pem"]).asymmetricKeyType, "ec");
  });

  it("include an intermediate without keyCertSign that cannot sign its leaf", () => {
    const [leaf, inter] = certs(svids["wrong-intermediate-no-key-cert-sign.pem"]);
    assert.ok(leaf.verify(inter.publicKey), "the signature itself is good");
    assert.match(opensslText(inter.toString()), /CA:TRUE[\s\S]*Key Usage: critical\s+CRL Sign\n/);
  });

  it("include unreadable input", () => {
    assert.throws(() => new crypto.X509Certificate(svids["corrupt-cert.pem"]));
    assert.throws(() => crypto.createPrivateKey(svids["corrupt-key.pem"]));
    assert.doesNotMatch(svids["not-pem"], /-----BEGIN/);
  });
});

describe("test fixtures: VulnerabilityReports, AdmissionReviews and Trivy JSON", () => {
  const crd = yamlFixture("crds/aquasecurity.github.io_vulnerabilityreports.yaml");
  const schema = crd.spec.versions[0].schema.openAPIV3Schema;
  /** The required fields a document lacks, by path (the CRD's structural schema, required only). */
  function missing(doc: any, s: any = schema, at = ""): string[] {
    if (doc === undefined || doc === null || typeof doc !== "object") return [];
    const out = (s.required ?? []).filter((k: string) => doc[k] === undefined).map((k: string) => `${at}${at ? "." : ""}${k}`);
    for (const [k, child] of Object.entries<any>(s.properties ?? {})) {
      if (child.type === "array" && Array.isArray(doc[k])) doc[k].forEach((item: any, i: number) => out.push(...missing(item, child.items, `${at}${at ? "." : ""}${k}[${i}]`)));
      else out.push(...missing(doc[k], child, `${at}${at ? "." : ""}${k}`));
    }
    return out;
  }

  it("the clean report has every field the CRD requires", () => {
    assert.deepEqual(missing(yamlFixture("trivy-operator/catalog-clean.yaml")), []);
  });

  it("the docs-style and summary-only reports lack what upstream's examples lack, on purpose", () => {
    const nginx = missing(yamlFixture("trivy-operator/web-nginx-2-critical.yaml"));
    assert.deepEqual(nginx.filter((f) => !/\.(publishedDate|lastModifiedDate)$/.test(f)), ["report.os", "report.updateTimestamp"]);
    const ingress = missing(yamlFixture("trivy-operator/ingress-summary-only.yaml"));
    assert.deepEqual(ingress.filter((f) => !/\.(publishedDate|lastModifiedDate)$/.test(f)), ["report.os"]);
  });

  it("the AdmissionReview is a full admission.k8s.io/v1 review of a Pod CREATE", () => {
    const r = jsonFixture("admission/admissionreview-v1-pod-create.json");
    assert.deepEqual([r.apiVersion, r.kind, r.request.operation, r.request.kind.kind, r.request.options.kind], ["admission.k8s.io/v1", "AdmissionReview", "CREATE", "Pod", "CreateOptions"]);
    assert.ok(r.request.object.metadata.managedFields.length > 0 && r.request.userInfo.extra);
  });

  it("the DELETE has no object, only the old one; the Service update has no pod spec", () => {
    const del = jsonFixture("admission/request-pod-delete.json");
    assert.deepEqual([del.operation, del.object, del.oldObject.kind], ["DELETE", null, "Pod"]);
    assert.equal(podSpecOf(del.kind.kind, del.object), undefined);
    const svc = jsonFixture("admission/request-service-update.json");
    assert.equal(podSpecOf(svc.kind.kind, svc.object), undefined);
  });

  it("the Trivy JSON reports are SchemaVersion 2 image scans; two are clean in the two ways Trivy writes it", () => {
    for (const f of ["billing-full.json", "billing-high-critical.json", "billing-skip-dirs-no-results.json", "static-site-no-vulnerabilities.json"]) {
      const d = jsonFixture(`trivy-cli/${f}`);
      assert.deepEqual([d.SchemaVersion, d.ArtifactType], [2, "container_image"], f);
    }
    assert.equal("Results" in jsonFixture("trivy-cli/billing-skip-dirs-no-results.json"), false);
    const clean = jsonFixture("trivy-cli/static-site-no-vulnerabilities.json");
    assert.equal(clean.Results.length, 1);
    assert.equal("Vulnerabilities" in clean.Results[0], false);
    assert.doesNotMatch(fixtureText("trivy-cli/billing-high-critical.json"), /"Severity": "(MEDIUM|LOW|UNKNOWN)"/);
  });
});
