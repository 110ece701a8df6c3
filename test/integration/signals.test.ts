// Runtime signals through the real intake of a real operator process on a real API server:
// Falco's http_output and falcosidekick formats (our fixtures, test/fixtures/falco/), sender
// authentication (TokenReview + SubjectAccessReview), enforcer reports with the pod's own token,
// attribution by pod and by container ID, unattributed signals kept visible, duplicates, 429
// under overload, hostile bodies; and a correlated incident (a Falco shell, then API denials
// from the same identity) that quarantines the pod end to end: the pod labelled, the
// NetworkPolicy written, its serials revoked, its CSR refused, the Incident readable.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { fixtureText } from "../harness/fixtures.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { httpsRequest, makeCSR } from "../harness/pki.ts";
import { createObject, eventsFor, falcoFixture, pod, podToken, storedRevocations, tenet } from "./helpers.ts";

const NP = { group: "networking.k8s.io", version: "v1", plural: "networkpolicies" };
const CRB = { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings" };
const CID = "3f9a1c2e7b44";

describe("signals: the intake, attribution, correlation and responses (real API server, operator process)", function () {
  this.timeout(240_000);
  let kube: Kube;
  let ns: string;
  let operator: OperatorProcess;
  let trust: string;
  let falcoToken: string;
  let url: (path: string) => string;
  const post = (path: string, body: string, token?: string, headers: Record<string, string> = {}) =>
    httpsRequest(url(path), { method: "POST", ca: trust, body, headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
  const getPod = (name: string) => kube.get(resourcePath(Resources.pods, ns, name));
  const incidents = async () => (await kube.get(resourcePath(Resources.incidents, ns))).items as any[];

  before(async () => {
    ({ kube } = await cluster());
    ns = await newNamespace("signals", ["orders", "frontend"]);
    // The sender: Falco's ServiceAccount, bound to tenet-signal-sender; and one that is not.
    const falcoNs = await newNamespace("falco", ["falco", "nobody"]);
    await kube.create(resourcePath(CRB), { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: `falco-${falcoNs}` }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "tenet-signal-sender" }, subjects: [{ kind: "ServiceAccount", name: "falco", namespace: falcoNs }] });
    const saToken = async (sa: string, audiences = ["tenet"]) => (await kube.create(resourcePath(Resources.serviceAccounts, falcoNs, sa, "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences, expirationSeconds: 3600 } })).status.token as string;
    falcoToken = await saToken("falco");
    (globalThis as any).__nobody = await saToken("nobody");
    (globalThis as any).__wrongAudience = await saToken("falco", ["https://kubernetes.default.svc"]);

    await createObject(kube, tenet("ServiceIdentity", ns, "orders", { selector: { matchLabels: { app: "orders" } } }));
    await createObject(kube, tenet("RuntimeRule", ns, "detect", {
      selector: { matchLabels: { app: "orders" } },
      detection: {
        signals: [
          { name: "shell", source: "falco", rules: ["Terminal shell in container"], priority: ">=warning" },
          { name: "sensitive", source: "falco", rules: ["Read sensitive file*"], tags: ["mitre_credential_access"] },
          { name: "api-denied", source: "enforcer", rules: ["APIDenied"] },
        ],
        correlations: [
          { name: "api-denials", type: "event_count", signals: ["api-denied"], timespan: "5m", condition: { gte: 5 } },
          { name: "shell-then-api-denials", type: "temporal_ordered", signals: ["shell", "api-denials"], timespan: "5m", severity: "critical" },
        ],
        responses: [
          { name: "report-sensitive", on: ["sensitive"], action: "alert" },
          { name: "isolate", on: ["shell-then-api-denials"], action: "quarantine" },
        ],
      },
    }));
    await kube.create(resourcePath(Resources.pods, ns), pod("orders-0", { app: "orders" }, "orders", "ghcr.io/acme/orders:1.0"));
    await kube.create(resourcePath(Resources.pods, ns), pod("frontend-0", { app: "frontend" }, "frontend"));
    // What a kubelet would report: the container's ID (Falco names containers by its first 12 characters).
    await kube.patch(resourcePath(Resources.pods, ns, "orders-0", "status"), "merge", { status: { containerStatuses: [{ name: "app", image: "ghcr.io/acme/orders:1.0", imageID: "", ready: true, restartCount: 0, containerID: `containerd://${CID}${"0".repeat(52)}`, state: { running: { startedAt: new Date().toISOString() } } }] } });

  });

  // The harness ends every process after each test (test/harness/hooks.ts): one operator per test.
  let run = 0;
  beforeEach(async () => {
    operator = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `signals-${ns}-${++run}`, env: { TENET_LEASE_NAME: `lease-${ns}-${run}`, TENET_SIGNAL_QUEUE_LIMIT: "2000" } });
    await operator.waitForHTTPS();
    url = (p) => `https://127.0.0.1:${operator.securePort}${p}`;
    trust = await waitFor("trust bundle", async () => (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle")).catch(() => undefined))?.data?.["operator-ca.crt"]); // the operator's HTTPS: the serving CA
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed" && operator) process.stderr.write(`operator errors:\n${operator.logs.filter((l) => l.stderr || l.raw || l.level >= 50).map((l) => JSON.stringify(l)).join("\n").slice(-3000)}\nrunning: ${operator.running}\n`);
  });


  it("refuses unauthenticated, unauthorized and hostile senders with a clear error", async () => {
    const body = falcoFixture("shell-warning-http-output.json", ns, "orders-0");
    const none = await post("/v1/signals/falco", body);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.reason, "MissingToken");
    const forged = await post("/v1/signals/falco", body, "not.a.token");
    assert.equal(forged.status, 401);
    assert.equal(forged.json.error.reason, "InvalidToken");
    const audience = await post("/v1/signals/falco", body, (globalThis as any).__wrongAudience);
    assert.equal(audience.status, 401);
    const nobody = await post("/v1/signals/falco", body, (globalThis as any).__nobody);
    assert.equal(nobody.status, 403);
    assert.equal(nobody.json.error.reason, "SenderForbidden");
    assert.match(nobody.json.error.message, /tenet-signal-sender/);

    const malformed = await post("/v1/signals/falco", '{"rule": "x"', falcoToken);
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.error.reason, "MalformedBody");
    assert.equal((await post("/v1/signals/falco", "[".repeat(100) + "]".repeat(100), falcoToken)).status, 400);
    const poisoned = await post("/v1/signals/falco", '{"rule":"x","priority":"Warning","time":"2026-03-02T09:12:44Z","output_fields":{"__proto__":{"admin":true}}}', falcoToken);
    assert.equal(poisoned.status, 400);
    const noRule = await post("/v1/signals/falco", '{"priority":"Warning","time":"2026-03-02T09:12:44Z"}', falcoToken);
    assert.equal(noRule.status, 400);
    assert.equal(noRule.json.error.reason, "MalformedEvents");
    assert.match(noRule.json.error.message, /entry 0: field "rule"/);
    const tooMany = await post("/v1/signals/falco", JSON.stringify(new Array(1001).fill({})), falcoToken);
    assert.equal(tooMany.status, 400);
    const oversized = await post("/v1/signals/falco", JSON.stringify([{ rule: "x", output: "a".repeat(1100 * 1024) }]), falcoToken);
    assert.equal(oversized.status, 413);
    const text = await post("/v1/signals/falco", body, falcoToken, { "content-type": "text/plain" });
    assert.equal(text.status, 415);

    // An enforcer speaks for its own pod only.
    const ordersToken = await podToken(kube, ns, "orders", "orders-0");
    const other = await post("/v1/signals/enforcer", JSON.stringify({ pod: { namespace: "kube-system", name: "coredns-0" }, events: [{ kind: "APIDenied", reason: "Forbidden", time: new Date().toISOString() }] }), ordersToken);
    assert.equal(other.status, 403);
    assert.equal(other.json.error.reason, "NotYourPod");
    assert.match(other.json.error.message, new RegExp(`bound to pod ${ns}/orders-0, the report names kube-system/coredns-0`));
    assert.equal((await post("/v1/signals/enforcer", JSON.stringify({ events: [] }), falcoToken)).status, 401, "a sender's token is no pod token");
    assert.equal((await post("/v1/signals/enforcer", "{}", ordersToken)).status, 400);
    assert.ok((await operator.metricSum("tenet_signals_received_total", 'outcome="unauthenticated"')) >= 3);
    assert.ok((await operator.metricSum("tenet_signals_received_total", 'outcome="forbidden"')) >= 2);
  });

  it("takes Falco http_output and falcosidekick batches: attributed by pod or container ID, duplicates once, the unattributed kept visible", async () => {
    const batch = falcoFixture("sidekick-batch.json", ns, "orders-0");
    const r = await post("/v1/signals/falco", batch, falcoToken);
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.accepted, 2);
    assert.equal((await post("/v1/signals/falco", batch, falcoToken)).status, 202);
    await waitFor("duplicates counted", async () => (await operator.metricSum("tenet_signals_processed_total", 'source="falco"', 'outcome="duplicate"')) >= 2);

    // The sensitive-file read fires the alert response: an Incident and an Event on the pod.
    const inc = await waitFor("incident for the sensitive read", async () => (await incidents()).find((i) => i.status?.rule === `${ns}/detect/sensitive`));
    assert.equal(inc.status.workload, "Pod/orders-0");
    assert.equal(inc.status.identity, `spiffe://cluster.local/ns/${ns}/sa/orders`);
    assert.equal(inc.status.severity, "high", "Error priority");
    assert.equal(inc.status.response.action, "alert");
    assert.equal(inc.status.response.outcome, "Applied");
    assert.equal(inc.spec.state, "Open");
    assert.equal(inc.status.evidence[0].source, "falco");
    assert.match(inc.status.evidence[0].time, /\.\d{9}Z$/, "to the nanosecond");
    await waitFor("RuntimeIncident event", async () => (await eventsFor(kube, ns, "orders-0")).some((e) => e.reason === "RuntimeIncident"));

    // By container ID alone (no namespace or pod fields).
    const byContainer = JSON.parse(falcoFixture("shell-null-fields.json", ns, "orders-0"));
    delete byContainer.output_fields["k8s.ns.name"];
    delete byContainer.output_fields["k8s.pod.name"];
    byContainer.output_fields["container.id"] = CID;
    byContainer.rule = "Read sensitive file untrusted";
    byContainer.tags = ["mitre_credential_access"];
    assert.equal((await post("/v1/signals/falco", JSON.stringify(byContainer), falcoToken)).status, 202);
    await waitFor("container-ID event in the incident", async () => (await incidents()).find((i) => i.status?.rule === `${ns}/detect/sensitive`)?.status?.eventCount >= 2);

    // Unattributable: a host event, an unknown pod.
    assert.equal((await post("/v1/signals/falco", fixtureText("falco/host-no-k8s.json"), falcoToken)).status, 202);
    assert.equal((await post("/v1/signals/falco", falcoFixture("shell-warning-http-output.json", ns, "ghost-0").replaceAll(CID, "aaaaaaaaaaaa"), falcoToken)).status, 202);
    const seen = await waitFor("unattributed listed", async () => {
      const u = await httpsRequest(url("/v1/signals/unattributed"), { ca: trust, headers: { authorization: `Bearer ${falcoToken}` } });
      const reasons = (u.json?.items ?? []).map((i: any) => i.reason);
      return reasons.includes("NoKubernetesFields") && reasons.includes("UnknownPod") ? u.json.items : undefined;
    });
    assert.ok(seen.some((i: any) => i.rule === "Write below binary dir" && i.hostname === "worker-3"));
    assert.equal((await httpsRequest(url("/v1/signals/unattributed"), { ca: trust })).status, 401);
    assert.ok((await operator.metricSum("tenet_signals_unattributed_total", 'reason="UnknownPod"')) >= 1);
  });

  it("answers 429 with Retry-After when the queue is full, and accounts for every event", async () => {
    const event = JSON.parse(fixtureText("falco/internal-drop.json"));
    const big = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ ...event, uuid: `flood-${randomBytes(4).toString("hex")}-${i}` })));
    const answers = await Promise.all(Array.from({ length: 12 }, () => post("/v1/signals/falco", big, falcoToken)));
    for (const a of answers) assert.ok(a.status === 202 || a.status === 429, `${a.status} ${a.body}`);
    const refused = answers.filter((a) => a.status === 429);
    for (const a of refused) {
      assert.equal(a.headers["retry-after"], "1");
      assert.equal(a.json.error.reason, "Overloaded");
    }
    const accepted = await operator.metricSum("tenet_signals_received_total", 'outcome="accepted"');
    const throttled = await operator.metricSum("tenet_signals_received_total", 'outcome="throttled"');
    assert.equal(throttled, refused.length * 1000, "every refused event is counted as throttled");
    assert.ok(accepted >= (12 - refused.length) * 1000);
    // A batch larger than the whole queue is always refused, never half taken.
    const huge = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ ...event, uuid: `h-${i}` })));
    await post("/v1/signals/falco", huge, falcoToken); // fill
    const again = await Promise.all([post("/v1/signals/falco", huge, falcoToken), post("/v1/signals/falco", huge, falcoToken), post("/v1/signals/falco", huge, falcoToken)]);
    assert.ok(again.every((a) => a.status === 202 || a.status === 429));
  });

  it("a Falco shell, then 5 API denials from the same identity: one incident across layers, the pod quarantined end to end", async () => {
    // A certificate first, through the real CSR flow: its serial must be revoked by the quarantine.
    const token = await podToken(kube, ns, "orders", "orders-0");
    const csr = async () =>
      httpsRequest(url("/v1/certificates"), { method: "POST", ca: trust, headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ csr: (await makeCSR({ uris: [`spiffe://cluster.local/ns/${ns}/sa/orders`] })).pem }) });
    const issued = await csr();
    assert.equal(issued.status, 200, issued.body);
    const serial = String(issued.json.serial).toLowerCase().replace(/^0+/, "");

    const shell = await post("/v1/signals/falco", falcoFixture("shell-warning-http-output.json", ns, "orders-0"), falcoToken);
    assert.equal(shell.status, 202);
    const t = Date.now();
    const denials = Array.from({ length: 5 }, (_, i) => ({ id: `d-${randomBytes(4).toString("hex")}-${i}`, kind: "APIDenied", reason: "Forbidden", time: new Date(t + 1000 + i).toISOString(), method: "DELETE", path: `/orders/${i}`, peer: `spiffe://cluster.local/ns/${ns}/sa/frontend` }));
    const rep = await post("/v1/signals/enforcer", JSON.stringify({ pod: { namespace: ns, name: "orders-0" }, events: denials }), token);
    assert.equal(rep.status, 202, rep.body);
    assert.equal(rep.json.accepted, 5);

    const inc = await waitFor("correlated incident", async () => (await incidents()).find((i) => i.status?.rule === `${ns}/detect/shell-then-api-denials` && i.status?.response), 30_000);
    assert.equal(inc.status.severity, "critical");
    assert.equal(inc.status.response.action, "quarantine");
    assert.equal(inc.status.response.outcome, "Applied", inc.status.response.message);
    assert.equal(inc.status.response.summary, "quarantine Applied");
    const layers = new Set(inc.status.evidence.map((e: any) => e.layer));
    assert.ok(layers.has("runtime") && layers.has("api"), `evidence across layers: ${[...layers]}`);
    const times = inc.status.evidence.map((e: any) => e.time);
    assert.deepEqual(times, [...times].sort(), "time-ordered");
    assert.equal(inc.status.evidence[0].rule, "Terminal shell in container");

    // The posture quarantine, as for a rescan: label, NetworkPolicy, revocation, CSR refusal.
    await waitFor("quarantine label", async () => (await getPod("orders-0")).metadata.labels?.["tenet.dev/quarantined"] === "true", 30_000, 200);
    const p = await getPod("orders-0");
    assert.equal(p.metadata.labels["tenet.dev/posture"], "violating");
    assert.equal(JSON.parse(p.metadata.annotations["tenet.dev/posture-detail"]).reason, "RuntimeSignal");
    assert.deepEqual(JSON.parse(p.metadata.annotations["tenet.dev/quarantined-by"]), [`incident:${ns}/${inc.metadata.name}`]);
    const np = await kube.get(resourcePath(NP, ns, "tenet-quarantine"));
    assert.deepEqual(np.spec.podSelector, { matchLabels: { "tenet.dev/quarantined": "true" } });
    await waitFor("serial revoked", async () => (await storedRevocations(kube)).get(serial)?.reason === "Quarantined");
    const refused = await csr();
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.reason, "Quarantined");
    await waitFor("Quarantined event", async () => (await eventsFor(kube, ns, "orders-0")).some((e) => e.reason === "Quarantined"));

    // More evidence within the cooldown: recorded, not acted on again.
    await post("/v1/signals/falco", falcoFixture("shell-warning-http-output.json", ns, "orders-0"), falcoToken);
    await post("/v1/signals/enforcer", JSON.stringify({ events: denials.map((d) => ({ ...d, id: `${d.id}-2`, time: new Date().toISOString() })) }), token);
    await waitFor("cooldown recorded", async () => (await incidents()).find((i) => i.metadata.name === inc.metadata.name)?.status?.response?.outcome === "Cooldown");

    // The person resolves it in spec; Tenet never writes spec.
    await kube.patch(resourcePath(Resources.incidents, ns, inc.metadata.name), "merge", { spec: { state: "Resolved", note: "INC-42: debug shell by on-call" } });
    const after = await kube.get(resourcePath(Resources.incidents, ns, inc.metadata.name));
    // Tenet creates the object with an empty spec (its create owns f:spec); the state and note people set are theirs.
    const specWriters = after.metadata.managedFields.filter((m: any) => m.fieldsV1?.["f:spec"]?.["f:state"] || m.fieldsV1?.["f:spec"]?.["f:note"]).map((m: any) => m.manager);
    assert.ok(specWriters.length > 0 && !specWriters.some((m: string) => m.startsWith("tenet")), `spec written by ${specWriters}: ${JSON.stringify(after.metadata.managedFields)}`);
    const reopen = await kube.patch(resourcePath(Resources.incidents, ns, inc.metadata.name), "merge", { spec: { state: "Open" } }).catch((e) => e);
    assert.match(String(reopen.message), /a Resolved incident stays resolved/);
    // Resolving releases nothing: the quarantine stays until an explicit release.
    assert.equal((await getPod("orders-0")).metadata.labels["tenet.dev/quarantined"], "true");
    await kube.patch(resourcePath(Resources.pods, ns, "orders-0"), "merge", { metadata: { annotations: { "tenet.dev/release": "INC-42 closed" } } });
    await waitFor("released", async () => (await getPod("orders-0")).metadata.labels?.["tenet.dev/quarantined"] === undefined, 30_000, 200);
    assert.equal((await getPod("orders-0")).metadata.annotations?.["tenet.dev/signal-response"], undefined, "the release ends the signal response");
  });

  it("never quarantines more than the set share of a workload's ready pods: at the limit it labels and says Held", async () => {
    const rs = { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-5d9c", uid: "0b8a7c6d-1111-4222-8333-944455556666", controller: true };
    await createObject(kube, tenet("RuntimeRule", ns, "web", {
      selector: { matchLabels: { app: "web" } },
      detection: { signals: [{ name: "shell", source: "falco", rules: ["Terminal shell in container"] }], responses: [{ name: "isolate", on: ["shell"], action: "quarantine", cooldown: "0s", maxQuarantinedPercent: 50 }] },
    }));
    for (const name of ["web-5d9c-a", "web-5d9c-b"]) {
      const p: any = pod(name, { app: "web", "pod-template-hash": "5d9c" });
      p.metadata.ownerReferences = [rs];
      await kube.create(resourcePath(Resources.pods, ns), p);
      await kube.patch(resourcePath(Resources.pods, ns, name, "status"), "merge", { status: { conditions: [{ type: "Ready", status: "True" }] } });
    }
    // Both pods are in the operator's cache once the RuntimeRule counts them.
    await waitFor("RuntimeRule web counts both pods", async () => (await kube.get(resourcePath(Resources.runtimeRules, ns, "web"))).status?.matchedPods === 2);
    for (const name of ["web-5d9c-a", "web-5d9c-b"]) {
      assert.equal((await post("/v1/signals/falco", falcoFixture("shell-warning-http-output.json", ns, name).replaceAll(CID, name === "web-5d9c-a" ? "aaaaaaaaaaa1" : "aaaaaaaaaaa2"), falcoToken)).status, 202);
      await waitFor(`${name} handled`, async () => (await getPod(name)).metadata.annotations?.["tenet.dev/signal-response"]);
    }
    const a = JSON.parse((await getPod("web-5d9c-a")).metadata.annotations["tenet.dev/signal-response"]);
    const b = JSON.parse((await getPod("web-5d9c-b")).metadata.annotations["tenet.dev/signal-response"]);
    assert.equal(a.action, "quarantine");
    assert.equal(b.action, "label", "the second of two ready replicas is labelled, not quarantined");
    await waitFor("b violating, not quarantined", async () => {
      const p = await getPod("web-5d9c-b");
      return p.metadata.labels?.["tenet.dev/posture"] === "violating" && p.metadata.labels?.["tenet.dev/quarantined"] === undefined;
    });
    const held = await waitFor("Held incident", async () => (await incidents()).find((i) => i.status?.rule === `${ns}/web/shell` && i.status?.pods?.includes("web-5d9c-b") && i.status?.response?.outcome === "Held"));
    assert.match(held.status.response.message, /Deployment\/web: 1 of 2 ready pods already quarantined, at most 50% \(1\) may be/);
  });
});
