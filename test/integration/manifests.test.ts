import { strict as assert } from "node:assert";
import path from "node:path";
import { cluster, newNamespace, repoRoot } from "../harness/controlplane.ts";

describe("manifests/ (kustomize base)", function () {
  this.timeout(60_000);

  it("passes server-side dry-run with strict field validation", async () => {
    const { kubectl } = await cluster();
    const { stdout } = await kubectl(["apply", "--dry-run=server", "--validate=strict", "-k", path.join(repoRoot, "manifests")]);
    const objects = stdout.trim().split("\n");
    for (const expected of [
      "customresourcedefinition.apiextensions.k8s.io/serviceidentities.tenet.dev",
      "customresourcedefinition.apiextensions.k8s.io/apipolicies.tenet.dev",
      "customresourcedefinition.apiextensions.k8s.io/runtimerules.tenet.dev",
      "namespace/tenet-system",
      "serviceaccount/tenet-operator",
      "clusterrole.rbac.authorization.k8s.io/tenet-operator",
      "clusterrolebinding.rbac.authorization.k8s.io/tenet-operator",
      "role.rbac.authorization.k8s.io/tenet-operator",
      "rolebinding.rbac.authorization.k8s.io/tenet-operator",
      "deployment.apps/tenet-operator",
      "service/tenet-operator",
      "poddisruptionbudget.policy/tenet-operator",
    ]) {
      assert.ok(objects.some((l) => l.startsWith(`${expected} `) && l.endsWith("(server dry run)")), `${expected} in:\n${stdout}`);
    }
  });

  it("runs the operator as non-root with a read-only root filesystem and no privilege escalation", async () => {
    const { kubectl } = await cluster();
    const { stdout } = await kubectl(["kustomize", path.join(repoRoot, "manifests")]);
    const { parseAllDocuments } = await import("yaml");
    const deploy = parseAllDocuments(stdout).map((d) => d.toJS()).find((o) => o?.kind === "Deployment");
    assert.equal(deploy.spec.replicas, 2);
    const pod = deploy.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const c = pod.containers[0];
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.ok(c.livenessProbe && c.readinessProbe && c.resources.requests && c.resources.limits);
  });

  it("grants no wildcard verbs or resources, and reads only its own two CA Secrets", async () => {
    const { kubectl } = await cluster();
    const { stdout } = await kubectl(["kustomize", path.join(repoRoot, "manifests")]);
    const { parseAllDocuments } = await import("yaml");
    const roles = parseAllDocuments(stdout).map((d) => d.toJS()).filter((o) => o?.kind === "ClusterRole" || o?.kind === "Role");
    assert.ok(roles.length >= 2);
    for (const role of roles) {
      for (const rule of role.rules) {
        assert.ok(!rule.verbs.includes("*") && !rule.resources.includes("*"), `${role.metadata.name}: wildcard in ${JSON.stringify(rule)}`);
        if (rule.resources.includes("secrets")) {
          assert.equal(role.kind, "Role", "Secrets only in Tenet's own namespace");
          const reads = rule.verbs.filter((v: string) => v !== "create");
          if (reads.length) assert.deepEqual(rule.resourceNames, ["tenet-ca", "tenet-serving-ca"], "reads and writes only the two CA Secrets (workload, serving)");
        }
      }
    }
  });

  it("can write no ConfigMap but its own: the trust bundle by name in any namespace, the revocation list in its namespace", async () => {
    const { kubectl } = await cluster();
    const { stdout } = await kubectl(["kustomize", path.join(repoRoot, "manifests")]);
    const { parseAllDocuments } = await import("yaml");
    const roles = parseAllDocuments(stdout).map((d) => d.toJS()).filter((o) => o?.kind === "ClusterRole" || o?.kind === "Role");
    for (const role of roles) {
      for (const rule of role.rules) {
        if (!rule.resources.includes("configmaps")) continue;
        const writes = rule.verbs.filter((v: string) => ["patch", "update", "delete", "deletecollection"].includes(v));
        if (writes.length) assert.ok(rule.resourceNames?.length, `${role.kind} ${role.metadata.name}: ${writes.join(", ")} on configmaps without resourceNames`);
        if (role.kind === "ClusterRole" && rule.verbs.includes("create")) assert.deepEqual(rule.resourceNames, ["tenet-trust-bundle"], "cluster-wide create only of the trust bundle (server-side apply)");
      }
    }

    // What the API server itself answers for the operator's ServiceAccount (RBAC as installed).
    const ns = await newNamespace("rbac-cm");
    const as = ["--as=system:serviceaccount:tenet-system:tenet-operator"];
    const can = async (...args: string[]) => (await kubectl(["auth", "can-i", ...as, ...args], { allowFail: true })).stdout.trim();
    assert.equal(await can("patch", "configmaps/kube-root-ca.crt", "-n", ns), "no", "another ConfigMap in a tenant namespace");
    assert.equal(await can("patch", "configmaps/coredns", "-n", "kube-system"), "no");
    assert.equal(await can("update", "configmaps/anything", "-n", ns), "no");
    assert.equal(await can("create", "configmaps", "-n", ns), "no", "no plain create outside tenet-system");
    assert.equal(await can("patch", "configmaps/tenet-trust-bundle", "-n", ns), "yes");
    assert.equal(await can("patch", "configmaps/other", "-n", "tenet-system"), "no");
    for (let i = 0; i < 16; i++) assert.equal(await can("update", `configmaps/tenet-revocations-${i}`, "-n", "tenet-system"), "yes", `revocation shard ${i}`);
    assert.equal(await can("update", "configmaps/tenet-revocations-16", "-n", "tenet-system"), "no", "no shard beyond the 16");
    assert.equal(await can("update", "configmaps/tenet-revocations", "-n", "tenet-system"), "no", "the pre-sharding list is only read");
    // Server-side apply as the operator: creates and updates the trust bundle, nothing else.
    const cm = (name: string) => JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data: { "ca.crt": "x" } });
    const apply = (name: string) => kubectl(["apply", "--server-side", "--field-manager=tenet-operator", ...as, "-f", "-"], { input: cm(name), allowFail: true });
    assert.equal((await apply("tenet-trust-bundle")).code, 0, "creates the bundle by server-side apply");
    assert.equal((await apply("tenet-trust-bundle")).code, 0, "and updates it");
    const other = await apply("app-config");
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /forbidden/i);
  });
});
