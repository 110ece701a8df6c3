// The Helm chart (charts/tenet): lint, render, and the same install as the kustomize base. What
// may differ, and only that: Helm's own labels (managed-by, instance, version, helm.sh/chart; the
// pod template gets app.kubernetes.io/instance) and the CRDs' helm.sh/resource-policy: keep.
// Values change what they say and nothing else. Rendering only; the integration tier
// (test/integration/deploy.test.ts) dry-runs both on a real API server.
import { strict as assert } from "node:assert";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { crdTemplate, outputs, run as gen, version } from "../../hack/gen-deploy.ts";
import { repoRoot } from "../harness/controlplane.ts";
import { chartDir, helm, key, kustomize, renderChart } from "../harness/tools.ts";
import { TENET_VERSION } from "../../common/version.ts";

const HELM_LABELS = ["app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version", "helm.sh/chart"];

/** The chart's object with what Helm adds taken away. */
function withoutHelm(o: any): any {
  const c = structuredClone(o);
  for (const l of HELM_LABELS) delete c.metadata.labels?.[l];
  delete c.metadata.annotations?.["helm.sh/resource-policy"];
  if (c.metadata.annotations && !Object.keys(c.metadata.annotations).length) delete c.metadata.annotations;
  delete c.spec?.template?.metadata?.labels?.["app.kubernetes.io/instance"];
  return c;
}

const byKey = (objs: any[]) => new Map(objs.map((o) => [key(o), o]));
const deployment = (objs: any[]) => objs.find((o) => o.kind === "Deployment");
const env = (objs: any[]) => Object.fromEntries(deployment(objs).spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe("Helm chart charts/tenet", function () {
  this.timeout(900_000); // a cold machine builds Helm first (~6 min on 2 cores)
  before(async () => void (await helm(["version", "--short"])));

  it("passes helm lint --strict, with default and with every optional value set", async () => {
    const lint = await helm(["lint", "--strict", chartDir]);
    assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    const all = ["namespace.create=true", "crds.keep=false", "priorityClassName=system-cluster-critical", "enforcerImage=r.example/t/tenet-enforcer:1", "jwksAllowedHosts={idp.example,*.auth.example}", "scanNamespaces={trivy-system,scanners}", "rescanSchedule=*/30 * * * *", "webhook.timeoutSeconds=10", "podDisruptionBudget.enabled=false"];
    const lint2 = await helm(["lint", "--strict", chartDir, ...all.flatMap((s) => ["--set", s])]);
    assert.match(lint2.stdout, /0 chart\(s\) failed/);
  });

  it("renders the same objects as the kustomize base, apart from Helm's labels", async () => {
    const base = byKey(await kustomize("manifests"));
    const chart = byKey(await renderChart(["namespace.create=true"]));
    assert.deepEqual([...chart.keys()].sort(), [...base.keys()].sort());
    for (const [k, o] of chart) {
      assert.deepEqual(withoutHelm(o), base.get(k), `${k} differs from the kustomize base`);
      for (const l of HELM_LABELS) assert.ok(o.metadata.labels?.[l], `${k} has Helm's label ${l}`);
    }
  });

  it("keeps the base's RBAC rules rule for rule, bound to the release's namespace", async () => {
    const chart = await renderChart([], "security");
    const base = await kustomize("manifests");
    for (const kind of ["ClusterRole", "Role"]) {
      assert.deepEqual(chart.find((o) => o.kind === kind).rules, base.find((o) => o.kind === kind).rules, kind);
    }
    for (const b of chart.filter((o) => o.kind.endsWith("Binding"))) assert.deepEqual(b.subjects, [{ kind: "ServiceAccount", name: "tenet-operator", namespace: "security" }]);
    assert.equal(chart.find((o) => o.kind === "Role").metadata.namespace, "security");
    assert.ok(chart.every((o) => o.kind === "CustomResourceDefinition" || o.kind.startsWith("Cluster") || o.metadata.namespace === "security"));
  });

  it("crds.enabled=false leaves the CRDs out; crds.keep=false drops the keep policy; namespace.create renders the PSS namespace", async () => {
    const crds = (objs: any[]) => objs.filter((o) => o.kind === "CustomResourceDefinition");
    const dflt = await renderChart();
    const crdFiles = parse(readFileSync(path.join(repoRoot, "crds/kustomization.yaml"), "utf8")).resources.length;
    assert.equal(crds(dflt).length, crdFiles);
    assert.ok(crds(dflt).every((c) => c.metadata.annotations["helm.sh/resource-policy"] === "keep"));
    assert.ok(!dflt.some((o) => o.kind === "Namespace"), "no Namespace by default (helm install --create-namespace)");
    assert.equal(crds(await renderChart(["crds.enabled=false"])).length, 0);
    assert.ok(crds(await renderChart(["crds.keep=false"])).every((c) => !c.metadata.annotations?.["helm.sh/resource-policy"]));
    const ns = (await renderChart(["namespace.create=true"], "tenet")).find((o) => o.kind === "Namespace");
    assert.equal(ns.metadata.name, "tenet");
    assert.equal(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
  });

  it("the CRD templates are crds/*.yaml, object for object (plus the chart's metadata)", async () => {
    const chart = byKey((await renderChart()).filter((o) => o.kind === "CustomResourceDefinition"));
    for (const file of parse(readFileSync(path.join(repoRoot, "crds/kustomization.yaml"), "utf8")).resources as string[]) {
      const src = parse(readFileSync(path.join(repoRoot, "crds", file), "utf8"));
      assert.deepEqual(withoutHelm(chart.get(key(src))), { ...src, metadata: { ...src.metadata, labels: { "app.kubernetes.io/part-of": "tenet" } } }, file);
    }
  });

  it("values set the operator's settings and scheduling, and a webhook configuration is never rendered", async () => {
    const objs = await renderChart(["image.repository=registry.example/sec/tenet-operator", "image.tag=1.2.3", "replicaCount=3", "trustDomain=prod.example", "jwksAllowedHosts={idp.example,*.auth.example}", "webhook.timeoutSeconds=10", "priorityClassName=system-cluster-critical", "enforcerImage=registry.example/sec/tenet-enforcer:1.2.3", "extraEnv[0].name=TENET_LOG_LEVEL", "extraEnv[0].value=debug", "podDisruptionBudget.enabled=false"]);
    const d = deployment(objs);
    assert.equal(d.spec.replicas, 3);
    assert.equal(d.spec.template.spec.containers[0].image, "registry.example/sec/tenet-operator:1.2.3");
    assert.equal(d.spec.template.spec.priorityClassName, "system-cluster-critical");
    const e = env(objs);
    assert.equal(e.TENET_TRUST_DOMAIN, "prod.example");
    assert.equal(e.TENET_JWKS_ALLOWED_HOSTS, "idp.example,*.auth.example");
    assert.equal(e.TENET_WEBHOOK_TIMEOUT_SECONDS, "10");
    assert.equal(e.TENET_ENFORCER_IMAGE, "registry.example/sec/tenet-enforcer:1.2.3");
    assert.equal(e.TENET_LOG_LEVEL, "debug");
    assert.ok(!objs.some((o) => o.kind === "PodDisruptionBudget"));
    // The operator applies its webhook configurations itself, with the caBundle of its CA.
    assert.ok(!objs.some((o) => /WebhookConfiguration$/.test(o.kind)));
    assert.ok(!JSON.stringify(objs).includes("caBundle"));
  });

  it("refuses to render a value of the wrong shape with a message naming it", async () => {
    const bad = await helm(["template", "tenet", chartDir, "--set", "replicaCount=two"], { allowFail: true });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /replicaCount/);
    const typo = await helm(["template", "tenet", chartDir, "--set", "replicas=3"], { allowFail: true });
    assert.notEqual(typo.code, 0, "an unknown value is refused, not ignored");
    assert.match(typo.stderr, /replicas/);
    const image = await helm(["template", "tenet", chartDir, "--set", "image.repository=registry.example/operator"], { allowFail: true });
    assert.match(image.stderr, /image.repository/);
  });
});

describe("one version (package.json)", () => {
  it("is the chart's version and appVersion, the image tag of chart and base, TENET_VERSION of both, common/version.ts", async function () {
    this.timeout(900_000);
    const v = version();
    const chartYaml = parse(readFileSync(path.join(chartDir, "Chart.yaml"), "utf8"));
    assert.equal(chartYaml.version, v);
    assert.equal(chartYaml.appVersion, v);
    for (const objs of [await renderChart(), await kustomize("manifests")]) {
      assert.equal(deployment(objs).spec.template.spec.containers[0].image, `tenet-operator:${v}`);
      assert.equal(env(objs).TENET_VERSION, v);
    }
    assert.equal(TENET_VERSION, v, "common/version.ts (run `npm run gen`)");
  });
});

describe("hack/gen-deploy.ts", () => {
  it("the generated files are up to date (chart CRDs and RBAC, versions, argocd-cm)", () => {
    const stale: string[] = [];
    for (const [file, content] of outputs()) if (readFileSync(file, "utf8") !== content) stale.push(path.relative(repoRoot, file));
    assert.deepEqual(stale, [], "run `npm run gen` and commit the result");
    assert.equal(gen(true), 0);
  });

  it("escapes Helm's delimiters, so a CRD whose text has {{ }} renders as written", async function () {
    this.timeout(900_000);
    const source = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.dev
spec:
  # a comment with {{ .Values.secret }} in it
  group: example.dev
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          description: "Templating like {{ .Name }} and }} or {{ stays text"
`;
    const dir = mkdtempSync(path.join(tmpdir(), "tenet-chart-"));
    cpSync(chartDir, dir, { recursive: true });
    rmSync(path.join(dir, "templates/crds"), { recursive: true });
    mkdirSync(path.join(dir, "templates/crds"));
    writeFileSync(path.join(dir, "templates/crds/widgets.yaml"), crdTemplate("widgets.yaml", source));
    const { stdout } = await helm(["template", "t", dir, "--show-only", "templates/crds/widgets.yaml"]);
    rmSync(dir, { recursive: true });
    const rendered = parse(stdout);
    assert.equal(rendered.spec.versions[0].schema.openAPIV3Schema.description, "Templating like {{ .Name }} and }} or {{ stays text");
    assert.ok(stdout.includes("# a comment with {{ .Values.secret }} in it"));
    assert.equal(rendered.metadata.annotations["helm.sh/resource-policy"], "keep");
    assert.throws(() => crdTemplate("x.yaml", "kind: CustomResourceDefinition\nspec: {}\n"), /expected "metadata:"/);
  });
});
