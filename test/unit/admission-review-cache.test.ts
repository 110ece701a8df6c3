// The AdmissionReview parse path (operator/admission/review-cache.ts, operator/server/json.ts,
// reviewAnswer in operator/admission/transport.ts): a cached review is exactly what parsing its
// text gives, no two texts that differ outside request.uid share an entry, nothing one request
// receives can be edited for the next, and hostile, malformed and oversized bodies get the same
// clear refusals on the cached path as on the first parse.
import { strict as assert } from "node:assert";
import Fastify from "fastify";
import { pino } from "pino";
import { Registry } from "prom-client";
import { buildSecureServer } from "../../operator/server/app.ts";
import { MAX_JSON_DEPTH, scanJSON, strictJSON } from "../../operator/server/json.ts";
import { MAX_CACHED_REVIEW, MAX_SAME_PRINT, REVIEW_CACHE_SIZE, REVIEW_CACHE_WEIGHT, REVIEW_PREFIXES, ReviewCache, splitUid } from "../../operator/admission/review-cache.ts";
import { AdmissionMetrics, admissionRoute, reviewAnswer, type AdmissionHandler, type AdmissionResult } from "../../operator/admission/transport.ts";
import { leafFor, newCA } from "../harness/enforcer.ts";

const tls = leafFor(newCA(), "spiffe://cluster.local/ns/tenet-system/sa/tenet-operator");
function server(opts: { handler: AdmissionHandler }) {
  const log = pino({ level: "silent" });
  const app = buildSecureServer(log, tls);
  const registry = new Registry();
  admissionRoute(app, { path: "/validate", webhook: "validate", log, metrics: new AdmissionMetrics(registry), handler: opts.handler });
  return { app, registry };
}

/** A ReplicaSet-made pod's review, as the webhook benchmark sends it. */
function podReview(uid: string) {
  const container = (name: string, i: number) => ({ name, image: `ghcr.io/acme/svc-${i}:1.0.0`, ports: [{ containerPort: 8080 + i, protocol: "TCP" }], env: [{ name: "LOG_LEVEL", value: "info" }] });
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: "shop",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { generateName: "orders-7c9f8d6b5-", namespace: "shop", labels: { app: "orders", "pod-template-hash": "7c9f8d6b5" }, annotations: { "tenet.dev/commit": "9f1c2ab" } as Record<string, string> },
        spec: { serviceAccountName: "orders", containers: [container("app", 1), container("worker", 2)] },
      },
      oldObject: null,
      dryRun: false,
    },
  };
}

const parse = strictJSON(Fastify());
const apiServerText = (uid: string, pod?: (p: any) => void) => {
  const r = podReview(uid);
  pod?.(r.request.object);
  // The API server writes kind before apiVersion (Go struct order of TypeMeta).
  return JSON.stringify({ kind: r.kind, apiVersion: r.apiVersion, request: r.request });
};
const clientText = (uid: string) => JSON.stringify(podReview(uid));

describe("admission review cache: keys", () => {
  it("keys the API server's shape and the apiVersion-first shape by the text without request.uid", () => {
    for (const text of [apiServerText("u-1"), clientText("u-1")]) {
      const s = splitUid(text)!;
      assert.equal(s.uid, "u-1");
      assert.ok(!s.rest.includes("u-1"), "the uid is not in the key");
    }
    assert.deepEqual(splitUid(apiServerText("u-1"))!.rest, splitUid(apiServerText("u-2"))!.rest);
    assert.notEqual(splitUid(apiServerText("u-1"))!.prefix, splitUid(clientText("u-1"))!.prefix);
    const cache = new ReviewCache(parse);
    const twice = (make: (uid: string) => string) => (cache.review(make("u-1")), cache.review(make("u-2")).key);
    const [a, b] = [twice(apiServerText), twice(clientText)];
    assert.ok(a && b && a !== b, "the two prefixes never share a key");
  });

  it("does not key any other shape: whitespace, another member order, a BOM, a uid that is not a string", () => {
    const text = clientText("u-1");
    for (const other of [JSON.stringify(podReview("u-1"), null, 1), `\uFEFF${text}`, text.replace('"request":{"uid":"u-1",', '"request":{"operation":"CREATE","uid":"u-1",'), text.replace('"uid":"u-1"', '"uid":42'), text.replace('"uid":"u-1"', '"uid":"u\u0001"')]) {
      assert.equal(splitUid(other), undefined, other.slice(0, 120));
    }
  });

  it("reads escaped uids as JSON does", () => {
    const s = splitUid(`${REVIEW_PREFIXES[1]}"\\u0061b\\\\\\"c","kind":{}}}`)!;
    assert.equal(s.uid, 'ab\\"c');
    assert.equal(s.prefix, 1);
    assert.equal(s.rest, ',"kind":{}}}');
  });
});

describe("admission review cache: hits", () => {
  it("a hit is deep-equal to parsing the text, with the request's own uid, for both shapes", () => {
    const cache = new ReviewCache(parse);
    for (const make of [apiServerText, clientText]) {
      for (let i = 0; i < 5; i++) {
        const text = make(`uid-${i}`);
        const got = cache.review(text);
        assert.deepEqual(got.body, JSON.parse(text));
        assert.equal((got.body as any).request.uid, `uid-${i}`);
      }
    }
    assert.equal(cache.misses, 4, "a template's first review is noted, its second kept");
    assert.equal(cache.hits, 6);
  });

  it("any byte of the pod changes the key: a forged pod-template-hash gets its own entry", () => {
    const cache = new ReviewCache(parse);
    const honest = apiServerText("u-1");
    const forged = apiServerText("u-2", (p) => (p.spec.containers[0].image = "evil.example/x:1"));
    assert.ok(honest.includes('"pod-template-hash":"7c9f8d6b5"') && forged.includes('"pod-template-hash":"7c9f8d6b5"'));
    const a = (cache.review(honest), cache.review(honest));
    const b = (cache.review(forged), cache.review(forged));
    assert.ok(a.key && b.key && a.key !== b.key);
    assert.equal((b.body as any).request.object.spec.containers[0].image, "evil.example/x:1");
    assert.equal(cache.hits, 0, "each second review is that template's own first keep");
  });

  it("a duplicate uid member is parsed as JSON does (the last wins) and never kept", () => {
    const cache = new ReviewCache(parse);
    const text = clientText("first").replace('"operation":"CREATE"', '"operation":"CREATE","uid":"last"');
    for (let i = 0; i < 3; i++) {
      const got = cache.review(text);
      assert.equal((got.body as any).request.uid, "last");
      assert.equal(got.key, undefined);
    }
    assert.equal(cache.size, 0);
    // The same text with another first uid: still "last", still parsed.
    assert.equal((cache.review(text.replace('"uid":"first"', '"uid":"other"')).body as any).request.uid, "last");
  });

  it("other duplicate keys are parsed as JSON does, cached or not", () => {
    const cache = new ReviewCache(parse);
    const dup = (uid: string) => clientText(uid).replace('"dryRun":false', '"dryRun":false,"dryRun":true').replace('"namespace":"shop"', '"namespace":"shop","namespace":"other"');
    for (const uid of ["a", "b", "c"]) {
      const got = cache.review(dup(uid)).body as any;
      assert.deepEqual(got, JSON.parse(dup(uid)));
      assert.equal(got.request.dryRun, true);
      assert.equal(got.request.namespace, "other");
    }
    assert.equal(cache.hits, 1);
  });

  it("what a request receives cannot be edited for the next: the pod is frozen, the envelope its own", () => {
    const cache = new ReviewCache(parse);
    cache.review(apiServerText("u-0"));
    const first = cache.review(apiServerText("u-1")).body as any;
    const second = cache.review(apiServerText("u-2")).body as any;
    assert.notEqual(first, second);
    assert.notEqual(first.request, second.request);
    assert.equal(first.request.uid, "u-1");
    assert.equal(second.request.uid, "u-2");
    assert.throws(() => {
      "use strict";
      second.request.object.metadata.labels.app = "forged";
    }, TypeError);
    assert.throws(() => second.request.object.spec.containers.push({}), TypeError);
    assert.equal((cache.review(apiServerText("u-3")).body as any).request.object.metadata.labels.app, "orders");
  });

  it("texts with the same fingerprint are told apart in full, and at most MAX_SAME_PRINT of them are kept", () => {
    // No samples: every text of one length shares a fingerprint, as an attacker would want.
    const cache = new ReviewCache(parse, REVIEW_CACHE_SIZE, REVIEW_CACHE_WEIGHT, []);
    const name = (i: number) => `orders-${String(i).padStart(2, "0")}-`;
    const variant = (i: number, uid: string) => apiServerText(uid, (p) => (p.metadata.generateName = name(i)));
    const n = MAX_SAME_PRINT + 4;
    for (let i = 0; i < n; i++) {
      assert.equal((cache.review(variant(i, `a${i}`)).body as any).request.object.metadata.generateName, name(i));
      assert.equal(cache.size, Math.min(i, MAX_SAME_PRINT), "a text is kept from its own second sighting, not its fingerprint's");
      assert.equal((cache.review(variant(i, `c${i}`)).body as any).request.object.metadata.generateName, name(i));
    }
    assert.equal(cache.size, MAX_SAME_PRINT);
    for (let i = n - 1; i >= 0; i--) {
      const got = cache.review(variant(i, `b${i}`)).body as any;
      assert.deepEqual(got, JSON.parse(variant(i, `b${i}`)), `variant ${i}`);
    }
    assert.equal(cache.hits, MAX_SAME_PRINT, "the last ones kept hit, each as itself");
  });

  it("reviews that each come once are not kept, however few bytes they differ in (a random token volume name)", () => {
    const cache = new ReviewCache(parse);
    for (let i = 0; i < 50; i++) {
      const text = apiServerText(`u${i}`, (p) => (p.metadata.annotations.token = `kube-api-access-${String(i).padStart(5, "0")}`));
      assert.deepEqual(cache.review(text).body, JSON.parse(text));
    }
    assert.deepEqual([cache.size, cache.hits, cache.misses], [0, 0, 50]);
  });

  it("a review with a pod's ServiceAccount token volume is not kept, even when it repeats", () => {
    const cache = new ReviewCache(parse);
    const text = (uid: string) => apiServerText(uid, (p) => (p.spec.volumes = [{ name: "kube-api-access-x7k2p", projected: { sources: [] } }]));
    for (const uid of ["a", "b", "c"]) assert.deepEqual(cache.review(text(uid)).body, JSON.parse(text(uid)));
    assert.deepEqual([cache.size, cache.hits, cache.misses], [0, 0, 3]);
  });

  it("stays within its bounds; texts over MAX_CACHED_REVIEW are parsed every time", () => {
    const cache = new ReviewCache(parse, 4);
    for (let i = 0; i < 40; i++) for (const uid of ["u", "v"]) cache.review(apiServerText(uid, (p) => (p.metadata.generateName = `w-${i}-`)));
    assert.ok(cache.size >= 4 && cache.size <= 4 * MAX_SAME_PRINT, `${cache.size} texts under 4 fingerprints`);
    const light = new ReviewCache(parse, 1000, 20_000);
    for (let i = 0; i < 20; i++) for (const uid of ["u", "v"]) light.review(apiServerText(uid, (p) => (p.metadata.generateName = `w-${i}-`)));
    assert.ok(light.size > 0 && light.size < 20, `${light.size} entries, each weighing 4 per character, within 20,000`);
    const big = (uid: string) => apiServerText(uid, (p) => (p.metadata.annotations.note = "x".repeat(MAX_CACHED_REVIEW)));
    const huge = new ReviewCache(parse);
    assert.equal((huge.review(big("a")).body as any).request.uid, "a");
    assert.equal(huge.review(big("b")).key, undefined);
    assert.equal(huge.size, 0);
  });
});

describe("strict JSON scan", () => {
  it("flags every string that is or may be a __proto__ or constructor key, and nothing ordinary", () => {
    for (const s of ['{"__proto__":1}', '{"constructor":{"prototype":1}}', '{"\\u005f_proto__":1}', '{"\\u0063onstructor":1}', '{"c\\u006Fnstructor":1}']) assert.equal(scanJSON(s).suspect, true, s);
    for (const s of ['{"namespace":"containerd"}', '{"a":"\\"quoted\\""}', '{"protocol":"TCP"}', '{"a":"x\\u0041y"}']) assert.equal(scanJSON(s).suspect, false, s);
    assert.equal(scanJSON(clientText("u-1")).suspect, false);
  });

  it("counts depth outside strings and stops past the limit", () => {
    assert.equal(scanJSON('{"a":["[[[{"]}').depth, 2);
    assert.equal(scanJSON("[".repeat(1000)).depth, MAX_JSON_DEPTH + 1);
  });
});

describe("admission transport: the parse path over the real server", () => {
  const ok = () => ({ allowed: true, reason: "Compliant" });
  const post = (app: any, payload: string, contentType = "application/json") => app.inject({ method: "POST", url: "/validate", headers: { "content-type": contentType }, payload });

  it("answers a cached review with its own uid, and hands the handler the same key for the same template", async () => {
    const keys: (string | undefined)[] = [];
    const { app } = server({ handler: (req, key) => (keys.push(key), { allowed: true, reason: `uid ${req.uid.length}` }) });
    for (const uid of ["u-0", "u-1", "u-2", "u-3"]) {
      const res = await post(app, apiServerText(uid));
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
      assert.deepEqual(res.json(), { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, allowed: true } });
    }
    await post(app, apiServerText("u-4", (p) => (p.metadata.labels.app = "other")));
    await post(app, JSON.stringify(podReview("u-5"), null, 2));
    assert.equal(keys[0], undefined, "a template's first review is only noted");
    assert.ok(keys[1] && keys[1] === keys[2] && keys[2] === keys[3], "one template, one key");
    assert.equal(keys[4], undefined, "another template's first review");
    assert.equal(keys[5], undefined, "a text of another shape has no key");
  });

  it("reports how reviews were parsed, and counts requests, on the metrics page", async () => {
    const { app, registry } = server({ handler: ok });
    for (const uid of ["u-1", "u-2", "u-3"]) await post(app, apiServerText(uid));
    await post(app, JSON.stringify(podReview("u-4"), null, 1));
    const text = await registry.metrics();
    assert.match(text, /tenet_admission_review_cache_total\{webhook="validate",result="hit"\} 1\n/);
    assert.match(text, /tenet_admission_review_cache_total\{webhook="validate",result="miss"\} 2\n/);
    assert.match(text, /tenet_admission_review_cache_total\{webhook="validate",result="unkeyed"\} 1\n/);
    assert.match(text, /tenet_admission_requests_total\{webhook="validate",kind="Pod",decision="allowed",reason="Compliant"\} 4\n/);
    await post(app, apiServerText("u-5"));
    assert.match(await registry.metrics(), /tenet_admission_requests_total\{webhook="validate",kind="Pod",decision="allowed",reason="Compliant"\} 5\n/, "read twice: totals, not increments");
  });

  it("refuses hostile bodies the same way the first time and after the template is cached", async () => {
    const { app } = server({ handler: ok });
    for (const uid of ["warm-1", "warm-2"]) assert.equal((await post(app, apiServerText(uid))).statusCode, 200);
    const text = apiServerText("u-1");
    const cases: [string, string, number, RegExp][] = [
      ["a truncated body", text.slice(0, text.length - 3), 400, /not valid JSON/],
      ["a truncated body that ends in the uid", text.slice(0, REVIEW_PREFIXES[0].length + 4), 400, /not valid JSON/],
      ["deep nesting in the pod", text.replace('"spec":{', `"spec":{"x":${"[".repeat(200)}${"]".repeat(200)},`), 400, /nested \d+ levels deep; the limit is 64/],
      ["a __proto__ key", text.replace('"spec":{', '"spec":{"__proto__":{"allowed":true},'), 400, /__proto__/],
      ["an escaped constructor.prototype", text.replace('"spec":{', '"spec":{"\\u0063onstructor":{"prototype":{"allowed":true}},'), 400, /constructor/],
      ["an empty uid", text.replace('"uid":"u-1"', '"uid":""'), 400, /request.uid is missing/],
      ["a raw control character in the uid", text.replace('"uid":"u-1"', '"uid":"u\u0001"'), 400, /not valid JSON/],
      ["an empty body", "", 400, /empty/],
    ];
    for (let round = 0; round < 2; round++) {
      for (const [what, payload, status, message] of cases) {
        const res = await post(app, payload);
        assert.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 200)}`);
        assert.match(res.json().error.message, message, what);
      }
    }
    assert.equal(({} as any).allowed, undefined, "nothing was polluted");
  });

  it("accepts a duplicate-key review as JSON.parse reads it, and huge strings up to the body limit", async () => {
    const seen: any[] = [];
    const { app } = server({ handler: (req) => (seen.push(req), ok()) });
    const dup = apiServerText("first").replace('"operation":"CREATE"', '"operation":"CREATE","uid":"last"');
    const res = await post(app, dup);
    assert.equal(res.json().response.uid, "last");
    const big = apiServerText("big", (p) => (p.metadata.annotations.note = "n".repeat(2 * 1024 * 1024)));
    const answer = await post(app, big);
    assert.equal(answer.statusCode, 200);
    assert.equal(seen.at(-1).object.metadata.annotations.note.length, 2 * 1024 * 1024);
    const over = await post(app, apiServerText("over", (p) => (p.metadata.annotations.note = "n".repeat(4 * 1024 * 1024))));
    assert.equal(over.statusCode, 413);
    assert.equal(over.json().error.reason, "BodyTooLarge");
  });

  it("refuses a wrong content type with 415", async () => {
    const { app } = server({ handler: ok });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/yaml"]) {
      const res = await post(app, apiServerText("u-1"), type);
      assert.equal(res.statusCode, 415, type);
      assert.equal(res.json().error.reason, "UnsupportedMediaType");
    }
  });
});

describe("admission transport: the answer's JSON", () => {
  it("is the text JSON.stringify gives for the answer object, for every kind of result", () => {
    const results: AdmissionResult[] = [
      { allowed: true, reason: "Compliant" },
      { allowed: true, reason: "AdmittedWithWarnings", warnings: ['image "x" is not scanned', "ü \u2028 \"quoted\" \\ back", "w".repeat(1000)] },
      { allowed: false, reason: "RuntimeRuleViolation", message: 'Pod shop/x: "critical" \n\t\u0000 ✓', warnings: ["one"] },
      { allowed: false, reason: "Denied" },
      { allowed: true, reason: "Injected", patch: [{ op: "add", path: "/spec/initContainers", value: [{ name: "tenet-enforcer" }] }] },
      { allowed: true, reason: "Injected", patch: [{ op: "add", path: "/a", value: 1 }], encodedPatch: Buffer.from('[{"op":"add","path":"/a","value":1}]').toString("base64") },
      { allowed: true, reason: "NotAPodCreate", patch: [], warnings: [] },
      { allowed: true, reason: "Reinjected", patch: Object.freeze([Object.freeze({ op: "add", path: "/b", value: "ü" })]) as unknown[], encodedPatch: Buffer.from('[{"op":"add","path":"/b","value":"ü"}]').toString("base64"), warnings: ["w"] },
    ];
    for (const uid of ["u-1", 'quo"te\\ \u0007 ü', ""]) {
      for (const r of results) {
        const response: Record<string, unknown> = { uid, allowed: r.allowed };
        if (!r.allowed) response.status = { code: 403, reason: "Forbidden", message: r.message ?? "denied by Tenet" };
        if (r.patch?.length) {
          response.patchType = "JSONPatch";
          response.patch = Buffer.from(JSON.stringify(r.patch)).toString("base64");
        }
        if (r.warnings?.length) response.warnings = r.warnings.map((w) => w.slice(0, 400));
        assert.equal(String(reviewAnswer(uid, r)), JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }), `${r.reason} ${uid}`);
      }
    }
  });
});
