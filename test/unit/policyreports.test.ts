// PolicyReport building (operator/reports): results from posture, admission denials and Incidents,
// bounds, stable order and timestamps, equality, the denial store fed by Tenet's Events, and which
// Incidents count (status written by Tenet alone, an existing rule).
import { strict as assert } from "node:assert";
import { DenialStore, denialFromEvent, toDenialEvent } from "../../operator/reports/admission.ts";
import { admissionFromReport, buildReport, MAX_ADMISSION_RESULTS, MAX_INCIDENT_RESULTS, MAX_RESULT_MESSAGE, MAX_RESULTS, postureResult, sameReport, type AdmissionDenial } from "../../operator/reports/build.ts";
import type { CachedPod } from "../../operator/cache/pods.ts";
import { INCIDENT_CATEGORY, incidentResult, MAX_INCIDENT_PODS } from "../../operator/reports/incidents.ts";
import { statusWrittenByTenet, toCachedIncident } from "../../operator/signals/incidents.ts";

const NS = "shop";
const NOW = new Date("2025-06-01T12:00:00Z");

function pod(name: string, posture: string | undefined, detail: object | string | undefined, opts: { byTenet?: boolean; quarantined?: boolean; phase?: string } = {}): CachedPod {
  const labels: Record<string, string> = { app: name };
  if (posture) labels["tenet.dev/posture"] = posture;
  if (opts.quarantined) labels["tenet.dev/quarantined"] = "true";
  return {
    metadata: { name, namespace: NS, uid: `uid-${name}`, resourceVersion: "1", labels, annotations: detail === undefined ? undefined : { "tenet.dev/posture-detail": typeof detail === "string" ? detail : JSON.stringify(detail) } },
    spec: { serviceAccountName: "default", containers: [{ name: "app", image: "ghcr.io/acme/app:1" }] },
    status: { phase: opts.phase ?? "Running" },
    security: {},
    ...(opts.byTenet === false ? {} : { postureByTenet: true }),
  };
}

const violating = (name: string) =>
  pod(name, "violating", { rule: `${NS}/strict`, reason: "OverThreshold", enforcement: "enforce", counts: { critical: 2, high: 1 }, rules: [`${NS}/strict`], message: "ghcr.io/acme/app:1 has 2 critical" }, { quarantined: true });
const clean = (name: string) => pod(name, "clean", { rule: `${NS}/strict`, reason: "WithinThresholds", message: "within thresholds" });

function denial(i: number, at = NOW.getTime() - i * 1000): AdmissionDenial {
  return { policy: "strict", resource: { apiVersion: "apps/v1", kind: "Deployment", namespace: NS, name: `billing-${i}` }, message: `2 critical vulnerabilities (${i})`, operation: "CREATE", count: 1, at };
}

describe("PolicyReports: building (operator/reports/build.ts)", () => {
  it("turns Tenet's posture on a pod into a result: fail with severity, counts and the pod as resource", () => {
    const r = postureResult(violating("orders-0"))!;
    assert.equal(r.source, "tenet");
    assert.equal(r.policy, "strict");
    assert.equal(r.rule, "vulnerabilities");
    assert.equal(r.category, "Vulnerabilities");
    assert.equal(r.result, "fail");
    assert.equal(r.severity, "critical");
    assert.equal(r.scored, true);
    assert.deepEqual(r.resources, [{ apiVersion: "v1", kind: "Pod", namespace: NS, name: "orders-0", uid: "uid-orders-0" }]);
    assert.deepEqual(r.properties, { process: "rescan", posture: "violating", reason: "OverThreshold", enforcement: "enforce", quarantined: "true", critical: "2", high: "1" });
    assert.equal(r.message, "ghcr.io/acme/app:1 has 2 critical");
  });

  it("maps each posture to a result value: clean pass (no severity), warn warn, unscanned skip; pod security and a missing enforcer are high", () => {
    assert.deepEqual([postureResult(clean("a"))!.result, postureResult(clean("a"))!.severity], ["pass", undefined]);
    assert.equal(postureResult(pod("b", "warn", { rule: `${NS}/r`, reason: "Exempted", message: "exempted" }))!.result, "warn");
    assert.equal(postureResult(pod("c", "unscanned", { rule: `${NS}/r`, reason: "Unscanned", message: "no scan" }))!.result, "skip");
    const ps = postureResult(pod("d", "violating", { rule: `${NS}/r`, reason: "PodSecurity", message: "privileged" }))!;
    assert.deepEqual([ps.rule, ps.category, ps.severity], ["podSecurity", "Pod Security", "high"]);
    const em = postureResult(pod("e", "violating", { reason: "EnforcerMissing", message: "no enforcer" }))!;
    assert.deepEqual([em.policy, em.rule, em.severity], ["tenet-enforcer", "enforcer", "high"]);
  });

  it("takes no result from a posture Tenet did not write, a broken detail, or a finished or terminating pod", () => {
    assert.equal(postureResult(pod("a", "clean", { reason: "WithinThresholds", message: "" }, { byTenet: false })), undefined);
    assert.equal(postureResult(pod("b", "clean", "{not json")), undefined);
    assert.equal(postureResult(pod("c", "clean", undefined)), undefined);
    assert.equal(postureResult(pod("d", "bogus", { reason: "WithinThresholds", message: "" })), undefined);
    assert.equal(postureResult(pod("e", "clean", { reason: "WithinThresholds", message: "" }, { phase: "Succeeded" })), undefined);
    const gone = clean("f");
    gone.metadata.deletionTimestamp = NOW.toISOString();
    assert.equal(postureResult(gone), undefined);
  });

  it("counts the summary from the results and orders results the same whatever the input order", () => {
    const rescan = [clean("a"), violating("b"), clean("c")].map((p) => postureResult(p)!);
    const one = buildReport({ namespace: NS, rescan, admission: [denial(1), denial(2)], now: NOW });
    const two = buildReport({ namespace: NS, rescan: [...rescan].reverse(), admission: [denial(2), denial(1)], now: NOW });
    assert.deepEqual(one, two);
    assert.deepEqual(one.summary, { pass: 2, fail: 3, warn: 0, error: 0, skip: 0 });
    assert.deepEqual(one.results.map((r) => r.result), ["fail", "fail", "fail", "pass", "pass"]);
    assert.deepEqual(one.metadata, { name: "tenet", namespace: NS, labels: { "app.kubernetes.io/managed-by": "tenet", "app.kubernetes.io/part-of": "tenet" } });
    const adm = one.results.find((r) => r.rule === "admission")!;
    assert.deepEqual(adm.timestamp, { seconds: Math.floor((NOW.getTime() - 1000) / 1000), nanos: 0 });
    assert.deepEqual(adm.properties, { process: "admission", count: "1", operation: "CREATE" });
  });

  it("keeps an unchanged result's timestamp and gives a changed one the current time", () => {
    const first = buildReport({ namespace: NS, rescan: [postureResult(clean("a"))!, postureResult(clean("b"))!], admission: [], now: NOW });
    const stored = JSON.parse(JSON.stringify(first.results));
    const later = new Date(NOW.getTime() + 3600_000);
    const second = buildReport({ namespace: NS, rescan: [postureResult(clean("a"))!, postureResult(violating("b"))!], admission: [], previous: stored, now: later });
    const ts = (name: string) => second.results.find((r) => r.resources![0].name === name)!.timestamp.seconds;
    assert.equal(ts("a"), NOW.getTime() / 1000);
    assert.equal(ts("b"), later.getTime() / 1000);
  });

  it("is bounded: at most MAX_ADMISSION_RESULTS denials (newest kept) and MAX_RESULTS results (failures before passes), the rest counted", () => {
    const rescan = [...Array.from({ length: 450 }, (_, i) => postureResult(clean(`ok-${i}`))!), ...Array.from({ length: 20 }, (_, i) => postureResult(violating(`bad-${i}`))!)];
    const admission = Array.from({ length: MAX_ADMISSION_RESULTS + 30 }, (_, i) => denial(i));
    const r = buildReport({ namespace: NS, rescan, admission, droppedAdmission: 5, now: NOW });
    assert.equal(r.results.length, MAX_RESULTS);
    const adm = r.results.filter((x) => x.rule === "admission");
    assert.equal(adm.length, MAX_ADMISSION_RESULTS);
    assert.ok(!adm.some((x) => x.resources![0].name === `billing-${MAX_ADMISSION_RESULTS}`), "the oldest denials are dropped");
    assert.ok(adm.some((x) => x.resources![0].name === "billing-0"), "the newest denial is kept");
    assert.equal(r.results.filter((x) => x.resources![0].name.startsWith("bad-")).length, 20, "every failing rescan result is kept");
    assert.deepEqual(JSON.parse(r.metadata.annotations!["tenet.dev/omitted-results"]), { admission: 35, rescan: 450 + 20 + MAX_ADMISSION_RESULTS - MAX_RESULTS });
    assert.equal(r.summary.pass + r.summary.fail, MAX_RESULTS);
    assert.ok(Buffer.byteLength(JSON.stringify(r)) < 1024 * 1024, "well below etcd's object size limit");
  });

  it("cuts long messages", () => {
    const d = { ...denial(1), message: "x".repeat(10_000) };
    const r = buildReport({ namespace: NS, rescan: [], admission: [d], now: NOW });
    assert.equal(r.results[0].message!.length, MAX_RESULT_MESSAGE);
  });

  it("compares a stored report with the desired one: equal after the API server's round trip, different when a result or the omitted count changes", () => {
    const desired = buildReport({ namespace: NS, rescan: [postureResult(violating("b"))!], admission: [denial(1)], now: NOW });
    const stored = { ...JSON.parse(JSON.stringify(desired)), metadata: { ...desired.metadata, resourceVersion: "42", uid: "u", labels: { ...desired.metadata.labels, extra: "x" } } };
    assert.ok(sameReport(stored, desired));
    assert.ok(!sameReport(undefined, desired));
    const changed = buildReport({ namespace: NS, rescan: [postureResult(clean("b"))!], admission: [denial(1)], now: NOW });
    assert.ok(!sameReport(stored, changed));
    assert.ok(!sameReport({ ...stored, metadata: { ...stored.metadata, annotations: { "tenet.dev/omitted-results": '{"admission":1}' } } }, desired));
    assert.ok(!sameReport({ ...stored, metadata: { ...stored.metadata, labels: {} } }, desired));
  });

  it("reads the admission denials and the dropped count back from a stored report (a new leader starts from them)", () => {
    const desired = buildReport({ namespace: NS, rescan: [postureResult(clean("a"))!], admission: [denial(1), denial(2)], droppedAdmission: 7, now: NOW });
    const { denials, dropped } = admissionFromReport(JSON.parse(JSON.stringify(desired)));
    assert.equal(dropped, 7);
    assert.deepEqual(denials.map((d) => d.resource.name).sort(), ["billing-1", "billing-2"]);
    assert.deepEqual(denials.find((d) => d.resource.name === "billing-1"), { ...denial(1), at: Math.floor(denial(1).at / 1000) * 1000 });
    assert.deepEqual(admissionFromReport({ results: "nonsense", metadata: { annotations: { "tenet.dev/omitted-results": "{bad" } } }), { denials: [], dropped: 0 });
  });
});

describe("PolicyReports: admission denials from Tenet's Events (operator/reports/admission.ts)", () => {
  const RULE_UID = "rule-uid";
  const TENET_NS = "tenet-system";
  const ruleUid = (ns: string, name: string) => (ns === NS && name === "strict" ? RULE_UID : undefined);
  const ruleAnnotation = (rule: object) => ({ "tenet.dev/runtime-rule": JSON.stringify(rule) });
  const event = (over: Record<string, any> = {}) =>
    toDenialEvent({
      metadata: { name: "tenet-operator-leader.abc", namespace: TENET_NS, annotations: ruleAnnotation({ namespace: NS, name: "strict", uid: RULE_UID }) },
      involvedObject: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", name: "tenet-operator-leader", namespace: TENET_NS },
      related: { apiVersion: "apps/v1", kind: "Deployment", namespace: NS, name: "billing" },
      action: "CREATE",
      reason: "AdmissionDenied",
      source: { component: "tenet-operator" },
      message: `Deployment ${NS}/billing: image ghcr.io/acme/billing:1 has 2 critical vulnerabilities`,
      count: 3,
      lastTimestamp: "2025-06-01T11:00:00Z",
      ...over,
    });
  const read = (ev: ReturnType<typeof event>) => denialFromEvent(ev, ruleUid, "tenet-operator", TENET_NS);

  it("reads the denied object, rule, operation, count and time from a record Event in Tenet's namespace", () => {
    assert.deepEqual(read(event()), {
      policy: "strict",
      resource: { apiVersion: "apps/v1", kind: "Deployment", namespace: NS, name: "billing" },
      message: "image ghcr.io/acme/billing:1 has 2 critical vulnerabilities",
      operation: "CREATE",
      count: 3,
      at: Date.parse("2025-06-01T11:00:00Z"),
    });
  });

  it("ignores Events that are not Tenet's records of a denial by an existing RuntimeRule", () => {
    const meta = (annotations: Record<string, string> | undefined, namespace = TENET_NS) => ({ metadata: { name: "x", namespace, annotations } });
    const bad: Record<string, any>[] = [
      meta(ruleAnnotation({ namespace: NS, name: "strict", uid: RULE_UID }), NS), // in the user's namespace: a namespace editor can write those
      { reason: "AdmittedWithWarnings" },
      { source: { component: "someone-else" } },
      meta(ruleAnnotation({ namespace: NS, name: "strict", uid: "forged" })),
      meta(ruleAnnotation({ namespace: NS, name: "gone", uid: RULE_UID })),
      meta(ruleAnnotation({ namespace: NS, name: "strict" })),
      meta({ "tenet.dev/runtime-rule": "{not json" }),
      meta(undefined),
      { related: { kind: "Deployment", namespace: "other", name: "billing" } },
      { related: { kind: "Deployment", name: "billing" } },
      { related: undefined },
      { related: { kind: "Deployment", namespace: NS, name: "x".repeat(300) } },
      { related: { kind: "Deployment", namespace: NS, name: "bad name/../" } },
      { related: { kind: "not a kind", namespace: NS, name: "billing" } },
      { lastTimestamp: "not a time", firstTimestamp: undefined },
    ];
    for (const over of bad) assert.equal(read(event(over)), undefined, JSON.stringify(over));
  });

  it("bounds what it keeps of an Event: message length, annotation, operation, count", () => {
    const ev = event({ message: "m".repeat(100_000), action: "DROP TABLE", count: 1e12 });
    assert.ok(ev.message!.length <= 2048);
    const d = read(ev)!;
    assert.ok(d.message.length <= 2048);
    assert.equal(d.operation, undefined);
    assert.equal(d.count, 1e9);
    assert.ok(toDenialEvent({ metadata: { name: "x", namespace: TENET_NS, annotations: { "tenet.dev/runtime-rule": "a".repeat(10_000), other: "b".repeat(10_000) } } }).metadata.annotations!["tenet.dev/runtime-rule"].length <= 1024);
  });

  it("keeps one denial per rule and resource, at most its cap per namespace, dropping (and counting) the oldest", () => {
    const store = new DenialStore(3);
    for (let i = 0; i < 3; i++) assert.ok(store.add(denial(i, 1000 + i)));
    assert.ok(!store.add(denial(1, 1001)), "a repeat with nothing new changes nothing");
    assert.ok(store.add({ ...denial(1, 2000), count: 4 }), "a newer sighting refreshes it");
    assert.equal(store.list(NS).length, 3);
    assert.ok(store.add(denial(9, 3000)));
    assert.deepEqual(store.list(NS).map((d) => d.resource.name).sort(), ["billing-1", "billing-2", "billing-9"]);
    assert.equal(store.dropped(NS), 1);
    assert.ok(!store.add(denial(8, 10)), "older than everything kept: not taken, not counted again");
    assert.equal(store.dropped(NS), 1);
  });

  it("forgets denials after their time to live and says when the next one expires", () => {
    const store = new DenialStore();
    store.add(denial(1, 1000));
    store.add(denial(2, 5000));
    assert.equal(store.expire(NS, 4000, 2500), 7500);
    assert.deepEqual(store.list(NS).map((d) => d.resource.name), ["billing-2"]);
    assert.equal(store.expire("elsewhere", 3000), undefined);
  });
});

describe("PolicyReports: Incidents as results (operator/reports/incidents.ts, the cache in operator/signals/incidents.ts)", () => {
  const rules = new Set([`${NS}/detect`]);
  const ruleExists = (ns: string, name: string) => rules.has(`${ns}/${name}`);
  /** An Incident as the API server returns it after Tenet's writer created it and patched its status. */
  const raw = (name: string, over: { state?: string; status?: Record<string, any>; managedFields?: any[] } = {}) => ({
    apiVersion: "tenet.dev/v1alpha1",
    kind: "Incident",
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      resourceVersion: "7",
      creationTimestamp: "2025-06-01T11:00:00Z",
      labels: { "tenet.dev/incident-key": "k" },
      managedFields: over.managedFields ?? [
        { manager: "tenet-signals", operation: "Update", apiVersion: "tenet.dev/v1alpha1", fieldsType: "FieldsV1", fieldsV1: { "f:metadata": { "f:labels": { ".": {} } }, "f:spec": {} } },
        { manager: "tenet-signals", operation: "Update", subresource: "status", apiVersion: "tenet.dev/v1alpha1", fieldsType: "FieldsV1", fieldsV1: { "f:status": { ".": {}, "f:rule": {}, "f:pods": {} } } },
      ],
    },
    spec: over.state ? { state: over.state } : { state: "Open" },
    status: {
      rule: `${NS}/detect/sensitive`,
      workload: "Deployment/orders",
      pods: ["orders-0"],
      severity: "high",
      firstSeen: "2025-06-01T11:58:00.123456789Z",
      lastSeen: "2025-06-01T11:59:30.987654321Z",
      eventCount: 3,
      response: { name: "report", action: "alert", outcome: "Applied", summary: "alert Applied", message: "alerted on pod shop/orders-0", time: "2025-06-01T11:59:31Z" },
      evidence: [{ time: "2025-06-01T11:58:00.123456789Z", layer: "runtime", source: "falco", rule: "Read sensitive file untrusted" }],
      ...over.status,
    },
  });
  const result = (r: ReturnType<typeof raw>) => incidentResult(toCachedIncident(r), ruleExists);

  it("turns an open Incident into a fail result: rule and detection, severity, the pods, workload, response and counts", () => {
    const r = result(raw("detect-sensitive-abc"))!;
    assert.deepEqual(r, {
      source: "tenet",
      policy: "detect",
      rule: "sensitive",
      category: INCIDENT_CATEGORY,
      severity: "high",
      timestamp: { seconds: Math.floor(Date.parse("2025-06-01T11:59:30Z") / 1000), nanos: 0 },
      result: "fail",
      scored: true,
      resources: [{ apiVersion: "v1", kind: "Pod", namespace: NS, name: "orders-0" }],
      message: "Incident detect-sensitive-abc: sensitive fired for Deployment/orders, 3 events; alerted on pod shop/orders-0",
      properties: {
        process: "incident",
        incident: "detect-sensitive-abc",
        state: "Open",
        workload: "Deployment/orders",
        events: "3",
        firstSeen: "2025-06-01T11:58:00.123456789Z",
        lastSeen: "2025-06-01T11:59:30.987654321Z",
        response: "alert Applied",
        outcome: "Applied",
      },
    });
  });

  it("maps states and severities: Acknowledged warn, Resolved not reported; low/medium/high/critical as they are", () => {
    assert.equal(result(raw("a", { state: "Acknowledged" }))!.result, "warn");
    assert.equal(result(raw("a", { state: "Resolved" })), undefined);
    for (const sev of ["low", "medium", "high", "critical"]) assert.equal(result(raw("a", { status: { severity: sev } }))!.severity, sev);
    assert.equal(result(raw("a", { status: { severity: "apocalyptic" } }))!.severity, undefined);
    const noSpec = toCachedIncident({ ...raw("a"), spec: undefined });
    assert.equal(incidentResult(noSpec, ruleExists)!.result, "fail", "no state is Open (the CRD's default)");
  });

  it("reports only incidents whose status Tenet's writer alone wrote, naming an existing RuntimeRule in the Incident's namespace", () => {
    const kubectl = { manager: "kubectl-patch", operation: "Update", subresource: "status", fieldsV1: { "f:status": { "f:severity": {} } } };
    const ours = raw("a").metadata.managedFields;
    const untrusted: [string, ReturnType<typeof raw>][] = [
      ["status by another manager", raw("a", { managedFields: [{ ...ours[1], manager: "kubectl-edit" }] })],
      ["status partly by another manager", raw("a", { managedFields: [...ours, kubectl] })],
      ["Tenet's manager, but not on /status", raw("a", { managedFields: [{ ...ours[1], subresource: undefined }] })],
      ["an Apply under Tenet's name on the object", raw("a", { managedFields: [{ ...ours[1], operation: "Apply", subresource: undefined }] })],
      ["no managedFields", raw("a", { managedFields: [] })],
      ["a rule that does not exist", raw("a", { status: { rule: `${NS}/gone/sensitive` } })],
      ["a rule of another namespace", raw("a", { status: { rule: `other/detect/sensitive` } })],
      ["no detection name", raw("a", { status: { rule: `${NS}/detect` } })],
      ["no rule", raw("a", { status: { rule: undefined } })],
    ];
    for (const [what, r] of untrusted) assert.equal(result(r), undefined, what);
    assert.equal(toCachedIncident(raw("a", { managedFields: [{ ...ours[1], manager: "kubectl-edit" }] })).statusByTenet, undefined);
    assert.equal(statusWrittenByTenet(ours), true);
    assert.equal(statusWrittenByTenet("nonsense"), false);
    // A manager that owns nothing in status (labels, spec: the on-call person) does not matter.
    assert.ok(result(raw("a", { managedFields: [...ours, { manager: "kubectl-edit", operation: "Update", fieldsV1: { "f:spec": { "f:state": {} } } }], state: "Acknowledged" })));
  });

  it("bounds what it takes: pods, strings from the status, the message; timestamp falls back to the response, then creation", () => {
    const pods = Array.from({ length: 40 }, (_, i) => `orders-${i}`);
    const r = result(raw("a", { status: { pods, workload: "W".repeat(10_000), response: { summary: "s".repeat(500), message: "m".repeat(10_000) } } }))!;
    assert.equal(r.resources!.length, MAX_INCIDENT_PODS);
    assert.equal(r.properties!.omittedPods, String(32 - MAX_INCIDENT_PODS), "the cache keeps 32 pods, the CRD's maximum");
    assert.equal(r.properties!.workload.length, 320);
    assert.equal(r.properties!.response.length, 64);
    assert.equal(r.message!.length, MAX_RESULT_MESSAGE);
    const cached = toCachedIncident(raw("a", { status: { evidence: Array(50).fill({ output: "x".repeat(512) }) } }));
    assert.equal((cached.status as any).evidence, undefined, "the cache keeps no evidence");
    assert.equal(result(raw("a", { status: { lastSeen: undefined } }))!.timestamp.seconds, Date.parse("2025-06-01T11:59:31Z") / 1000);
    assert.equal(result(raw("a", { status: { lastSeen: "garbage", response: undefined } }))!.timestamp.seconds, 0);
    assert.equal(result(raw("a", { status: { lastSeen: undefined, response: undefined } }))!.timestamp.seconds, Date.parse("2025-06-01T11:00:00Z") / 1000);
    const noPods = result(raw("a", { status: { pods: [] } }))!;
    assert.deepEqual(noPods.resources, [{ apiVersion: "tenet.dev/v1alpha1", kind: "Incident", namespace: NS, name: "a", uid: "uid-a" }]);
  });

  it("puts incidents in the report next to the rest: open ones first, at most MAX_INCIDENT_RESULTS, the rest counted; equal incidents build an equal report", () => {
    const incidents = Array.from({ length: MAX_INCIDENT_RESULTS + 20 }, (_, i) =>
      result(raw(`inc-${String(i).padStart(3, "0")}`, { state: i % 2 ? "Acknowledged" : "Open", status: { lastSeen: new Date(NOW.getTime() - i * 1000).toISOString() } }))!,
    );
    const rescan = Array.from({ length: 450 }, (_, i) => postureResult(clean(`ok-${i}`))!);
    const r = buildReport({ namespace: NS, rescan, admission: [denial(1)], incidents, now: NOW });
    assert.equal(r.results.length, MAX_RESULTS);
    const kept = r.results.filter((x) => x.properties?.process === "incident");
    assert.equal(kept.length, MAX_INCIDENT_RESULTS);
    assert.equal(kept.filter((x) => x.result === "fail").length, (MAX_INCIDENT_RESULTS + 20) / 2, "every open incident is kept");
    assert.ok(kept.some((x) => x.properties!.incident === "inc-001"), "the most recent acknowledged are kept");
    assert.ok(!kept.some((x) => x.properties!.incident === "inc-119"), "the oldest acknowledged go");
    assert.deepEqual(JSON.parse(r.metadata.annotations!["tenet.dev/omitted-results"]), { incidents: 20, rescan: 450 + 1 + MAX_INCIDENT_RESULTS - MAX_RESULTS });
    assert.deepEqual(r.summary, { pass: MAX_RESULTS - 1 - MAX_INCIDENT_RESULTS, fail: 1 + 60, warn: 40, error: 0, skip: 0 });

    const small = (inc: ReturnType<typeof raw>[]) => buildReport({ namespace: NS, rescan: [postureResult(clean("a"))!], admission: [], incidents: inc.map((i) => result(i)!), now: NOW });
    const stored = JSON.parse(JSON.stringify(small([raw("x"), raw("y")])));
    const later = buildReport({ namespace: NS, rescan: [postureResult(clean("a"))!], admission: [], incidents: [raw("y"), raw("x")].map((i) => result(i)!), previous: stored.results, now: new Date(NOW.getTime() + 3600_000) });
    assert.ok(sameReport(stored, later), "the same incidents an hour later: nothing to write");
    assert.ok(!sameReport(stored, small([raw("x"), raw("y", { status: { eventCount: 4 } })])), "a new event changes the result");
    assert.ok(!sameReport(stored, small([raw("x"), raw("y", { state: "Acknowledged" })])));
    assert.ok(!sameReport(stored, small([raw("x")])), "a resolved incident leaves the report");
  });
});
