// Signals at scale, in one process: Falco batches through the real intake route (fastify inject:
// parsing that keeps evt.time exact, bounds, the queue), attribution against 10,000 cached pods
// (by namespace + pod and by container ID), 100 RuntimeRules with detection (signals and
// correlations, one rule per namespace), correlation and responses. The baseline: JSON.parse of
// the same bodies in the same run. Also: the p99 from a deciding event (the 5th API denial after
// a shell) to the quarantine write being sent (the pod annotation posture acts on). The API
// server is replaced by a recorder here: what is measured is Tenet's own work.
//   BENCH_PODS (10000), BENCH_RULES (100), BENCH_EVENTS (200000), BENCH_BATCH (100), BENCH_DECISIONS (200)
import Fastify from "fastify";
import { performance } from "node:perf_hooks";
import { createLogger } from "../common/logger.ts";
import type { CachedPod } from "../operator/cache/pods.ts";
import { Attributor } from "../operator/signals/attribution.ts";
import { IncidentWriter } from "../operator/signals/incidents.ts";
import { signalRoutes } from "../operator/signals/intake.ts";
import { SignalMetrics } from "../operator/signals/metrics.ts";
import { SignalPipeline } from "../operator/signals/pipeline.ts";
import { Responder } from "../operator/signals/responses.ts";
import { Registry } from "prom-client";
import { parseEnforcerEvent } from "../signals/enforcer.ts";

const PODS = Number(process.env.BENCH_PODS ?? 10_000);
const RULES = Number(process.env.BENCH_RULES ?? 100);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 200);
const log = createLogger("bench", { level: "silent" });
const say = (m: string) => process.stderr.write(`[signals] ${m}\n`);

/** An in-memory stand-in for an informer cache (get, listNamespace, onChange). */
function store<T extends { metadata: { namespace?: string; name?: string } }>(items: T[]) {
  const byKey = new Map(items.map((i) => [`${i.metadata.namespace}/${i.metadata.name}`, i]));
  const byNs = new Map<string, T[]>();
  for (const i of items) byNs.set(i.metadata.namespace!, [...(byNs.get(i.metadata.namespace!) ?? []), i]);
  const listeners: ((type: string, o: T, old?: T) => void)[] = [];
  return {
    get: (k: string) => byKey.get(k),
    list: () => items,
    listNamespace: (ns: string) => byNs.get(ns) ?? [],
    onChange: (f: (type: string, o: T, old?: T) => void) => listeners.push(f),
    replay: () => items.forEach((i) => listeners.forEach((l) => l("add", i))),
  };
}

const nsCount = RULES;
const pods: CachedPod[] = Array.from({ length: PODS }, (_, i) => {
  const ns = `team-${i % nsCount}`;
  return {
    metadata: { name: `app-${i}`, namespace: ns, uid: `uid-${i}`, resourceVersion: "1", labels: { app: `app-${i % 10}`, "pod-template-hash": "abc" } },
    spec: { serviceAccountName: `sa-${i % 10}`, containers: [{ name: "app", image: "ghcr.io/acme/app:1.0" }] },
    status: { phase: "Running", ready: true, containerIDs: [i.toString(16).padStart(12, "0")] },
    owner: { kind: "ReplicaSet", name: `app-${i % 10}-abc` },
    security: {},
  };
});
const rules = Array.from({ length: RULES }, (_, i) => ({
  apiVersion: "tenet.dev/v1alpha1",
  kind: "RuntimeRule",
  metadata: { name: "detect", namespace: `team-${i}` },
  spec: {
    selector: {},
    detection: {
      signals: [
        { name: "shell", source: "falco" as const, rules: ["Terminal shell in container"], priority: ">=warning" },
        { name: "sensitive", source: "falco" as const, rules: ["Read sensitive file*"], tags: ["mitre_credential_access"] },
        { name: "outbound", source: "falco" as const, rules: ["Unexpected outbound*"], fields: [{ field: "fd.sport", operator: "In" as const, values: ["4444"] }] },
        { name: "denied", source: "enforcer" as const, rules: ["APIDenied"] },
      ],
      correlations: [
        { name: "denials", type: "event_count" as const, signals: ["denied"], timespan: "5m", condition: { gte: 5 } },
        { name: "probe", type: "value_count" as const, signals: ["outbound"], field: "fd.sip", timespan: "5m", condition: { gte: 20 } },
        { name: "shell-then-denials", type: "temporal_ordered" as const, signals: ["shell", "denials"], timespan: "5m" },
      ],
      responses: [{ name: "isolate", on: ["shell-then-denials"], action: "quarantine" as const, maxQuarantinedPercent: 100, cooldown: "0s" }],
    },
  },
}));

const podStore = store(pods);
const latencies: number[] = [];
const decidedAt = new Map<string, number>();
let writes = 0;
const fakeKube: any = {
  patch: async () => {
    writes++;
    return {};
  },
  create: async () => ({}),
};
const metrics = new SignalMetrics(new Registry());
const now = () => Date.now();
const attributor = new Attributor(podStore as any, undefined, "cluster.local");
podStore.replay();
const incidents = new IncidentWriter(fakeKube, log, now);
const responder = new Responder({
  kube: fakeKube,
  log,
  events: { emit: async () => undefined } as any,
  pods: podStore as any,
  incidents,
  metrics,
  now,
  onQuarantineWrite: (pod) => {
    const t = decidedAt.get(pod);
    if (t !== undefined) latencies.push(performance.now() - t);
  },
});
const pipeline = new SignalPipeline({ log, rules: store(rules) as any, attributor, responder, metrics, now, queueLimit: 10_000_000 });
const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024 });
signalRoutes(app, {
  log,
  metrics,
  pipeline,
  attributor,
  authorizeSender: async () => "bench",
  authenticatePod: async () => pods[0],
  now,
});
await app.ready();

// The traffic: what a busy node sends, mostly events no rule acts on, some that match.
const RULE_NAMES = ["Contact K8S API Server From Container", "Terminal shell in container", "Read sensitive file untrusted", "Unexpected outbound connection destination", "Launch Package Management Process in Container"];
let seq = 0;
function falcoEvent(podIndex: number, rule: string, t: number, byContainer: boolean) {
  const p = pods[podIndex];
  const ns9 = `${BigInt(t) * 1_000_000n + BigInt(seq % 1_000_000)}`;
  const fields: Record<string, unknown> = { "container.id": p.status.containerIDs![0], "proc.name": "bash", "proc.cmdline": "bash -i", "user.name": "root", "fd.sip": `203.0.113.${seq % 250}`, "fd.sport": 4444, "container.image.repository": null };
  if (!byContainer) Object.assign(fields, { "k8s.ns.name": p.metadata.namespace, "k8s.pod.name": p.metadata.name });
  // evt.time goes in as a bare 19-digit integer, as Falco writes it.
  const body = JSON.stringify({ uuid: `u-${++seq}`, output: `${rule} (user=root k8s.ns=${p.metadata.namespace} k8s.pod=${p.metadata.name})`, priority: "Warning", rule, time: new Date(t).toISOString(), source: "syscall", tags: ["container", "mitre_credential_access"], hostname: "node-1", output_fields: { ...fields, "evt.time": "__T__" } });
  return body.replace('"__T__"', ns9);
}
const t0 = Date.now();
const bodies: string[] = [];
for (let b = 0; b < EVENTS / BATCH; b++) {
  const events: string[] = [];
  for (let i = 0; i < BATCH; i++) {
    const n = b * BATCH + i;
    events.push(falcoEvent((n * 7919) % PODS, RULE_NAMES[n % RULE_NAMES.length], t0 - 60_000 + (n % 1000), n % 2 === 0));
  }
  bodies.push(`[${events.join(",")}]`);
}
const bytes = bodies.reduce((s, b) => s + b.length, 0);
say(`${PODS} pods, ${RULES} rules, ${EVENTS} events in ${bodies.length} batches of ${BATCH} (${(bytes / 1e6).toFixed(1)} MB)`);

// Baseline: JSON.parse of the same bodies.
function baseline() {
  const start = performance.now();
  let n = 0;
  for (const b of bodies) n += (JSON.parse(b) as unknown[]).length;
  return n / ((performance.now() - start) / 1000);
}
const idle = () => pipeline.idle();
async function throughput() {
  const start = performance.now();
  for (let i = 0; i < bodies.length; i += 4) {
    const res = await Promise.all(bodies.slice(i, i + 4).map((payload) => app.inject({ method: "POST", url: "/v1/signals/falco", headers: { "content-type": "application/json", authorization: "Bearer x" }, payload })));
    for (const r of res) if (r.statusCode !== 202) throw new Error(`intake answered ${r.statusCode}: ${r.body}`);
    if (pipeline.depth > 20_000) await idle();
  }
  await idle();
  return EVENTS / ((performance.now() - start) / 1000);
}

baseline(); // warm-up
const base = baseline();
const eps = await throughput();
say(`JSON.parse ${Math.round(base)} events/s; intake + attribution + correlation ${Math.round(eps)} events/s`);

// Deciding events: for each target pod a shell (Falco), four denials, then the fifth (the enforcer route), timed to the quarantine write.
const targets = Array.from({ length: DECISIONS }, (_, i) => (i * 37) % PODS);
for (const idx of targets) {
  const p = pods[idx];
  const t = Date.now();
  await app.inject({ method: "POST", url: "/v1/signals/falco", headers: { "content-type": "application/json", authorization: "Bearer x" }, payload: falcoEvent(idx, "Terminal shell in container", t - 1000, false) });
  const denial = (k: number) => ({ id: `d-${idx}-${k}`, kind: "APIDenied", reason: "Forbidden", time: new Date(t + k).toISOString() });
  // The enforcer route's attribution is its sender's pod: queued here as the target pod's report.
  await idle();
  for (let k = 0; k < 4; k++) pipeline.enqueue([{ signal: parseEnforcerEvent(denial(k)), attribution: attributor.ofPod(p), labels: p.metadata.labels, receivedAt: Date.now() }]);
  await idle();
  decidedAt.set(`${p.metadata.namespace}/${p.metadata.name}`, performance.now());
  pipeline.enqueue([{ signal: parseEnforcerEvent(denial(4)), attribution: attributor.ofPod(p), labels: p.metadata.labels, receivedAt: Date.now() }]);
  await idle();
}
await new Promise((r) => setTimeout(r, 50));
latencies.sort((a, b) => a - b);
const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
say(`${latencies.length} of ${DECISIONS} deciding events quarantined; p50 ${pct(0.5).toFixed(3)} ms, p99 ${pct(0.99).toFixed(3)} ms`);
incidents.stop();
pipeline.stop();
await app.close();
const ok = eps >= 20_000 && pct(0.99) <= 50 && latencies.length === DECISIONS;
console.log(
  JSON.stringify({
    bench: "signals",
    ratio: Math.round((eps / base) * 1000) / 1000,
    goal: ">= 20,000 events/s through intake + attribution + correlation (10,000 pods, 100 rules); p99 deciding event -> quarantine write <= 50 ms",
    details: { pods: PODS, rules: RULES, events: EVENTS, batch: BATCH, eventsPerSecond: Math.round(eps), jsonParseEventsPerSecond: Math.round(base), decisions: DECISIONS, quarantined: latencies.length, p50Ms: Math.round(pct(0.5) * 1000) / 1000, p99Ms: Math.round(pct(0.99) * 1000) / 1000, writes, goalMet: ok },
  }),
);
