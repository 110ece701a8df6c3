// PolicyReports written by the real operator on the real API server: healthy without the CRD and
// finding it later, a denied pod creation, rescan verdicts and Incidents (from a real Falco event)
// as results, forged Incidents left out, no rewrite of equal content (across a change of leader),
// under Tenet's own RBAC (the operator runs as its ServiceAccount).
import { strict as assert } from "node:assert";
import path from "node:path";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig, repoRoot } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { httpsRequest } from "../harness/pki.ts";
import { createObject, falcoFixture, pod, tenet, vulnerabilityReport } from "./helpers.ts";

const VR = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };
const POLR = Resources.policyReports;
const CRD = path.join(repoRoot, "test/fixtures/crds/wgpolicyk8s.io_policyreports.yaml");
const CRITICAL = [{ id: "CVE-2024-3094", severity: "CRITICAL" }];

describe("PolicyReports (real API server, operator process)", function () {
  this.timeout(240_000);
  let kube: Kube;
  let kubectl: Awaited<ReturnType<typeof cluster>>["kubectl"];
  let ns: string;

  async function startOperator(name: string) {
    const p = await OperatorProcess.start({
      kubeconfig: await operatorKubeconfig(),
      namespace: "tenet-system",
      identity: `${name}-${ns}`,
      env: {
        TENET_LEASE_NAME: `lease-${ns}`,
        TENET_LEASE_DURATION_MS: "4000",
        TENET_RENEW_DEADLINE_MS: "3000",
        TENET_RETRY_PERIOD_MS: "500",
        TENET_REPORT_DISCOVERY_MS: "500",
        TENET_REPORT_BATCH_MS: "200",
        TENET_REPORT_MIN_INTERVAL_MS: "500",
      },
    });
    await p.waitForLog("leadership", (l) => l.msg === "became leader", 30_000);
    return p;
  }
  const report = () => kube.get(resourcePath(POLR, ns, "tenet")).catch(() => undefined);
  const waitReport = (what: string, pred: (r: any) => boolean, timeoutMs = 40_000) =>
    waitFor(`PolicyReport ${ns}/tenet: ${what}`, async () => {
      const r = await report();
      return r && pred(r) ? r : undefined;
    }, timeoutMs, 200);
  const resultFor = (r: any, name: string, rule?: string) => r.results?.find((x: any) => x.resources?.[0]?.name === name && (!rule || x.rule === rule));
  const putVR = async (name: string, repository: string, vulns: { id: string; severity: string }[]) => {
    const p = resourcePath(VR, ns, name);
    const existing = await kube.get(p).catch(() => undefined);
    if (existing) await kube.replace(p, { ...vulnerabilityReport(name, repository, "1.0", vulns), metadata: { ...existing.metadata } });
    else await kube.create(resourcePath(VR, ns), vulnerabilityReport(name, repository, "1.0", vulns));
  };

  before(async () => {
    ({ kube, kubectl } = await cluster());
  });

  it("runs healthy without the PolicyReport CRD, says so once, and writes reports once the CRD is installed", async () => {
    await kubectl(["delete", "--ignore-not-found", "--wait", "-f", CRD]);
    ns = await newNamespace("polr-absent");
    await createObject(kube, tenet("RuntimeRule", ns, "strict", { selector: { matchLabels: { app: "orders" } }, vulnerabilities: { thresholds: { critical: 0 } } }));
    await putVR("orders-app", "acme/orders", []);
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }, "default", "ghcr.io/acme/orders:1.0"));
    const operator = await startOperator("absent");

    // Several discovery rounds pass (debug lines), one info line, the operator stays ready.
    await waitFor("three discovery rounds", () => operator.logs.filter((l) => l.msg === "PolicyReport API not served").length >= 3, 30_000);
    assert.equal(operator.logs.filter((l) => l.msg?.startsWith("PolicyReport CRD not installed")).length, 1);
    const ready = await fetch(`http://127.0.0.1:${operator.healthPort}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    assert.ok(operator.running);
    assert.equal(await operator.metricSum("tenet_policyreports_available"), 0);
    // Everything else works meanwhile: the pod got its posture.
    await waitFor("posture clean", async () => (await kube.get(resourcePath(Resources.pods, ns, "orders-0"))).metadata.labels?.["tenet.dev/posture"] === "clean", 30_000);

    await kubectl(["apply", "--server-side", "-f", CRD]);
    await kubectl(["wait", "--for=condition=Established", "--timeout=30s", "crd/policyreports.wgpolicyk8s.io"]);
    const r = await waitReport("a pass result for orders-0", (x) => resultFor(x, "orders-0")?.result === "pass");
    assert.ok(operator.hasLog((l) => l.msg === "PolicyReport API found; writing Tenet's results as PolicyReports"));
    assert.equal(await operator.metricSum("tenet_policyreports_available"), 1);
    assert.deepEqual(r.summary, { pass: 1, fail: 0, warn: 0, error: 0, skip: 0 });
    assert.equal(r.metadata.labels["app.kubernetes.io/managed-by"], "tenet");
    assert.equal(r.metadata.managedFields?.[0]?.manager, "tenet-reports");
  });

  it("records a denied pod creation and rescan verdicts as results, and writes nothing when nothing changed, even after a change of leader", async () => {
    await kubectl(["apply", "--server-side", "-f", CRD]);
    await kubectl(["wait", "--for=condition=Established", "--timeout=30s", "crd/policyreports.wgpolicyk8s.io"]);
    ns = await newNamespace("polr");
    await createObject(kube, tenet("RuntimeRule", ns, "strict", { selector: {}, vulnerabilities: { thresholds: { critical: 0 } } }));
    await putVR("orders-app", "acme/orders", []);
    await putVR("billing-app", "acme/billing", CRITICAL);
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }, "default", "ghcr.io/acme/orders:1.0"));
    const first = await startOperator("first");
    await first.waitForHTTPS();
    await first.waitForLog("webhooks applied", (l) => l.msg === "webhook configurations applied", 30_000);

    // A forged denial, as a namespace editor can write it (Events in their namespace, the real rule's
    // uid and Tenet's annotation) is not taken: the leader reads records in Tenet's namespace only.
    // Created before the real denial, so it would be in the report by the time the real one is.
    const rule = await kube.get(resourcePath(Resources.runtimeRules, ns, "strict"));
    await kube.create(resourcePath(Resources.events, ns), {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `forged.${Date.now()}`, namespace: ns, annotations: { "tenet.dev/runtime-rule": JSON.stringify({ namespace: ns, name: "strict", uid: rule.metadata.uid }) } },
      involvedObject: { apiVersion: "tenet.dev/v1alpha1", kind: "RuntimeRule", name: "strict", namespace: ns, uid: rule.metadata.uid },
      related: { apiVersion: "v1", kind: "Pod", namespace: ns, name: "forged-0" },
      reason: "AdmissionDenied",
      type: "Warning",
      message: `Pod ${ns}/forged-0: forged`,
      source: { component: "tenet-operator" },
      firstTimestamp: new Date().toISOString(),
      lastTimestamp: new Date().toISOString(),
      count: 1,
    });
    assert.ok(rule.metadata.uid);

    // The API server calls the webhook once it has picked up the configuration (dry runs are not reported).
    const billing = pod("billing-0", { app: "billing" }, "default", "ghcr.io/acme/billing:1.0");
    await waitFor("the validating webhook to deny billing-0", () => kube.create(resourcePath(Resources.pods, ns), billing, { dryRun: "All" }).then(() => false, (e) => /denied the request/.test(String(e))), 20_000, 250);
    await assert.rejects(kube.create(resourcePath(Resources.pods, ns), billing), /denied the request/);

    let r = await waitReport("a fail result for the denied billing-0 and a pass for orders-0", (x) => resultFor(x, "billing-0", "admission")?.result === "fail" && resultFor(x, "orders-0")?.result === "pass");
    assert.equal(resultFor(r, "forged-0"), undefined, "a forged Event made a result");
    // The record the replica wrote for the leader, in Tenet's namespace, on the leader Lease.
    const records = (await kube.get(resourcePath(Resources.events, "tenet-system"), { fieldSelector: "reason=AdmissionDenied" })).items.filter((e: any) => e.related?.name === "billing-0" && e.related?.namespace === ns);
    assert.equal(records.length, 1);
    assert.deepEqual([records[0].involvedObject.kind, records[0].involvedObject.name, records[0].action], ["Lease", `lease-${ns}`, "CREATE"]);
    assert.equal(JSON.parse(records[0].metadata.annotations["tenet.dev/runtime-rule"]).uid, rule.metadata.uid);
    const denied = resultFor(r, "billing-0", "admission");
    assert.equal(denied.source, "tenet");
    assert.equal(denied.policy, "strict");
    assert.equal(denied.category, "Admission");
    assert.equal(denied.severity, "high");
    assert.deepEqual(denied.resources, [{ apiVersion: "v1", kind: "Pod", namespace: ns, name: "billing-0" }]);
    assert.equal(denied.properties.operation, "CREATE");
    assert.match(denied.message, /ghcr\.io\/acme\/billing:1\.0/);
    assert.match(denied.message, /critical/i);
    assert.ok(Number.isInteger(denied.timestamp.seconds) && denied.timestamp.nanos === 0);

    // A rescan verdict: new scan data turns the running pod violating (and quarantined, enforce mode).
    await putVR("orders-app", "acme/orders", CRITICAL);
    r = await waitReport("a fail result for orders-0", (x) => resultFor(x, "orders-0")?.result === "fail");
    const verdict = resultFor(r, "orders-0");
    assert.deepEqual([verdict.policy, verdict.rule, verdict.category, verdict.severity], ["strict", "vulnerabilities", "Vulnerabilities", "critical"]);
    assert.equal(verdict.properties.process, "rescan");
    assert.equal(verdict.properties.critical, "1");
    assert.equal(verdict.resources[0].uid, (await kube.get(resourcePath(Resources.pods, ns, "orders-0"))).metadata.uid);
    assert.deepEqual(r.summary, { pass: 0, fail: 2, warn: 0, error: 0, skip: 0 });
    // The quarantine label lands after the posture label: wait for the report to carry it, then for quiet.
    r = await waitReport("the quarantine on orders-0", (x) => resultFor(x, "orders-0")?.properties?.quarantined === "true");

    // Nothing changes: a new leader re-reads everything (Events, pods, the stored report) and writes nothing.
    const before = r.metadata.resourceVersion;
    await first.kill();
    const second = await startOperator("second");
    await waitFor("the new leader to reconcile the namespace without writing", async () => (await second.metricSum("tenet_policyreports_reconciles_total", 'operation="unchanged"')) >= 1, 30_000, 200);
    await second.waitForLog("the leader-start rescan", (l) => l.msg === "rescan finished", 30_000);
    const after = await report();
    assert.equal(after.metadata.resourceVersion, before, "the report was rewritten although nothing changed");
    assert.equal(await second.metricSum("tenet_policyreports_reconciles_total", 'operation="apply"'), 0);
    assert.equal(resultFor(after, "billing-0", "admission")?.result, "fail", "the denial survives the change of leader");
  });

  it("reports Tenet's own open Incidents (from a real Falco event), not forged ones; acknowledging changes the result, resolving removes it, equal content is not rewritten", async () => {
    await kubectl(["apply", "--server-side", "-f", CRD]);
    await kubectl(["wait", "--for=condition=Established", "--timeout=30s", "crd/policyreports.wgpolicyk8s.io"]);
    ns = await newNamespace("polr-inc", ["orders"]);
    const falcoNs = await newNamespace("polr-falco", ["falco"]);
    await kube.create(resourcePath({ group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings" }), { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: `falco-${falcoNs}` }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "tenet-signal-sender" }, subjects: [{ kind: "ServiceAccount", name: "falco", namespace: falcoNs }] });
    const falcoToken = (await kube.create(resourcePath(Resources.serviceAccounts, falcoNs, "falco", "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["tenet"], expirationSeconds: 3600 } })).status.token as string;
    await createObject(kube, tenet("RuntimeRule", ns, "detect", {
      selector: { matchLabels: { app: "orders" } },
      detection: { signals: [{ name: "sensitive", source: "falco", rules: ["Read sensitive file*"] }], responses: [{ name: "report-sensitive", on: ["sensitive"], action: "alert" }] },
    }));
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }, "orders", "ghcr.io/acme/orders:1.0"));

    // Forged before the real one (so they are in the cache when the real one is reported):
    // status sent with a create is dropped by the API server (status is written through /status only) ...
    const forged = (name: string) => ({ apiVersion: "tenet.dev/v1alpha1", kind: "Incident", metadata: { name, namespace: ns, labels: { "tenet.dev/incident-key": "forged" } }, spec: {}, status: { rule: `${ns}/detect/sensitive`, workload: "Pod/orders-0", pods: ["orders-0"], severity: "critical", lastSeen: new Date().toISOString() } });
    const created = await kube.create(resourcePath(Resources.incidents, ns), forged("forged-create"));
    assert.equal(created.status, undefined, "the API server kept a status sent with a create");
    // ... and a status written through /status by someone else (a person's kubectl) is not Tenet's.
    await kube.create(resourcePath(Resources.incidents, ns), forged("forged-status"));
    await kube.patch(resourcePath(Resources.incidents, ns, "forged-status", "status"), "merge", { status: forged("forged-status").status }, { fieldManager: "kubectl-edit" });

    const operator = await startOperator("incidents");
    await operator.waitForHTTPS();
    const trust = await waitFor("trust bundle", async () => (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle")).catch(() => undefined))?.data?.["operator-ca.crt"]);
    const sent = await httpsRequest(`https://127.0.0.1:${operator.securePort}/v1/signals/falco`, { method: "POST", ca: trust, body: falcoFixture("sidekick-batch.json", ns, "orders-0"), headers: { "content-type": "application/json", authorization: `Bearer ${falcoToken}` } });
    assert.equal(sent.status, 202, sent.body);
    const inc = await waitFor("the Incident for the sensitive read, with its response", async () => (await kube.get(resourcePath(Resources.incidents, ns))).items.find((i: any) => i.status?.rule === `${ns}/detect/sensitive` && i.status?.response && i.metadata.name !== "forged-status"), 30_000);
    assert.ok(inc.metadata.managedFields.some((m: any) => m.manager === "tenet-signals" && m.subresource === "status"), JSON.stringify(inc.metadata.managedFields));

    const incidentIn = (x: any, name: string) => x.results?.find((r: any) => r.properties?.process === "incident" && r.properties.incident === name);
    let r = await waitReport("a fail result for the Incident", (x) => incidentIn(x, inc.metadata.name)?.result === "fail" && x.results.some((y: any) => y.resources?.[0]?.name === "orders-0" && y.properties?.process === "rescan"));
    const res = incidentIn(r, inc.metadata.name);
    assert.deepEqual([res.source, res.policy, res.rule, res.category, res.severity], ["tenet", "detect", "sensitive", "Incidents", "high"]);
    assert.deepEqual(res.resources, [{ apiVersion: "v1", kind: "Pod", namespace: ns, name: "orders-0" }]);
    assert.deepEqual([res.properties.state, res.properties.workload, res.properties.response, res.properties.outcome, res.properties.events], ["Open", "Pod/orders-0", "alert Applied", "Applied", String(inc.status.eventCount)]);
    assert.equal(res.properties.lastSeen, inc.status.lastSeen);
    assert.equal(res.timestamp.seconds, Math.floor(Date.parse(inc.status.lastSeen) / 1000));
    assert.match(res.message, new RegExp(`^Incident ${inc.metadata.name}: sensitive fired for Pod/orders-0`));
    assert.equal(incidentIn(r, "forged-create"), undefined, "an Incident created with a status made a result");
    assert.equal(incidentIn(r, "forged-status"), undefined, "a status written by another manager made a result");
    assert.equal(r.results.filter((x: any) => x.properties?.process === "incident").length, 1);

    // Acknowledged: warn.
    await kube.patch(resourcePath(Resources.incidents, ns, inc.metadata.name), "merge", { spec: { state: "Acknowledged", note: "on it" } });
    r = await waitReport("a warn result for the acknowledged Incident", (x) => incidentIn(x, inc.metadata.name)?.result === "warn");
    assert.equal(incidentIn(r, inc.metadata.name).properties.state, "Acknowledged");

    // Something that changes no result (a RuntimeRule selecting nothing) makes the leader look again, and write nothing.
    const quiet = await waitFor("the report to settle", async () => {
      const a = await report();
      await new Promise((ok) => setTimeout(ok, 1500));
      const b = await report();
      return a.metadata.resourceVersion === b.metadata.resourceVersion ? b : undefined;
    }, 30_000, 0);
    const unchanged = await operator.metricSum("tenet_policyreports_reconciles_total", 'operation="unchanged"');
    await createObject(kube, tenet("RuntimeRule", ns, "nothing", { selector: { matchLabels: { app: "none" } }, vulnerabilities: { thresholds: { critical: 0 } } }));
    await waitFor("a reconcile that finds nothing to write", async () => (await operator.metricSum("tenet_policyreports_reconciles_total", 'operation="unchanged"')) > unchanged, 30_000, 200);
    assert.equal((await report()).metadata.resourceVersion, quiet.metadata.resourceVersion, "the report was rewritten although nothing changed");

    // Resolved: the result goes; the rescan result stays.
    await kube.patch(resourcePath(Resources.incidents, ns, inc.metadata.name), "merge", { spec: { state: "Resolved" } });
    r = await waitReport("no result for the resolved Incident", (x) => !incidentIn(x, inc.metadata.name));
    assert.ok(r.results.some((y: any) => y.resources?.[0]?.name === "orders-0" && y.properties?.process === "rescan"));
    assert.equal(r.results.filter((y: any) => y.properties?.process === "incident").length, 0);
  });

  it("grants the operator its own PolicyReport only (no other report, no list, no ClusterPolicyReport) and Events of its own namespace only", async () => {
    const may = async (verb: string, resource: string, name?: string, namespace = "default", group = "wgpolicyk8s.io") => {
      const r = await kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: { user: "system:serviceaccount:tenet-system:tenet-operator", groups: ["system:serviceaccounts", "system:authenticated"], resourceAttributes: { group, resource, verb, name, namespace } },
      });
      return r.status.allowed === true;
    };
    for (const verb of ["get", "create", "patch", "delete"]) assert.ok(await may(verb, "policyreports", "tenet"), verb);
    for (const verb of ["get", "patch", "delete", "update"]) assert.ok(!(await may(verb, "policyreports", "kyverno-polr")), `${verb} another report`);
    assert.ok(!(await may("list", "policyreports")));
    assert.ok(!(await may("update", "policyreports", "tenet")));
    assert.ok(!(await may("patch", "clusterpolicyreports", "tenet", "")));
    // The denial records are read in Tenet's namespace only.
    assert.ok(await may("watch", "events", undefined, "tenet-system", ""));
    assert.ok(!(await may("list", "events", undefined, "default", "")));
  });
});
