// `tenet check` against the real thing: the same manifests judged by the compiled CLI offline
// and by the real operator's webhooks, called by the real API server (kubectl apply
// --dry-run=server). Verdict, denial message and warnings must agree object by object.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { built } from "../harness/build.ts";
import { cluster, newNamespace, operatorKubeconfig, repoRoot } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";

describe("tenet check agrees with the real /mutate and /validate", function () {
  this.timeout(180_000);
  let kube: Kube;
  let kubectl: Awaited<ReturnType<typeof cluster>>["kubectl"];
  let operator: OperatorProcess;
  let dir: string;

  before(async () => {
    ({ kube, kubectl } = await cluster());
    operator = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `cli-${Date.now()}`, env: { TENET_LEASE_NAME: `lease-cli-${Date.now()}` } });
    await operator.waitForHTTPS();
    await operator.waitForLog("webhook configurations", (l) => l.msg === "webhook configurations applied");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tenet-check-it-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("gives the webhook's verdict, message and warnings on every object", async () => {
    const ns = await newNamespace("cli");
    await kube.patch(resourcePath(Resources.namespaces, undefined, ns), "merge", { metadata: { labels: { "tenet.dev/inject": "enabled" } } });
    const bad = `ghcr.io/acme/cli-${ns}:1`;
    const safe = { runAsNonRoot: true, allowPrivilegeEscalation: false };
    const deploy = (name: string, app: string, container: Record<string, unknown>) => ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: ns },
      spec: { selector: { matchLabels: { app } }, template: { metadata: { labels: { app } }, spec: { containers: [{ name: "app", ...container }] } } },
    });
    const policy = [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: { "tenet.dev/inject": "enabled" } } },
      { apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", metadata: { name: "strict", namespace: ns }, spec: { selector: { matchLabels: { app: "web" } }, vulnerabilities: { thresholds: { critical: 0 } }, podSecurity: { allowPrivileged: false, allowedRegistries: ["ghcr.io/acme"] } } },
      { apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", metadata: { name: "watch", namespace: ns }, spec: { selector: { matchLabels: { app: "audit" } }, enforcement: "audit", podSecurity: { allowedRegistries: ["ghcr.io/acme"] } } },
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `trivy-${ns}`, namespace: "tenet-system", labels: { "tenet.dev/trivy-report": "true" } },
        data: {
          "ok.json": JSON.stringify({ SchemaVersion: 2, ArtifactName: `ghcr.io/acme/ok-${ns}:1`, ArtifactType: "container_image", Results: [] }),
          "r.json": JSON.stringify({ SchemaVersion: 2, ArtifactName: bad, ArtifactType: "container_image", Results: [{ Target: "t", Vulnerabilities: ["CVE-2024-0001", "CVE-2024-0002"].map((id) => ({ VulnerabilityID: id, Severity: "CRITICAL", PkgName: "p", InstalledVersion: "1", FixedVersion: "2" })) }] }),
        },
      },
    ];
    // The cluster gets the policy objects (the Namespace exists already); the CLI reads the same file.
    const policyFile = path.join(dir, "policy.yaml");
    fs.writeFileSync(policyFile, policy.map((o) => YAML.stringify(o)).join("---\n"));
    const applied = await kubectl(["apply", "-f", policyFile], { allowFail: true });
    assert.equal(applied.code, 0, applied.stderr);

    const objects: any[] = [
      deploy("clean", "web", { image: `ghcr.io/acme/clean-${ns}:1`, securityContext: safe }),
      deploy("vulnerable", "web", { image: bad, securityContext: safe }),
      deploy("privileged", "web", { image: `ghcr.io/acme/clean-${ns}:1`, securityContext: { runAsNonRoot: true, privileged: true } }),
      deploy("audited", "audit", { image: "docker.io/library/nginx:1" }),
      deploy("unmatched", "other", { image: "docker.io/library/nginx:1" }),
      { apiVersion: "v1", kind: "Pod", metadata: { name: "clash", namespace: ns, labels: { app: "web" } }, spec: { containers: [{ name: "app", image: `ghcr.io/acme/clean-${ns}:1`, securityContext: safe, ports: [{ containerPort: 15443 }] }] } },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "forged", namespace: ns, labels: { app: "web" }, annotations: { "tenet.dev/quarantined-by": "x" } }, spec: { containers: [{ name: "app", image: `ghcr.io/acme/clean-${ns}:1`, securityContext: safe }] } },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "injected", namespace: ns, labels: { app: "web" } }, spec: { containers: [{ name: "app", image: `ghcr.io/acme/ok-${ns}:1`, securityContext: safe }] } },
    ];
    const user = (await kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])).stdout.trim();

    // The webhook's caches catch up asynchronously: wait until the real answer on the vulnerable one is a denial naming the scan.
    const objFile = (o: any) => {
      const f = path.join(dir, `${o.kind}-${o.metadata.name}.yaml`);
      fs.writeFileSync(f, YAML.stringify(o));
      return f;
    };
    const server = (o: any) => kubectl(["apply", "--dry-run=server", "-f", objFile(o)], { allowFail: true });
    await waitFor("the rules and the scan to reach the webhook", async () => /2 critical/.test((await server(objects[1])).stderr) || undefined, 30_000, 250);
    await waitFor("the audit rule to reach the webhook", async () => /RuntimeRule .*watch/.test((await server(objects[3])).stderr) || undefined, 30_000, 250);

    const cli = spawnSync(process.execPath, [built("build/cli/tenet.js"), "check", policyFile, ...objects.map(objFile), "-o", "json", "--user", user], { cwd: repoRoot, encoding: "utf8" });
    assert.ok(cli.status === 1, cli.stderr + cli.stdout);
    const results = JSON.parse(cli.stdout).results;
    assert.equal(results.length, objects.length);

    const seen = new Set<string>();
    for (const o of objects) {
      const mine = results.find((r: any) => r.kind === o.kind && r.name === o.metadata.name);
      const real = await server(o);
      const what = `${o.kind} ${o.metadata.name}: CLI ${mine.outcome} ${JSON.stringify(mine.denials)} / server ${real.code} ${real.stderr}`;
      const deniedNow = mine.denials.filter((d: any) => d.stage !== "pods");
      assert.equal(real.code !== 0, deniedNow.length > 0, what);
      for (const d of deniedNow) {
        const webhook = d.stage === "mutate" ? "inject.tenet.dev" : "validate.tenet.dev";
        assert.ok(real.stderr.includes(`admission webhook "${webhook}" denied the request: ${d.message}`), what);
      }
      if (real.code === 0) for (const w of mine.warnings) assert.ok(real.stderr.includes(`Warning: ${w}`), `${what}\nmissing warning ${w}`);
      const serverWarnings = real.stderr.split("\n").filter((l) => l.startsWith("Warning: ")).length;
      if (real.code === 0) assert.equal(serverWarnings, mine.warnings.length, what);
      seen.add(mine.outcome);
    }
    assert.deepEqual([...seen].sort(), ["admitted", "denied", "unmatched", "warned"], "every outcome was compared");
    const clean = results.find((r: any) => r.name === "clean");
    assert.equal(clean.outcome, "warned", "unscanned images warn by default");
    assert.equal(results.find((r: any) => r.name === "injected").injection, "Injected");
  });
});
