// Hostile input at the AdmissionReview transport (webhook/admission.ts) on the real secure server
// (operator/secure-server.ts): bounded metric labels and log lines.
import { strict as assert } from "node:assert";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { buildSecureServer } from "../../operator/secure-server.ts";
import { AdmissionMetrics, admissionRoute } from "../../webhook/admission.ts";
import { leafFor, newCA } from "../harness/enforcer.ts";

const ca = newCA();
const tls = leafFor(ca, "spiffe://cluster.local/ns/tenet-system/sa/tenet-operator");

export function server(opts: { handler?: Parameters<typeof admissionRoute>[1]["handler"] } = {}) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  const log = pino({ level: "debug" }, sink);
  const registry = new Registry();
  const metrics = new AdmissionMetrics(registry);
  const app = buildSecureServer(log, tls);
  admissionRoute(app, { path: "/validate", webhook: "validate", log, metrics, handler: opts.handler ?? ((req) => ({ allowed: false, reason: "RuntimeRuleViolation", message: `refused ${req.kind.kind}` })) });
  return { app, registry, lines };
}

export const review = (kind: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: { uid: "u-1", kind: { group: "", version: "v1", kind }, resource: { group: "", version: "v1", resource: "pods" }, operation: "CREATE", namespace: "demo", object: { metadata: { name: "p" } }, ...extra },
});

/** The label sets of one metric on the /metrics page. */
async function labelSets(registry: Registry, name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split("\n").filter((l) => l.startsWith(`${name}{`));
}

describe("admission transport: hostile input", () => {
  it("keeps the label set of tenet_admission_requests_total bounded whatever kinds callers send", async () => {
    const { app, registry } = server();
    for (let i = 0; i < 300; i++) {
      const kind = i % 3 === 0 ? `Kind${i}${"x".repeat(2000)}` : `Evil${i}`;
      const res = await app.inject({ method: "POST", url: "/validate", payload: review(kind) });
      assert.equal(res.statusCode, 200);
    }
    await app.inject({ method: "POST", url: "/validate", payload: review("Pod") });
    await app.inject({ method: "POST", url: "/validate", payload: review("Deployment") });
    const sets = await labelSets(registry, "tenet_admission_requests_total");
    assert.ok(sets.length <= 3, `at most Pod, Deployment and other: got ${sets.length} label sets`);
    assert.ok(sets.some((l) => l.includes('kind="other"')), sets.join("\n"));
    assert.ok(sets.some((l) => l.includes('kind="Pod"')));
    const text = await registry.metrics();
    assert.ok(text.length < 10_000, `the /metrics page stays small (${text.length} bytes)`);
  });

  it("bounds reasons a handler returns, too", async () => {
    let n = 0;
    const { app, registry } = server({ handler: () => ({ allowed: true, reason: `Reason${n++}` }) });
    for (let i = 0; i < 200; i++) await app.inject({ method: "POST", url: "/validate", payload: review("Pod") });
    const sets = await labelSets(registry, "tenet_admission_requests_total");
    assert.ok(sets.length <= 65, `reasons are capped: ${sets.length} label sets`);
  });

  it("cuts request data in log lines to a fixed length", async () => {
    const { app, lines } = server({ handler: (req) => ({ allowed: false, reason: "RuntimeRuleViolation", message: `refused ${req.kind.kind} ${"m".repeat(100_000)}` }) });
    const huge = "K".repeat(200_000);
    const res = await app.inject({ method: "POST", url: "/validate", payload: review(huge, { uid: "u".repeat(100_000), namespace: "n".repeat(100_000), name: "a".repeat(100_000) }) });
    assert.equal(res.statusCode, 200);
    const denied = lines.filter((l) => l.includes('"msg":"denied"'));
    assert.equal(denied.length, 1);
    assert.ok(denied[0].length < 8_000, `the log line is ${denied[0].length} bytes`);
  });
});
