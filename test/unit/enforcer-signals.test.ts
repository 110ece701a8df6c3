// The enforcer's signal reporter (enforcer/signals.ts): which denials become which signal kind,
// aggregation per (kind, reason, peer), bursts, retries that keep ids, and that what it sends is
// exactly what the operator's parser (signals/enforcer.ts) accepts.
import { strict as assert } from "node:assert";
import { pino } from "pino";
import type { AuditRecord } from "../../enforcer/audit.ts";
import { classify, SignalReporter } from "../../enforcer/signals.ts";
import { parseEnforcerEvent, readEnforcerReport } from "../../signals/enforcer.ts";
import { parseBatch } from "../../signals/falco.ts";

const rec = (r: Partial<AuditRecord>): AuditRecord => ({ direction: "inbound", destination: "127.0.0.1:8080", decision: "deny", reason: "Forbidden", status: 403, latencyMs: 0, ...r });

describe("enforcer: denials as signals", () => {
  const table: [string, Partial<AuditRecord>, string | undefined][] = [
    ["an allowed request is no signal", { decision: "allow", status: 200, reason: "Allowed" }, undefined],
    ["an API denial (403)", { status: 403, reason: "Forbidden" }, "APIDenied"],
    ["an API denial (401)", { status: 401, reason: "Unauthenticated" }, "APIDenied"],
    ["an untrusted client certificate", { status: 0, reason: "ClientCertificateUntrusted", detail: "UNABLE_TO_GET_ISSUER_CERT" }, "TLSRefused"],
    ["plain HTTP on the mTLS port", { status: 0, reason: "TLSHandshakeFailed", detail: "ERR_SSL_HTTP_REQUEST" }, "PlaintextAttempt"],
    ["the app failing is not the caller's doing", { status: 502, reason: "AppUnavailable" }, undefined],
  ];
  for (const [name, r, want] of table) it(name, () => assert.equal(classify(rec(r)), want));

  function reporter(post: (url: string, body: any) => Promise<{ status: number; body: string }>) {
    const sent: any[] = [];
    const r = new SignalReporter({
      url: "https://op/v1/signals/enforcer",
      namespace: "shop",
      podName: "orders-0",
      flushMs: 1000,
      burstThreshold: 5,
      client: { post: async (url, body) => (sent.push(body), post(url, body)) },
      log: pino({ level: "silent" }),
      now: () => Date.UTC(2026, 2, 2, 9, 0, 0),
    });
    return { r, sent };
  }

  it("folds denials per kind, reason and peer, adds a Burst, and sends what the operator parses", async () => {
    const { r, sent } = reporter(async () => ({ status: 202, body: "{}" }));
    for (let i = 0; i < 4; i++) r.observe(rec({ caller: "spiffe://cluster.local/ns/shop/sa/frontend", method: "DELETE", path: `/orders/${i}` }));
    r.observe(rec({ caller: "spiffe://cluster.local/ns/shop/sa/cart" }));
    r.observe(rec({ status: 0, reason: "NoClientCertificate", detail: "NO_CLIENT_CERTIFICATE" }));
    await r.flush();
    assert.equal(sent.length, 1);
    const report = readEnforcerReport(JSON.parse(JSON.stringify(sent[0])));
    assert.deepEqual(report.pod, { namespace: "shop", name: "orders-0" });
    const parsed = parseBatch(report.events, parseEnforcerEvent);
    assert.deepEqual(parsed.rejected, []);
    assert.deepEqual(parsed.signals.map((s) => [s.rule, s.count, s.fields.peer ?? null]), [
      ["APIDenied", 4, "spiffe://cluster.local/ns/shop/sa/frontend"],
      ["APIDenied", 1, "spiffe://cluster.local/ns/shop/sa/cart"],
      ["TLSRefused", 1, null],
      ["Burst", 6, null],
    ]);
    await r.flush();
    assert.equal(sent.length, 1, "nothing new: nothing sent");
  });

  it("keeps a batch the operator refused with 429 and sends it again with the same ids", async () => {
    let status = 429;
    const { r, sent } = reporter(async () => ({ status, body: '{"error":{"reason":"Overloaded","message":"full"}}' }));
    r.observe(rec({}));
    await r.flush();
    status = 202;
    r.observe(rec({ reason: "Unauthenticated", status: 401 }));
    await r.flush();
    assert.equal(sent.length, 2);
    assert.equal(sent[1].events[0].id, sent[0].events[0].id, "the same id: the operator counts it once");
    assert.equal(sent[1].events.length, 2);
  });
});
