// Signal parsing (signals/json.ts, falco.ts, enforcer.ts): our own fixtures in Falco's
// http_output and falcosidekick formats (test/fixtures/falco/), and hostile bodies.
import { strict as assert } from "node:assert";
import { parseBatch, parseFalcoEvent } from "../../signals/falco.ts";
import { parseEnforcerEvent, readEnforcerReport } from "../../signals/enforcer.ts";
import { parseSignalJSON, SignalJSONError } from "../../signals/json.ts";
import { SignalFormatError } from "../../signals/fields.ts";
import { priorityRank } from "../../signals/event.ts";
import { fixtureText } from "../harness/fixtures.ts";

const falco = (name: string) => parseSignalJSON(fixtureText(`falco/${name}`));

describe("signals: JSON that keeps evt.time exact", () => {
  it("keeps a 19-digit nanosecond integer as the exact string, which JSON.parse would round", () => {
    const text = fixtureText("falco/shell-warning-http-output.json");
    assert.notEqual(String(JSON.parse(text).output_fields["evt.time"]), "1772442764102938475", "JSON.parse rounds it");
    const v: any = parseSignalJSON(text);
    assert.equal(v.output_fields["evt.time"], "1772442764102938475");
    assert.equal(v.output_fields["proc.tty"], 34816, "small integers stay numbers");
    assert.equal(v.output_fields["user.loginuid"], -1);
  });

  const cases: [string, string, unknown][] = [
    ["a big negative integer", '{"a":-12345678901234567890}', { a: "-12345678901234567890" }],
    ["a big integer in an array", "[12345678901234567890, 1]", ["12345678901234567890", 1]],
    ["digits inside a string are left alone", '{"o":"n=12345678901234567890}"}', { o: "n=12345678901234567890}" }],
    ["an escaped quote before digits", '{"o":"a\\":12345678901234567890"}', { o: 'a":12345678901234567890' }],
    ["a float with many digits stays a float", '{"f":1234567890123456789.5}', { f: 1234567890123456789.5 }],
    ["an exponent stays a number", '{"f":12345678901234567e3}', { f: 12345678901234567e3 }],
    ["2^53 - 1 stays a number", '{"n":9007199254740991}', { n: 9007199254740991 }],
  ];
  for (const [name, text, want] of cases) it(name, () => assert.deepEqual(parseSignalJSON(text), want));

  const bad: [string, string, RegExp][] = [
    ["not JSON", "{rule: x}", /not valid JSON/],
    ["truncated", '{"rule":"x"', /not valid JSON/],
    ["deep nesting", "[".repeat(40) + "]".repeat(40), /nested more than 16/],
    ["__proto__", '{"output_fields":{"__proto__":{"x":1}}}', /prototype poisoning/],
    ["constructor", '[{"constructor":{"prototype":{}}}]', /prototype poisoning/],
  ];
  for (const [name, text, re] of bad) it(`refuses ${name}`, () => assert.throws(() => parseSignalJSON(text), (e: unknown) => e instanceof SignalJSONError && re.test((e as Error).message)));
});

describe("signals: Falco http_output and falcosidekick events", () => {
  it("reads a Falco http_output alert: rule, priority, exact time, tags, fields, pod and container", () => {
    const s = parseFalcoEvent(falco("shell-warning-http-output.json"));
    assert.equal(s.rule, "Terminal shell in container");
    assert.equal(s.priority, priorityRank("warning"));
    assert.equal(s.timeNs, "1772442764102938475");
    assert.equal(s.time, Date.parse("2026-03-02T09:12:44.102Z"));
    assert.deepEqual(s.claim, { namespace: "shop", pod: "orders-6d8f7c9b5-x2k4p", containerID: "3f9a1c2e7b44" });
    assert.ok(s.tags.includes("mitre_execution"));
    assert.equal(s.fields["proc.name"], "bash");
    assert.equal(s.hostname, "falco-node-a7k2q");
    assert.equal(s.layer, "runtime");
    assert.match(s.id, /^falco:/, "no uuid: a digest of the event");
    assert.equal(parseFalcoEvent(falco("shell-warning-http-output.json")).id, s.id, "the same event has the same id");
  });

  it("reads a falcosidekick batch with uuids", () => {
    const b = parseBatch(falco("sidekick-batch.json"), parseFalcoEvent);
    assert.deepEqual(b.rejected, []);
    assert.deepEqual(b.signals.map((s) => s.id), ["6f1c0a52-3d1e-4b7a-9e55-0c7b2f4d8a11", "0b9e7d34-8c2a-4f61-a3d0-5e6f7a8b9c02"]);
    assert.equal(b.signals[0].priority, priorityRank("error"));
    assert.equal(b.signals[1].fields["fd.sip"], "203.0.113.9");
    assert.equal(b.signals[0].timeNs, "1772442782500000001");
  });

  it("keeps null fields as null and still attributes by namespace and pod", () => {
    const s = parseFalcoEvent(falco("shell-null-fields.json"));
    assert.equal(s.fields["container.image.repository"], null);
    assert.equal(s.fields["user.name"], null);
    assert.equal(s.hostname, undefined);
    assert.deepEqual(s.claim, { namespace: "shop", pod: "catalog-0", containerID: "9be2d4c6a810" });
  });

  it("an event from the host has no Kubernetes claim (container.id host is no container)", () => {
    const s = parseFalcoEvent(falco("host-no-k8s.json"));
    assert.deepEqual(s.claim, { namespace: undefined, pod: undefined, containerID: undefined });
  });

  it("a k8s_audit event is about the target pod of the request", () => {
    const s = parseFalcoEvent(falco("k8saudit-exec.json"));
    assert.deepEqual(s.claim, { namespace: "shop", pod: "orders-6d8f7c9b5-x2k4p", containerID: undefined });
  });

  it("a Falco internal event without evt.time takes its RFC 3339 time to the nanosecond", () => {
    const s = parseFalcoEvent(falco("internal-drop.json"));
    assert.equal(s.timeNs, String(BigInt(Date.parse("2026-03-02T12:00:00Z")) * 1_000_000n + 1n));
    assert.equal(s.priority, priorityRank("debug"));
  });

  const refused: [string, unknown, RegExp][] = [
    ["a string", "hello", /JSON object/],
    ["no rule", { priority: "Warning", time: "2026-03-02T09:12:44Z" }, /"rule"/],
    ["a null rule", { rule: null, priority: "Warning", time: "2026-03-02T09:12:44Z" }, /"rule"/],
    ["no priority", { rule: "x", time: "2026-03-02T09:12:44Z" }, /"priority"/],
    ["no time", { rule: "x", priority: "Warning" }, /"time"/],
    ["a time that is not RFC 3339", { rule: "x", priority: "Warning", time: "yesterday" }, /"time"/],
  ];
  for (const [name, raw, re] of refused) it(`refuses ${name}`, () => assert.throws(() => parseFalcoEvent(raw), (e: unknown) => e instanceof SignalFormatError && re.test((e as Error).message)));

  it("bounds what it keeps: long rule, output, many tags and fields, an over-long uuid", () => {
    const s = parseFalcoEvent({
      uuid: "u".repeat(500),
      rule: "r".repeat(5000),
      priority: "Critical",
      time: "2026-03-02T09:12:44Z",
      output: "o".repeat(100_000),
      tags: Array.from({ length: 500 }, (_, i) => `t${i}`),
      output_fields: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`f${i}`, "v".repeat(10_000)])),
    });
    assert.ok(s.rule.length <= 257 && s.output.length <= 1025);
    assert.equal(s.tags.length, 32);
    assert.equal(Object.keys(s.fields).length, 64);
    assert.ok(String(s.fields.f0).length <= 513);
    assert.match(s.id, /^falco:/, "an id that is not one is replaced by the digest");
  });

  it("refuses a bad entry of a batch on its own, with its index, and keeps the others", () => {
    const good = JSON.parse(fixtureText("falco/internal-drop.json"));
    const b = parseBatch([good, { rule: 1 }, good], parseFalcoEvent);
    assert.equal(b.signals.length, 2);
    assert.deepEqual(b.rejected.map((r) => r.index), [1]);
  });

  it("refuses a batch over the limit as a whole", () => {
    assert.throws(() => parseBatch(new Array(1001).fill({}), parseFalcoEvent), /at most 1000/);
  });
});

describe("signals: enforcer reports", () => {
  it("maps kinds to layers and priorities the enforcer does not choose", () => {
    const tls = parseEnforcerEvent({ id: "e1", kind: "TLSRefused", reason: "UnknownCA", time: "2026-03-02T09:14:00Z", count: 3, peer: "10.0.0.9" });
    assert.equal(tls.layer, "network");
    assert.equal(tls.priority, priorityRank("warning"));
    assert.equal(tls.count, 3);
    const api = parseEnforcerEvent({ kind: "APIDenied", reason: "Forbidden", time: "2026-03-02T09:14:00.5Z", method: "DELETE", path: "/orders/1", peer: "spiffe://cluster.local/ns/shop/sa/frontend", priority: "emergency" });
    assert.equal(api.layer, "api");
    assert.equal(api.priority, priorityRank("notice"), "a priority in the report is ignored");
    assert.deepEqual(api.fields, { reason: "Forbidden", peer: "spiffe://cluster.local/ns/shop/sa/frontend", method: "DELETE", path: "/orders/1" });
  });

  const refused: [string, unknown, RegExp][] = [
    ["an unknown kind", { kind: "Exploded", time: "2026-03-02T09:14:00Z" }, /"kind"/],
    ["a prototype key as kind", { kind: "toString", time: "2026-03-02T09:14:00Z" }, /"kind"/],
    ["a zero count", { kind: "APIDenied", time: "2026-03-02T09:14:00Z", count: 0 }, /"count"/],
    ["a fractional count", { kind: "APIDenied", time: "2026-03-02T09:14:00Z", count: 1.5 }, /"count"/],
    ["a huge count", { kind: "APIDenied", time: "2026-03-02T09:14:00Z", count: 1e12 }, /"count"/],
    ["no time", { kind: "APIDenied" }, /"time"/],
  ];
  for (const [name, raw, re] of refused) it(`refuses ${name}`, () => assert.throws(() => parseEnforcerEvent(raw), re));

  it("a report must be {events: [...]}", () => {
    assert.throws(() => readEnforcerReport([]), /"events"/);
    assert.throws(() => readEnforcerReport({ events: [], pod: "x" }), /"pod"/);
    assert.deepEqual(readEnforcerReport({ events: [], pod: { namespace: "a", name: "b" } }).pod, { namespace: "a", name: "b" });
  });
});
