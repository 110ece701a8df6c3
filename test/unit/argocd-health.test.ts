// Argo CD health checks and the release action (argocd/resource_customizations, upstream layout),
// run by gopher-lua as Argo CD runs them (hack/modules/argocd-lua) against every health_test.yaml
// and action_test.yaml. The integration tier runs the same scripts on statuses the real operator
// wrote (test/integration/deploy.test.ts).
import { strict as assert } from "node:assert";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { repoRoot } from "../harness/controlplane.ts";
import { run } from "../harness/exec.ts";
import { argocdLuaBin } from "../harness/tools.ts";

const root = path.join(repoRoot, "argocd/resource_customizations");
const tenetKinds = () =>
  readdirSync(path.join(repoRoot, "crds"))
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .map((f) => parse(readFileSync(path.join(repoRoot, "crds", f), "utf8")).spec.names.kind as string)
    .sort();

async function lua(args: string[], input?: string) {
  return run(await argocdLuaBin(), args, { input, allowFail: true });
}

describe("Argo CD health checks and actions (gopher-lua)", function () {
  this.timeout(300_000); // a cold machine builds the runner first (~35 s)

  it("every tenet.dev kind has a health.lua with tests in the upstream layout", () => {
    const dirs = readdirSync(path.join(root, "tenet.dev")).sort();
    assert.deepEqual(dirs, tenetKinds());
    for (const kind of dirs) {
      const dir = path.join(root, "tenet.dev", kind);
      const { tests } = parse(readFileSync(path.join(dir, "health_test.yaml"), "utf8"));
      assert.ok(tests.length >= 3, `${kind}: at least Healthy, Degraded and Progressing`);
      for (const status of ["Healthy", "Degraded", "Progressing"]) assert.ok(tests.some((t: any) => t.healthStatus.status === status), `${kind} has a ${status} case`);
      const inputs = new Set(tests.map((t: any) => t.inputPath));
      assert.deepEqual(readdirSync(path.join(dir, "testdata")).map((f) => `testdata/${f}`).sort(), [...inputs].sort(), `${kind}: every testdata file is a case`);
    }
  });

  it("the kinds with a Ready condition share one script (the same conditions, the same meaning)", () => {
    // An Incident has no Ready condition (a person moves it through spec.state): a script of its own.
    const scripts = tenetKinds().filter((k) => k !== "Incident").map((k) => readFileSync(path.join(root, "tenet.dev", k, "health.lua"), "utf8"));
    assert.ok(scripts.every((s) => s === scripts[0]));
  });

  it("passes every health_test.yaml and action_test.yaml case", async () => {
    const cases = (file: string) => {
      const t = parse(readFileSync(file, "utf8"));
      return (t.tests?.length ?? 0) + (t.discoveryTests?.length ?? 0) + (t.actionTests?.length ?? 0);
    };
    let expected = 0;
    for (const f of readdirSync(root, { recursive: true }) as string[]) if (/(health|action)_test\.yaml$/.test(f)) expected += cases(path.join(root, f));
    const { code, stdout } = await lua(["test", root]);
    assert.equal(code, 0, stdout);
    assert.ok(stdout.trim().endsWith(`${expected} passed, 0 failed`), stdout);
  });

  it("fails a case whose expectation is wrong, naming the file, what it got and what it wanted", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tenet-argocd-"));
    cpSync(path.join(root, "tenet.dev/RuntimeRule"), dir, { recursive: true });
    const file = path.join(dir, "health_test.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("status: Degraded", "status: Healthy"));
    const { code, stdout } = await lua(["test", dir]);
    rmSync(dir, { recursive: true });
    assert.equal(code, 1);
    assert.match(stdout, /FAIL .*degraded_exemptionExpired\.yaml: got \{Status:Degraded .*want \{Status:Healthy/);
    assert.match(stdout, /1 failed$/m);
  });

  it("runs with Argo CD's libraries only (no io, an os without execute) and its one-second limit", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tenet-argocd-"));
    const obj = JSON.stringify({ apiVersion: "v1", kind: "X", metadata: { name: "x" } });
    for (const [script, error] of [
      ["return {status = io.read()}", /attempt to index a non-table object\(nil\) with key 'read'/],
      ['os.execute("id") return {}', /attempt to call a non-function object/],
      ["while true do end", /context deadline exceeded/],
    ] as const) {
      writeFileSync(path.join(dir, "health.lua"), script);
      const r = await lua(["health", path.join(dir, "health.lua")], obj);
      assert.notEqual(r.code, 0, script);
      assert.match(r.stderr, error, script);
    }
    rmSync(dir, { recursive: true });
  });

  it("an object without status is Progressing, a malformed one an error rather than a verdict", async () => {
    const script = path.join(root, "tenet.dev/APIPolicy/health.lua");
    const fresh = await lua(["health", script], JSON.stringify({ apiVersion: "tenet.dev/v1alpha1", kind: "APIPolicy", metadata: { name: "p", generation: 1 } }));
    assert.deepEqual(JSON.parse(fresh.stdout), { status: "Progressing", message: "Waiting for the Tenet operator to report status" });
    const hostile = await lua(["health", script], JSON.stringify({ apiVersion: "tenet.dev/v1alpha1", kind: "APIPolicy", metadata: { name: "p", generation: 1 }, status: { observedGeneration: 1, conditions: [{ type: "Ready", status: "True" }] } }));
    assert.equal(JSON.parse(hostile.stdout).status, "Healthy", "missing reason and message still give a verdict");
    const notYaml = await lua(["health", script], "{ not: [valid");
    assert.notEqual(notYaml.code, 0);
    assert.ok(existsSync(script));
  });
});
