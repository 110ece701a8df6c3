// Hostile input at the AdmissionReview transport (operator/admission/transport.ts) on the real secure server
// (operator/server/app.ts): bounded metric labels and log lines.
import { strict as assert } from "node:assert";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { buildSecureServer } from "../../operator/server/app.ts";
import { AdmissionMetrics, admissionRoute } from "../../operator/admission/transport.ts";
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

describe("admission transport: refusals the caller can read", () => {
  // Otherwise valid reviews: without the protection each of these is answered 200.
  const valid = JSON.stringify(review("Pod"));
  const withObject = (object: string) => valid.replace('"object":{"metadata":{"name":"p"}}', `"object":${object}`);
  const poisoned: [string, string][] = [
    ["__proto__", withObject('{"metadata":{"name":"p"},"__proto__":{"allowed":true}}')],
    ["a unicode-escaped __proto__", withObject('{"metadata":{"name":"p"},"\\u005f_proto__":{"allowed":true}}')],
    ["constructor.prototype", withObject('{"metadata":{"name":"p"},"constructor":{"prototype":{"allowed":true}}}')],
  ];
  for (const [what, payload] of poisoned) {
    it(`refuses a body with ${what} (prototype poisoning) with 400`, async () => {
      const { app } = server();
      const res = await app.inject({ method: "POST", url: "/validate", headers: { "content-type": "application/json" }, payload });
      assert.ok(payload !== valid && payload.includes('"p"},'), "the poison is in the payload");
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(({} as any).allowed, undefined);
    });
  }

  it("still refuses deep nesting with 400 and parses ordinary reviews", async () => {
    const { app } = server({ handler: () => ({ allowed: true, reason: "Compliant" }) });
    const deep = await app.inject({ method: "POST", url: "/validate", headers: { "content-type": "application/json" }, payload: "[".repeat(100) + "]".repeat(100) });
    assert.equal(deep.statusCode, 400);
    assert.match(deep.json().error.message, /nested/);
    const ok = await app.inject({ method: "POST", url: "/validate", payload: review("Pod", { object: { metadata: { name: "p", labels: { constructor: "x" } } } }) });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().response.allowed, true);
  });

  it("counts nesting outside strings only: brackets and escaped quotes inside strings do not count, or hide nesting", async () => {
    const { app } = server({ handler: () => ({ allowed: true, reason: "Compliant" }) });
    const send = (payload: string | object) => app.inject({ method: "POST", url: "/validate", headers: { "content-type": "application/json" }, payload });
    // 200 brackets inside a value with escaped quotes and backslashes around them: not nesting.
    const inString = review("Pod", { object: { metadata: { name: "p", annotations: { a: `\\"${"[{".repeat(100)}\\\\"`, b: "\\" } } } });
    assert.equal((await send(inString)).statusCode, 200);
    // A value ending in an escaped backslash closes the string; the deep nesting after it counts.
    const hidden = `{"a":"x\\\\","c":${"[".repeat(100)}${"]".repeat(100)}}`;
    const res = await send(hidden);
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /nested 65 levels/);
  });

  for (const framing of ["content-length", "chunked"] as const) {
    it(`answers an 8 MiB body (${framing}) with 413 that the caller reads, not a reset`, async function () {
      this.timeout(30_000);
      const { app } = server();
      await app.listen({ host: "127.0.0.1", port: 0 });
      try {
        const port = (app.server.address() as { port: number }).port;
        for (let i = 0; i < 3; i++) {
          const answer = await sendWithoutReading(port, framing, 8 * 1024 * 1024);
          assert.match(answer, /^HTTP\/1\.1 413 /, `attempt ${i + 1}: ${answer.slice(0, 200)}`);
        }
      } finally {
        await app.close();
      }
    });
  }
});

/**
 * Like a client that writes its whole request before it reads (the API server's client does, under
 * load): the body is written first, the answer read only after the last byte was sent or failed.
 */
async function sendWithoutReading(port: number, framing: "content-length" | "chunked", size: number): Promise<string> {
  const { connect } = await import("node:tls");
  const sock = connect({ host: "127.0.0.1", port, ca: ca.certPem, checkServerIdentity: () => undefined });
  await new Promise((r, j) => sock.once("secureConnect", r).once("error", j));
  sock.pause();
  const chunk = Buffer.alloc(256 * 1024, 0x20);
  const head = framing === "chunked" ? "transfer-encoding: chunked\r\n" : `content-length: ${size}\r\n`;
  const writes: Promise<unknown>[] = [];
  const write = (b: Buffer | string) => writes.push(new Promise((r) => sock.write(b, (err) => r(err))));
  write(`POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${head}\r\n`);
  for (let sent = 0; sent < size; sent += chunk.length) write(framing === "chunked" ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]) : chunk);
  if (framing === "chunked") write("0\r\n\r\n");
  let received = "";
  let error = "";
  sock.on("error", (e: Error & { code?: string }) => (error = e.code ?? e.message));
  const closed = new Promise((r) => sock.once("close", r));
  await Promise.race([Promise.all(writes), closed]);
  sock.on("data", (d) => (received += d));
  sock.resume();
  await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
  sock.destroy();
  return received || `no answer (${error || "closed"})`;
}
