// The admission caches (admission/patch-cache.ts, verdict-cache.ts): a hit answers
// byte for byte what a fresh computation answers, anything the answer depends on (pod, config,
// rules, scans, the clock) invalidates it, and the caches stay within their bounds.
import { strict as assert } from "node:assert";
import { readdirSync } from "node:fs";
import path from "node:path";
import { parseImage } from "../../common/images.ts";
import { InjectionError, injectPod } from "../../admission/inject.ts";
import { jsonPatch } from "../../admission/patch.ts";
import { Lru } from "../../admission/lru.ts";
import { mutate } from "../../admission/mutate.ts";
import { PatchCache } from "../../admission/patch-cache.ts";
import { validate, type ValidateDeps } from "../../admission/validate.ts";
import { VerdictCache } from "../../admission/verdict-cache.ts";
import type { AdmissionRequest } from "../../operator/admission/transport.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import type { Vulnerability } from "../../scans/records.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import { jsonFixture } from "../harness/fixtures.ts";
import { testInjectionConfig as cfg } from "../harness/injection.ts";

const GOLDEN = path.resolve(import.meta.dirname, "../golden/inject");
const goldenPods = readdirSync(GOLDEN).filter((f) => f.endsWith(".input.json")).map((f) => ({ name: f, pod: jsonFixture(`../golden/inject/${f}`) as any }));
const encode = (ops: unknown) => Buffer.from(JSON.stringify(ops)).toString("base64");
const podRequest = (pod: any, uid = "u-1"): AdmissionRequest => ({ uid, kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, namespace: "demo", operation: "CREATE", object: pod });

describe("admission caches: the LRU", () => {
  it("holds at most max entries and evicts the least recently used", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    assert.equal(lru.get("a"), 1); // a is now the most recent
    lru.set("c", 3);
    assert.equal(lru.size, 2);
    assert.equal(lru.get("b"), undefined);
    assert.equal(lru.get("a"), 1);
    assert.equal(lru.get("c"), 3);
    assert.throws(() => new Lru(0), /at least one entry/);
  });
});

describe("admission caches: injection patches", () => {
  it("a hit is byte-identical to a fresh computation, for every golden pod", () => {
    const cache = new PatchCache();
    for (const { name, pod } of goldenPods) {
      let fresh: unknown;
      try {
        fresh = jsonPatch(pod, injectPod(pod, cfg));
      } catch (err) {
        assert.ok(err instanceof InjectionError, name);
        assert.throws(() => cache.patchFor(structuredClone(pod), cfg), InjectionError, name);
        continue;
      }
      const first = cache.patchFor(structuredClone(pod), cfg);
      const size = cache.size;
      cache.patchFor(structuredClone(pod), cfg);
      assert.equal(cache.size, size + 1, `${name}: kept from its second sighting`);
      const hits = cache.hits;
      const third = cache.patchFor(structuredClone(pod), cfg);
      assert.equal(cache.hits, hits + 1, `${name}: the third request hits`);
      assert.equal(third.encoded, encode(fresh), name);
      assert.equal(first.encoded, third.encoded, name);
      assert.deepEqual(third.ops, fresh, name);
    }
  });

  it("mutate answers the same with and without the cache, and shares no mutable state between requests", () => {
    const patches = new PatchCache();
    const deps = { namespaceLabels: () => ({ "tenet.dev/inject": "enabled" }), config: cfg };
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    const plain = mutate(podRequest(structuredClone(pod)), deps);
    const answers = [];
    for (let i = 0; i < 4; i++) {
      const cached = mutate(podRequest(structuredClone(pod), `u-${i}`), { ...deps, patches });
      assert.equal(cached.encodedPatch, encode(plain.patch));
      assert.deepEqual(cached.patch, plain.patch);
      answers.push(cached.patch);
    }
    assert.equal(patches.hits, 2, "kept at the second sighting, hit from the third");
    assert.ok(!Object.isFrozen(answers[0]), "a patch seen once is not kept, so not frozen");
    assert.notEqual(answers[0], answers[1]);
    assert.equal(answers[2], answers[1], "shared from the second sighting on");
    assert.ok(Object.isFrozen(answers[1]) && Object.isFrozen((answers[1] as any)[0]), "a shared patch cannot be edited by one request for the next");
  });

  it("keyed by the transport's review key, a hit answers what the pod's own computation does; another key is another entry", () => {
    const patches = new PatchCache();
    const deps = { namespaceLabels: () => ({ "tenet.dev/inject": "enabled" }), config: cfg, patches };
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    const plain = mutate(podRequest(structuredClone(pod)), { ...deps, patches: undefined });
    mutate(podRequest(structuredClone(pod), "u-0"), deps, "0,review-a"); // first sighting: noted only
    const a = mutate(podRequest(structuredClone(pod), "u-1"), deps, "0,review-a");
    const b = mutate(podRequest(structuredClone(pod), "u-2"), deps, "0,review-a");
    assert.equal(patches.hits, 1);
    assert.equal(b.encodedPatch, encode(plain.patch));
    assert.equal(a.encodedPatch, b.encodedPatch);
    const other = structuredClone(pod);
    other.metadata.annotations = { ...other.metadata.annotations, "tenet.dev/app-port": "9999" };
    const c = mutate(podRequest(other, "u-3"), deps, "0,review-b");
    assert.equal(patches.hits, 1, "a new review key and a new pod miss");
    assert.match(Buffer.from(c.encodedPatch!, "base64").toString(), /"9999"/);
    // Another review of the same pod (say, another user's): met at the pod's key, then by its own.
    const d = mutate(podRequest(structuredClone(pod), "u-4"), deps, "0,review-c");
    const e = mutate(podRequest(structuredClone(pod), "u-5"), deps, "0,review-c");
    assert.equal(patches.hits, 3);
    assert.equal(d.encodedPatch, a.encodedPatch);
    assert.equal(e.encodedPatch, a.encodedPatch);
  });

  it("any change to the pod is a new entry: a forged pod-template-hash gets its own patch", () => {
    const cache = new PatchCache();
    const pod = structuredClone(goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod);
    pod.metadata.labels = { ...pod.metadata.labels, "pod-template-hash": "abc" };
    const honest = cache.patchFor(pod, cfg);
    // Same template-hash label, different app port: must not reuse the honest pod's patch.
    const forged = structuredClone(pod);
    forged.metadata.annotations = { ...forged.metadata.annotations, "tenet.dev/app-port": "9999" };
    const got = cache.patchFor(forged, cfg);
    assert.notEqual(got.encoded, honest.encoded);
    assert.equal(got.encoded, encode(jsonPatch(forged, injectPod(forged, cfg))));
    assert.match(Buffer.from(got.encoded, "base64").toString(), /"9999"/);
  });

  it("a configuration change invalidates: the new image and version are in the next patch", () => {
    const cache = new PatchCache();
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    const before = cache.patchFor(structuredClone(pod), cfg);
    const next = { ...cfg, image: "tenet.local/tenet-enforcer:v2", version: "0.2.0" };
    const after = cache.patchFor(structuredClone(pod), next);
    assert.equal(cache.misses, 2);
    assert.notEqual(after.encoded, before.encoded);
    assert.equal(after.encoded, encode(jsonPatch(pod, injectPod(pod, next))));
  });

  it("an edit of the configuration in place invalidates too", () => {
    const cache = new PatchCache();
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    const mine = structuredClone(cfg);
    cache.patchFor(structuredClone(pod), mine);
    mine.healthPort = 15099;
    const after = cache.patchFor(structuredClone(pod), mine);
    assert.equal(cache.hits, 0);
    assert.match(Buffer.from(after.encoded, "base64").toString(), /15099/);
  });

  it("a pod too long to key verbatim is keyed by its digest and still hits exactly", () => {
    const cache = new PatchCache();
    const pod = structuredClone(goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod);
    pod.metadata.annotations = { ...pod.metadata.annotations, note: "x".repeat(20_000) };
    cache.patchFor(structuredClone(pod), cfg);
    const a = cache.patchFor(structuredClone(pod), cfg);
    const b = cache.patchFor(structuredClone(pod), cfg);
    assert.equal(cache.hits, 1);
    assert.equal(b.encoded, a.encoded);
    assert.ok(cache.weight < 20_000, `held ${cache.weight} characters: the digest, not the pod`);
    pod.metadata.annotations.note = "y".repeat(20_000);
    cache.patchFor(pod, cfg);
    assert.equal(cache.hits, 1, "a different long pod misses");
  });

  it("stays within its bound of characters", () => {
    const cache = new PatchCache(1000, 20_000);
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    for (let i = 0; i < 50; i++) {
      const p = structuredClone(pod);
      p.metadata.generateName = `w-${i}-`;
      cache.patchFor(p, cfg);
      cache.patchFor(p, cfg);
    }
    assert.ok(cache.weight <= 20_000 && cache.size > 0 && cache.size < 50, `${cache.size} entries, ${cache.weight} characters`);
  });

  it("stays within its bound", () => {
    const cache = new PatchCache(4);
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    for (let i = 0; i < 20; i++) {
      const p = structuredClone(pod);
      p.metadata.generateName = `w-${i}-`;
      cache.patchFor(p, cfg);
      cache.patchFor(p, cfg);
    }
    assert.equal(cache.size, 4);
  });
});

// ---- verdicts ----

const NOW = new Date("2025-06-01T12:00:00Z");
const crit = (n: number): Vulnerability[] => Array.from({ length: n }, (_, i) => ({ id: `CVE-2024-000${i + 1}`, severity: "CRITICAL" as const, pkg: "openssl", installedVersion: "1.0", fixedVersion: "1.1" }));
function scanIndex(criticals = 3): ScanIndex {
  const idx = new ScanIndex();
  idx.upsert("vr/demo/orders", { image: parseImage("ghcr.io/acme/orders:1.0"), source: "VulnerabilityReport demo/orders", vulnerabilities: crit(criticals) });
  return idx;
}
const orders = (name = "orders-7c9f8-abcde") => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "demo", labels: { app: "orders" } },
  spec: { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image: "ghcr.io/acme/orders:1.0", securityContext: { allowPrivilegeEscalation: false } }] },
});
const rule = (spec: any, name = "baseline"): RuleRef => ({ namespace: "demo", name, spec: { selector: {}, ...spec } });

describe("admission caches: RuntimeRule verdicts", () => {
  const deps = (rules: RuleRef[], scans: ScanIndex, verdicts?: VerdictCache, now = NOW): ValidateDeps => ({ rules: () => rules, scans, now: () => now, injection: cfg, verdicts });

  it("a hit answers exactly what an evaluation answers: compliant, with warnings, denied", () => {
    const scans = scanIndex();
    const cases: RuleRef[][] = [
      [rule({ vulnerabilities: { thresholds: { critical: 5 } } })],
      [rule({ enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } })],
      [rule({ vulnerabilities: { thresholds: { critical: 0 } } })],
    ];
    for (const rules of cases) {
      const verdicts = new VerdictCache();
      for (const name of ["orders-1", "orders-2", "orders-3"]) {
        const fresh = validate(podRequest(orders(name)), deps(rules, scans));
        const cached = validate(podRequest(orders(name)), deps(rules, scans, verdicts));
        assert.deepEqual(cached, fresh);
      }
    }
  });

  it("by review key: a repeat hits without the spec's JSON, pods with other names meet at the spec's key, a changed rule still invalidates", () => {
    const scans = scanIndex();
    const verdicts = new VerdictCache();
    let rules = [rule({ enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } })];
    const fresh = validate(podRequest(orders("orders-1")), deps(rules, scans));
    assert.deepEqual(validate(podRequest(orders("orders-1")), deps(rules, scans, verdicts), "0,review-1"), fresh, "first sighting: evaluated, noted");
    assert.deepEqual(validate(podRequest(orders("orders-1")), deps(rules, scans, verdicts), "0,review-1"), fresh);
    assert.deepEqual(validate(podRequest(orders("orders-1"), "u-2"), deps(rules, scans, verdicts), "0,review-1"), fresh);
    assert.deepEqual(validate(podRequest(orders("orders-2")), deps(rules, scans, verdicts), "0,review-2"), validate(podRequest(orders("orders-2")), deps(rules, scans)));
    assert.deepEqual([verdicts.hits, verdicts.misses], [2, 2]);
    rules = [rule({ vulnerabilities: { thresholds: { critical: 0 } } })];
    const denied = validate(podRequest(orders("orders-1"), "u-3"), deps(rules, scans, verdicts), "0,review-1");
    assert.equal(denied.allowed, false, "the alias is checked against the rules like any entry");
    assert.equal(validate(podRequest(orders("orders-1"), "u-4"), deps(rules, scans, verdicts), "0,review-1").allowed, false, "and a denial is not kept under it");
  });

  it("a denial is never served from the cache: its message names the pod", () => {
    const verdicts = new VerdictCache();
    const rules = [rule({ vulnerabilities: { thresholds: { critical: 0 } } })];
    const a = validate(podRequest(orders("orders-a")), deps(rules, scanIndex(), verdicts));
    const b = validate(podRequest(orders("orders-b")), deps(rules, scanIndex(), verdicts));
    assert.match(a.message!, /orders-a/);
    assert.match(b.message!, /orders-b/);
    assert.equal(verdicts.size, 0);
  });

  it("warnings are reported on every admission, hit or not", () => {
    const verdicts = new VerdictCache();
    const reported: string[] = [];
    const rules = [rule({ enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } })];
    const scans = scanIndex();
    for (const name of ["o-0", "o-1", "o-2"]) validate(podRequest(orders(name)), { ...deps(rules, scans, verdicts), report: (_r, owner, v) => reported.push(`${owner}: ${v.rules[0].message}`) });
    assert.equal(verdicts.hits, 1);
    assert.equal(reported.length, 3);
    assert.match(reported[2], /^Pod demo\/o-2: RuntimeRule demo\/baseline \(audit\) would refuse it/);
  });

  it("a changed rule, a changed scan and an expired exemption each invalidate", () => {
    const verdicts = new VerdictCache();
    const scans = scanIndex(3);
    const lenient = [rule({ vulnerabilities: { thresholds: { critical: 5 } } })];
    assert.equal(validate(podRequest(orders()), deps(lenient, scans, verdicts)).allowed, true);
    // The informer replaces a changed RuntimeRule: a new spec object.
    const strict = [rule({ vulnerabilities: { thresholds: { critical: 0 } } })];
    assert.equal(validate(podRequest(orders()), deps(strict, scans, verdicts)).allowed, false);
    // A new report for the image.
    assert.equal(validate(podRequest(orders()), deps(lenient, scans, verdicts)).allowed, true);
    scans.upsert("vr/demo/orders", { image: parseImage("ghcr.io/acme/orders:1.0"), source: "VulnerabilityReport demo/orders", vulnerabilities: crit(9) });
    assert.equal(validate(podRequest(orders()), deps(lenient, scans, verdicts)).allowed, false);
    // An exemption that expires between two admissions.
    const expires = new Date(NOW.getTime() + 60_000);
    const exempt = [rule({ vulnerabilities: { thresholds: { critical: 0 }, exemptions: [{ id: "CVE-2024-0001", expires: expires.toISOString(), reason: "fix rolling out" }, { id: "CVE-2024-0002", expires: "2099-01-01T00:00:00Z", reason: "r" }, { id: "CVE-2024-0003", expires: "2099-01-01T00:00:00Z", reason: "r" }] } })];
    const three = scanIndex(3);
    assert.equal(validate(podRequest(orders()), deps(exempt, three, verdicts, NOW)).allowed, true);
    assert.equal(validate(podRequest(orders()), deps(exempt, three, verdicts, new Date(expires.getTime() - 1))).allowed, true);
    const hits = verdicts.hits;
    assert.equal(validate(podRequest(orders()), deps(exempt, three, verdicts, expires)).allowed, false);
    assert.equal(verdicts.hits, hits, "at the expiry instant the entry is not used");
  });

  it("a changed pod spec or label is a new entry", () => {
    const verdicts = new VerdictCache();
    const scans = scanIndex();
    const rules = [rule({ selector: { matchLabels: { app: "orders" } }, podSecurity: { allowPrivileged: false } })];
    assert.equal(validate(podRequest(orders()), deps(rules, scans, verdicts)).allowed, true);
    const priv = orders();
    (priv.spec.containers[0].securityContext as any).privileged = true;
    assert.equal(validate(podRequest(priv), deps(rules, scans, verdicts)).allowed, false);
    const other = orders();
    other.metadata.labels = { app: "billing" };
    (other.spec.containers[0].securityContext as any).privileged = true;
    assert.equal(validate(podRequest(other), deps(rules, scans, verdicts)).reason, "Compliant");
  });

  it("stays within its bound", () => {
    const verdicts = new VerdictCache(3);
    const rules = [rule({ vulnerabilities: { thresholds: { critical: 5 } } })];
    for (let i = 0; i < 10; i++) {
      const p = orders();
      p.metadata.labels = { app: "orders", n: String(i) } as any;
      validate(podRequest(p), deps(rules, scanIndex(), verdicts));
      validate(podRequest(p), deps(rules, scanIndex(), verdicts));
    }
    assert.equal(verdicts.size, 3);
  });
});

// ---- the ServiceAccount token volume (admission/token-volume.ts) ----

/** `pod` as the API server's ServiceAccount admission plugin leaves it: its token volume, named `name`, mounted in every container. */
function withToken(pod: any, name: string): any {
  // A golden pod that has one already gets it renamed.
  const had = (pod.spec.volumes ?? []).find((v: any) => v.name.startsWith("kube-api-access-"))?.name;
  if (had) return JSON.parse(JSON.stringify(pod).replaceAll(had, name));
  const p = structuredClone(pod);
  const mount = { name, readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" };
  for (const c of [...p.spec.containers, ...(p.spec.initContainers ?? [])]) c.volumeMounts = [...(c.volumeMounts ?? []), { ...mount }];
  p.spec.volumes = [
    ...(p.spec.volumes ?? []),
    {
      name,
      projected: {
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
        ],
        defaultMode: 420,
      },
    },
  ];
  return p;
}
const TOKENS = ["kube-api-access-7xk2q", "kube-api-access-b9zt4", "kube-api-access-mm5rd"];

describe("admission caches: the random ServiceAccount token volume", () => {
  it("replicas that differ only in their token volume's name share a patch, byte-identical to a fresh computation (golden pods)", () => {
    let shared = 0;
    for (const { name, pod } of goldenPods) {
      const cache = new PatchCache();
      const fresh = (p: any) => encode(jsonPatch(p, injectPod(p, cfg)));
      const [a, b, c] = TOKENS.map((t) => withToken(pod, t));
      try {
        fresh(a);
      } catch (err) {
        assert.ok(err instanceof InjectionError, name);
        continue;
      }
      assert.equal(cache.patchFor(a, cfg).encoded, fresh(a), name);
      assert.equal(cache.patchFor(b, cfg).encoded, fresh(b), name);
      const hits = cache.hits;
      assert.equal(cache.patchFor(c, cfg).encoded, fresh(c), `${name}: a hit answers what the pod's own computation does`);
      assert.equal(cache.hits, hits + 1, `${name}: the third replica hits`);
      shared++;
    }
    assert.ok(shared >= 5, `${shared} golden pods exercised`);
  });

  it("a pod that differs in anything but that name gets its own patch", () => {
    const pod = goldenPods.find((p) => p.name === "deployment-pod.input.json")!.pod;
    const t = "kube-api-access-zz9qp";
    const variants: [string, (p: any) => void][] = [
      ["another mount path", (p) => (p.spec.containers[0].volumeMounts.at(-1).mountPath = "/etc/token")],
      ["a writable mount", (p) => (p.spec.containers[0].volumeMounts.at(-1).readOnly = false)],
      ["a container without the mount", (p) => p.spec.containers[0].volumeMounts.pop()],
      ["another token audience", (p) => (p.spec.volumes.at(-1).projected.sources[0].serviceAccountToken.audience = "vault")],
      ["another projection source", (p) => p.spec.volumes.at(-1).projected.sources.push({ secret: { name: "creds" } })],
      ["the name elsewhere too", (p) => (p.metadata.annotations = { ...p.metadata.annotations, note: t })],
      ["the placeholder in the pod", (p) => (p.metadata.annotations = { ...p.metadata.annotations, note: "kube-api-access-<token>" })],
      ["a label", (p) => (p.metadata.labels = { ...p.metadata.labels, extra: "1" })],
      ["an app port", (p) => (p.metadata.annotations = { ...p.metadata.annotations, "tenet.dev/app-port": "9999" })],
    ];
    for (const [what, edit] of variants) {
      const cache = new PatchCache();
      cache.patchFor(withToken(pod, TOKENS[0]), cfg);
      cache.patchFor(withToken(pod, TOKENS[1]), cfg);
      const other = withToken(pod, t);
      edit(other);
      const hits = cache.hits;
      const got = cache.patchFor(other, cfg);
      assert.equal(cache.hits, hits, `${what}: its own entry`);
      assert.equal(got.encoded, encode(jsonPatch(other, injectPod(other, cfg))), what);
      // The control: the same pod unedited, with yet another token volume name, hits.
      cache.patchFor(withToken(pod, t), cfg);
      assert.equal(cache.hits, hits + 1, `${what}: the unedited replica still hits`);
    }
  });

  it("replicas share a verdict whatever their token volume and generated names; another spec does not", () => {
    const scans = scanIndex();
    const rules = [rule({ enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } })];
    const d: ValidateDeps = { rules: () => rules, scans, now: () => NOW, injection: cfg, verdicts: new VerdictCache() };
    const plain: ValidateDeps = { ...d, verdicts: undefined };
    TOKENS.forEach((t, i) => {
      const p = withToken(orders(`orders-7c9f8-${i}`), t);
      assert.deepEqual(validate(podRequest(p), d), validate(podRequest(p), plain));
    });
    assert.equal(d.verdicts!.hits, 1, "the third replica hits");
    const privileged = withToken(orders("orders-7c9f8-x"), "kube-api-access-qq4tt");
    privileged.spec.containers[0].volumeMounts[0].mountPath = "/elsewhere";
    validate(podRequest(privileged), d);
    assert.equal(d.verdicts!.hits, 1, "a spec that differs in a mount is its own entry");
  });
});
