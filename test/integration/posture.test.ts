import { strict as assert } from "node:assert";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig, removeWebhookConfigurations } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { httpsRequest, makeCSR } from "../harness/pki.ts";
import { createObject, eventsFor, getObject, patchSpec, pod, storedRevocations, tenet, vulnerabilityReport } from "./helpers.ts";

const VR = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };
const NP = { group: "networking.k8s.io", version: "v1", plural: "networkpolicies" };

const CRITICAL = [{ id: "CVE-2024-3094", severity: "CRITICAL" }];

async function podToken(kube: Kube, ns: string, sa: string, podName: string) {
  const p = await kube.get(resourcePath(Resources.pods, ns, podName));
  const tr = await kube.create(resourcePath(Resources.serviceAccounts, ns, sa, "token"), {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { audiences: ["tenet"], expirationSeconds: 600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: podName, uid: p.metadata.uid } },
  });
  return tr.status.token as string;
}

/** Runs `fn` over items with at most `n` in flight. */
async function parallel<T>(items: T[], n: number, fn: (item: T) => Promise<unknown>) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

describe("posture: rescans, labels, quarantine, revocation and release (real API server, operator process)", function () {
  this.timeout(300_000);
  let kube: Kube;
  let ns: string;

  const getPod = (name: string) => kube.get(resourcePath(Resources.pods, ns, name));
  const labelOf = async (name: string, label: string) => (await getPod(name)).metadata.labels?.[label];
  const putReport = async (name: string, repository: string, tag: string, vulns: { id: string; severity: string }[]) => {
    const path = resourcePath(VR, ns, name);
    const existing = await kube.get(path).catch(() => undefined);
    if (existing) await kube.replace(path, { ...vulnerabilityReport(name, repository, tag, vulns), metadata: { ...existing.metadata } });
    else await kube.create(resourcePath(VR, ns), vulnerabilityReport(name, repository, tag, vulns));
  };
  async function startOperator(name: string, env: Record<string, string> = {}) {
    const p = await OperatorProcess.start({
      kubeconfig: await operatorKubeconfig(),
      namespace: "tenet-system",
      identity: `${name}-${ns}`,
      env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LEASE_DURATION_MS: "4000", TENET_RENEW_DEADLINE_MS: "3000", TENET_RETRY_PERIOD_MS: "500", ...env },
    });
    await p.waitForHTTPS();
    return p;
  }
  const postureOf = (name: string) => labelOf(name, "tenet.dev/posture");
  const waitPosture = (name: string, want: string, timeoutMs = 30_000) =>
    waitFor(`pod ${name} posture ${want}`, async () => (await postureOf(name)) === want, timeoutMs, 200);

  beforeEach(async () => {
    ({ kube } = await cluster());
    ns = await newNamespace("posture", ["orders"]);
  });

  it("quarantines a running pod when its report turns violating: label, NetworkPolicy, revoked certificate, CSR refusal, Events, status; releases it when clean again", async () => {
    const operator = await startOperator("q");
    await createObject(kube, tenet("ServiceIdentity", ns, "orders", { selector: { matchLabels: { app: "orders" } } }));
    await createObject(kube, tenet("RuntimeRule", ns, "strict", { selector: { matchLabels: { app: "orders" } }, vulnerabilities: { thresholds: { critical: 0 } } }));
    await putReport("orders-app", "acme/orders", "1.0", []);
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }, "orders", "ghcr.io/acme/orders:1.0"));
    await kube.create(resourcePath(Resources.pods, ns), pod("other-0", { app: "other" }, "default", "ghcr.io/acme/orders:1.0"));
    await waitPosture("orders-0", "clean");
    const detail = JSON.parse((await getPod("orders-0")).metadata.annotations["tenet.dev/posture-detail"]);
    assert.equal(detail.rule, `${ns}/strict`);

    // A certificate through the real CSR flow; its serial is recorded on the pod.
    await operator.waitForLog("webhooks applied", (l) => l.msg === "webhook configurations applied");
    const trust = (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data["operator-ca.crt"]; // the operator's HTTPS
    const token = await podToken(kube, ns, "orders", "orders-0");
    const post = async () =>
      httpsRequest(`https://127.0.0.1:${operator.securePort}/v1/certificates`, {
        method: "POST",
        ca: trust,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ csr: (await makeCSR({ uris: [`spiffe://cluster.local/ns/${ns}/sa/orders`] })).pem }),
      });
    const issued = await post();
    assert.equal(issued.status, 200, issued.body);
    const serial = String(issued.json.serial).toLowerCase();
    const recorded = JSON.parse((await getPod("orders-0")).metadata.annotations["tenet.dev/certificates"]);
    assert.ok(recorded[serial], `serial ${serial} recorded on the pod: ${JSON.stringify(recorded)}`);

    // The report changes: the pod is violating and quarantined.
    await putReport("orders-app", "acme/orders", "1.0", CRITICAL);
    await waitFor("quarantine label", async () => (await labelOf("orders-0", "tenet.dev/quarantined")) === "true", 30_000, 200);
    assert.equal(await postureOf("orders-0"), "violating");
    const d2 = JSON.parse((await getPod("orders-0")).metadata.annotations["tenet.dev/posture-detail"]);
    assert.equal(d2.reason, "OverThreshold");
    assert.deepEqual(d2.counts, { critical: 1 });
    assert.equal(await labelOf("other-0", "tenet.dev/posture"), undefined, "a pod no RuntimeRule selects carries no posture");

    const np = await kube.get(resourcePath(NP, ns, "tenet-quarantine"));
    assert.deepEqual(np.spec.podSelector, { matchLabels: { "tenet.dev/quarantined": "true" } });
    assert.deepEqual(np.spec.policyTypes, ["Ingress", "Egress"]);
    assert.equal(np.metadata.labels["app.kubernetes.io/managed-by"], "tenet");
    assert.equal(np.spec.ingress, undefined, "deny-all ingress");
    assert.equal(np.spec.egress, undefined, "deny-all egress");

    const normalized = serial.toLowerCase().replace(/^0+/, "");
    await waitFor("serial on the revocation list", async () => (await storedRevocations(kube)).get(normalized)?.reason === "Quarantined");
    const served = await httpsRequest(`https://127.0.0.1:${operator.securePort}/v1/revocations`, { ca: trust, headers: { authorization: `Bearer ${token}` } }); // a quarantined pod's enforcer still gets the list
    assert.ok(served.json.serials.includes(normalized), "served to enforcers");
    assert.ok(!served.body.includes("orders-0"), "without pod names");

    const refused = await waitFor("CSR refusal", async () => {
      const r = await post();
      return r.status === 403 ? r : undefined;
    });
    assert.equal(refused.json.error.reason, "Quarantined");
    assert.match(refused.json.error.message, new RegExp(`pod ${ns}/orders-0 is quarantined.*tenet.dev/release`));

    await waitFor("Quarantined event naming the rule", async () => (await eventsFor(kube, ns, "orders-0")).some((e) => e.reason === "Quarantined" && e.type === "Warning" && e.message.includes(`RuntimeRule ${ns}/strict`)));
    const rule = await waitFor("RuntimeRule status counts", async () => {
      const r = await getObject(kube, "RuntimeRule", ns, "strict");
      return r.status?.quarantinedPods === 1 && r.status?.violatingPods === 1 ? r : undefined;
    });
    assert.equal(rule.status.matchedPods, 1, "the RuntimeRule controller's fields are left alone");

    // Clean again: released automatically (autoRelease defaults to true).
    await putReport("orders-app", "acme/orders", "1.0", []);
    await waitPosture("orders-0", "clean");
    await waitFor("quarantine label removed", async () => (await labelOf("orders-0", "tenet.dev/quarantined")) === undefined);
    await waitFor("Released event", async () => (await eventsFor(kube, ns, "orders-0")).some((e) => e.reason === "Released" && /automatically/.test(e.message)));
    await waitFor("RuntimeRule status back to 0", async () => (await getObject(kube, "RuntimeRule", ns, "strict")).status?.quarantinedPods === 0);
    assert.equal((await post()).status, 200, "a released pod gets certificates again");
    assert.ok((await operator.metricSum("tenet_posture_quarantines_total")) >= 1);
    assert.ok((await operator.metricSum("tenet_posture_releases_total", 'how="automatic"')) >= 1);
  });

  it("in audit mode labels and reports a violating pod but does not quarantine it", async () => {
    await startOperator("audit");
    await createObject(kube, tenet("RuntimeRule", ns, "watch", { selector: {}, enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } }));
    await putReport("app", "acme/audit", "1.0", []);
    await kube.create(resourcePath(Resources.pods, ns), pod("a-0", { app: "a" }, "default", "ghcr.io/acme/audit:1.0"));
    await waitPosture("a-0", "clean");
    await putReport("app", "acme/audit", "1.0", CRITICAL);
    await waitPosture("a-0", "violating");
    await waitFor("PostureViolating event", async () => (await eventsFor(kube, ns, "a-0")).some((e) => e.reason === "PostureViolating" && /audit mode/.test(e.message)));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await labelOf("a-0", "tenet.dev/quarantined"), undefined);
    await assert.rejects(kube.get(resourcePath(NP, ns, "tenet-quarantine")), /not found/i, "no NetworkPolicy in audit mode");
    const r = await waitFor("status", async () => {
      const o = await getObject(kube, "RuntimeRule", ns, "watch");
      return o.status?.violatingPods === 1 ? o : undefined;
    });
    assert.equal(r.status.quarantinedPods, 0);
  });

  it("with autoRelease: false keeps a clean pod quarantined until a person releases it with tenet.dev/release; an accepted violation is not quarantined again", async () => {
    await startOperator("rel");
    await createObject(kube, tenet("RuntimeRule", ns, "manual", { selector: {}, vulnerabilities: { thresholds: { critical: 0 } }, quarantine: { autoRelease: false } }));
    await putReport("app", "acme/manual", "1.0", []);
    await kube.create(resourcePath(Resources.pods, ns), pod("m-0", { app: "m" }, "default", "ghcr.io/acme/manual:1.0"));
    await kube.create(resourcePath(Resources.pods, ns), pod("m-1", { app: "m" }, "default", "ghcr.io/acme/manual:1.0"));
    await waitPosture("m-0", "clean");
    await putReport("app", "acme/manual", "1.0", CRITICAL);
    for (const p of ["m-0", "m-1"]) await waitFor(`${p} quarantined`, async () => (await labelOf(p, "tenet.dev/quarantined")) === "true", 30_000, 200);

    // m-1: released by a person while still violating; it stays released.
    await kube.patch(resourcePath(Resources.pods, ns, "m-1"), "merge", { metadata: { annotations: { "tenet.dev/release": "INC-42 accepted by security" } } });
    await waitFor("m-1 released", async () => {
      const p = await getPod("m-1");
      return p.metadata.labels["tenet.dev/quarantined"] === undefined && p.metadata.annotations["tenet.dev/release"] === undefined;
    });
    assert.equal(await postureOf("m-1"), "violating");
    await waitFor("Released event naming the reason", async () => (await eventsFor(kube, ns, "m-1")).some((e) => e.reason === "Released" && /INC-42/.test(e.message)));

    // m-0: clean again, but autoRelease is false.
    await putReport("app", "acme/manual", "1.0", []);
    await waitPosture("m-0", "clean");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await labelOf("m-0", "tenet.dev/quarantined"), "true", "no automatic release");
    await kube.patch(resourcePath(Resources.pods, ns, "m-0"), "merge", { metadata: { annotations: { "tenet.dev/release": "fixed" } } });
    await waitFor("m-0 released", async () => {
      const p = await getPod("m-0");
      return p.metadata.labels["tenet.dev/quarantined"] === undefined && p.metadata.annotations["tenet.dev/release"] === undefined;
    });
    assert.equal(await labelOf("m-1", "tenet.dev/quarantined"), undefined, "the accepted violation did not quarantine m-1 again");
  });

  it("quarantines a pod at the instant its CVE exemption expires", async () => {
    await startOperator("exp");
    const expires = new Date(Date.now() + 10_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await createObject(kube, tenet("RuntimeRule", ns, "exempt", {
      selector: {},
      vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-3094", expires, reason: "RISK-7: not reachable" }] },
    }));
    await putReport("app", "acme/exempt", "1.0", CRITICAL);
    await kube.create(resourcePath(Resources.pods, ns), pod("e-0", { app: "e" }, "default", "ghcr.io/acme/exempt:1.0"));
    await waitPosture("e-0", "warn");
    assert.equal(await labelOf("e-0", "tenet.dev/quarantined"), undefined);
    await waitFor("quarantine at expiry", async () => (await labelOf("e-0", "tenet.dev/quarantined")) === "true", 30_000, 200);
    assert.ok(Date.now() >= Date.parse(expires), "not before the exemption expired");
    assert.equal(await postureOf("e-0"), "violating");
  });

  it("treats an opted-in pod without the enforcer as violating (fail-open injection)", async () => {
    await createObject(kube, tenet("RuntimeRule", ns, "any", { selector: {} }));
    // Created while Tenet is down (no operator, no webhook configuration): the opt-in annotation, no enforcer.
    await removeWebhookConfigurations();
    const p = pod("bypass-0", { app: "b" });
    (p.metadata as any).annotations = { "tenet.dev/inject": "true" };
    const created = await kube.create(resourcePath(Resources.pods, ns), p);
    assert.equal(created.spec.initContainers, undefined, "no webhook injected it");
    await startOperator("inj");
    await waitPosture("bypass-0", "violating");
    const d = JSON.parse((await getPod("bypass-0")).metadata.annotations["tenet.dev/posture-detail"]);
    assert.equal(d.reason, "EnforcerMissing");
    assert.match(d.message, /tenet-enforcer/);
    await waitFor("quarantined (enforce rule selects it)", async () => (await labelOf("bypass-0", "tenet.dev/quarantined")) === "true");
  });

  it("finishes a rescan after SIGKILL with the same end state, and a rescan over 1,000 pods writes exactly the pods whose posture changed", async () => {
    const N = Number(process.env.POSTURE_TEST_PODS ?? 1000);
    const BAD = 200;
    await createObject(kube, tenet("RuntimeRule", ns, "fleet", { selector: {}, vulnerabilities: { thresholds: { critical: 0 } } }));
    await putReport("good", "acme/good", "1.0", []);
    await putReport("bad", "acme/bad", "1.0", CRITICAL);
    const names = Array.from({ length: N }, (_, i) => `p-${i}`);
    const t0 = Date.now();
    await parallel(names, 16, (name) => {
      const i = Number(name.slice(2));
      return kube.create(resourcePath(Resources.pods, ns), pod(name, { app: "fleet" }, "default", i < BAD ? "ghcr.io/acme/bad:1.0" : "ghcr.io/acme/good:1.0"));
    });
    process.stderr.write(`      [posture] ${N} pods created in ${Date.now() - t0} ms\n`);

    // First leader dies mid-rescan.
    const first = await startOperator("kill", { TENET_RESCAN_PROGRESS_EVERY: "100" });
    await first.waitForLog("rescan progress", (l) => l.msg === "rescan progress" || l.msg === "rescan finished", 120_000);
    await first.kill("SIGKILL");
    const labelled = async () => {
      const list = await kube.list(resourcePath(Resources.pods, ns));
      return list.items;
    };
    const partial = (await labelled()).filter((p) => p.metadata.labels?.["tenet.dev/posture"]).length;
    process.stderr.write(`      [posture] ${partial}/${N} pods labelled when the first leader was killed\n`);

    const second = await startOperator("next");
    await second.waitForLog("rescan finished", (l) => l.msg === "rescan finished", 180_000);
    const after = await labelled();
    const by = (f: (p: any) => boolean) => after.filter(f).length;
    assert.equal(by((p) => p.metadata.labels["tenet.dev/posture"] === "clean"), N - BAD);
    assert.equal(by((p) => p.metadata.labels["tenet.dev/posture"] === "violating" && p.metadata.labels["tenet.dev/quarantined"] === "true"), BAD);
    await kube.get(resourcePath(NP, ns, "tenet-quarantine"));
    await waitFor("status counts", async () => (await getObject(kube, "RuntimeRule", ns, "fleet")).status?.quarantinedPods === BAD, 60_000);
    await second.kill("SIGTERM");

    // While no operator runs, half of the bad pods' image is fixed (a new report for tag 1.0 of acme/bad).
    const before = new Map(after.map((p) => [p.metadata.name, p.metadata.resourceVersion]));
    // Every write the third leader makes to these pods, counted from a watch: each changed pod at most once.
    const listed = await kube.list(resourcePath(Resources.pods, ns));
    const modified = new Map<string, number>();
    const stopWatch = new AbortController();
    const watching = kube
      .watch(resourcePath(Resources.pods, ns), { resourceVersion: listed.metadata.resourceVersion, timeoutSeconds: 600 }, (e) => {
        if (e.type === "MODIFIED") modified.set(e.object.metadata.name, (modified.get(e.object.metadata.name) ?? 0) + 1);
      }, stopWatch.signal)
      .catch((err) => (stopWatch.signal.aborted ? undefined : Promise.reject(err)));
    await putReport("bad", "acme/bad", "1.0", []);
    const third = await startOperator("count");
    const done = await third.waitForLog("rescan finished", (l) => l.msg === "rescan finished", 180_000);
    assert.ok(done.pods >= N, "the rescan covers every pod (other tests' pods included)");
    const failures = third.logs.filter((l) => /failed|conflict/.test(l.msg ?? "")).slice(0, 5);
    // The cluster is shared with other tests' pods, so the rescan's totals are lower bounds; the
    // exact count of writes is taken from this namespace's resourceVersions below.
    assert.ok(done.changed >= BAD, `changed pods in the rescan: ${JSON.stringify(done)} ${JSON.stringify(failures)}`);
    assert.ok(done.released >= BAD);
    const final = await labelled();
    const written = final.filter((p) => before.get(p.metadata.name) !== p.metadata.resourceVersion).map((p) => p.metadata.name);
    assert.equal(written.length, BAD, "exactly the pods whose posture changed were written");
    assert.ok(written.every((n) => Number(n.slice(2)) < BAD));
    // The watch saw the same pods, each modified exactly once (one apply per changed pod).
    await waitFor("the watch to see every write", () => modified.size >= BAD, 10_000);
    stopWatch.abort();
    await watching;
    assert.deepEqual([...modified.keys()].sort(), [...written].sort());
    assert.deepEqual([...new Set(modified.values())], [1], `writes per pod: ${JSON.stringify([...modified].filter(([, n]) => n !== 1).slice(0, 5))}`);
    assert.ok((await third.metricSum("tenet_posture_pod_writes_total", 'operation="apply"')) >= BAD);
    assert.ok(final.every((p) => p.metadata.labels["tenet.dev/posture"] === "clean" && !p.metadata.labels["tenet.dev/quarantined"]));
  });
});
