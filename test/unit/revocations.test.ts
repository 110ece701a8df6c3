// Issue 11 item 5: the revocation list holds a mass quarantine (sharded, compact), enforcers
// fetch only what changed, and /v1/revocations needs a pod's token and names no pod.
import { strict as assert } from "node:assert";
import Fastify from "fastify";
import { KubeError } from "../../common/kube.ts";
import { createLogger } from "../../common/logger.ts";
import { authenticatePod } from "../../operator/ca/issuer.ts";
import { caRoutes } from "../../operator/ca/endpoint.ts";
import {
  addToShard, answer, decodeShard, encodeShard, MAX_TOMBSTONES, normalizeSerial, parseSince, pruneShard, REVOCATION_SHARDS, RevocationList, SHARD_MAX_BYTES, shardName, shardOf, SinceError, TOMBSTONE_MS, type Shard,
} from "../../operator/ca/revocations.ts";
import { applyRevocationAnswer, parseRevocationAnswer } from "../../enforcer/trust.ts";

const log = createLogger("test", { level: "silent" });
const serial = (i: number) => (0x7f00_0000_0000_0000_0000_0000_0000_0000n + BigInt(i) * 0x9e37_79b9_7f4a_7c15n).toString(16).padStart(32, "0") + "a1b2c3d4";
const HOUR = 3600_000;

/** An in-memory API server for ConfigMaps: get / create / replace with resourceVersion conflicts. */
function fakeKube() {
  const objects = new Map<string, any>();
  let rv = 1;
  const kube: any = {
    objects,
    writes: 0,
    async get(path: string) {
      const o = objects.get(path);
      if (!o) throw new KubeError(404, "NotFound", `${path} not found`);
      return structuredClone(o);
    },
    async create(path: string, body: any) {
      const full = `${path}/${body.metadata.name}`;
      if (objects.has(full)) throw new KubeError(409, "AlreadyExists", "exists");
      const o = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(rv++) } };
      objects.set(full, o);
      return structuredClone(o);
    },
    async replace(path: string, body: any) {
      const cur = objects.get(path);
      if (!cur) throw new KubeError(404, "NotFound", "gone");
      if (cur.metadata.resourceVersion !== body.metadata.resourceVersion) throw new KubeError(409, "Conflict", "conflict");
      const bytes = JSON.stringify(body).length;
      if (bytes > 1024 * 1024) throw new KubeError(413, "RequestEntityTooLarge", "too large");
      kube.writes++;
      const o = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(rv++) } };
      objects.set(path, o);
      return structuredClone(o);
    },
  };
  return kube;
}

describe("revocation list: compact shards (issue 11 item 5)", () => {
  it("normalizes serials and spreads them evenly over the shards", () => {
    assert.equal(normalizeSerial("00ABCDEF"), "abcdef");
    assert.equal(normalizeSerial("0"), "0");
    assert.equal(normalizeSerial("zz"), undefined);
    assert.equal(normalizeSerial("a".repeat(65)), undefined);
    const counts = new Array(REVOCATION_SHARDS).fill(0);
    for (let i = 0; i < 10_000; i++) counts[shardOf(normalizeSerial(serial(i))!)]++;
    assert.ok(Math.min(...counts) > 500 && Math.max(...counts) < 760, `even spread: ${counts}`);
    assert.equal(shardName(3), "tenet-revocations-3");
  });

  it("encodes a shard as compact lines and decodes it back; refuses malformed content", () => {
    const s: Shard = { version: 3, floor: 1, entries: [{ serial: "abc", notAfter: 1900000000, v: 2, reason: "Quarantined" }], removed: [{ serial: "def", v: 3, at: 1800000000 }] };
    const data = encodeShard(s);
    assert.equal(data.entries, "abc 1900000000 2 Quarantined");
    assert.deepEqual(decodeShard(data), s);
    assert.deepEqual(decodeShard(undefined), { version: 0, floor: 0, entries: [], removed: [] });
    for (const bad of [{ version: "x" }, { version: "1", entries: "zz 1 1 Q" }, { version: "1", entries: "abc 1 2 Q" }, { version: "1", entries: "abc 1 1 <script>" }, { version: "1", entries: "abc 1 1 Q extra" }, { version: "1", removed: "abc" }]) {
      assert.throws(() => decodeShard(bad as any), Error, JSON.stringify(bad));
    }
  });

  it("holds 10,000 revoked certificates (and many more) well under the 1 MiB object limit", () => {
    const shards: Shard[] = Array.from({ length: REVOCATION_SHARDS }, () => ({ version: 0, floor: 0, entries: [], removed: [] }));
    const notAfter = Math.floor(Date.now() / 1000) + 7 * 86400;
    for (let i = 0; i < 10_000; i++) {
      const s = normalizeSerial(serial(i))!;
      const k = shardOf(s);
      shards[k] = addToShard(shards[k], [{ serial: s, notAfter, v: 0, reason: "Quarantined" }])!;
    }
    const sizes = shards.map((s) => Object.values(encodeShard(s)).reduce((n, v) => n + Buffer.byteLength(v), 0));
    assert.equal(shards.reduce((n, s) => n + s.entries.length, 0), 10_000);
    assert.ok(Math.max(...sizes) < 64 * 1024, `largest shard ${Math.max(...sizes)} bytes`);
    // Capacity: one shard may hold about SHARD_MAX_BYTES / 62 entries.
    const perEntry = sizes.reduce((a, b) => a + b) / 10_000;
    assert.ok((SHARD_MAX_BYTES / perEntry) * REVOCATION_SHARDS > 200_000, `capacity ${Math.round((SHARD_MAX_BYTES / perEntry) * REVOCATION_SHARDS)}`);
  });

  it("prunes expired entries into tombstones, and old tombstones away (raising the floor)", () => {
    const now = Date.now();
    let s: Shard = addToShard({ version: 0, floor: 0, entries: [], removed: [] }, [
      { serial: "a1", notAfter: Math.floor(now / 1000) - 10, v: 0, reason: "Quarantined" },
      { serial: "b2", notAfter: Math.floor(now / 1000) + 3600, v: 0, reason: "Quarantined" },
    ])!;
    assert.equal(s.version, 1);
    s = pruneShard(s, now)!;
    assert.deepEqual(s.entries.map((e) => e.serial), ["b2"]);
    assert.deepEqual(s.removed.map((t) => [t.serial, t.v]), [["a1", 2]]);
    assert.equal(pruneShard(s, now), undefined, "nothing more to prune");
    const later = pruneShard(s, now + TOMBSTONE_MS + HOUR)!;
    assert.deepEqual(later.removed.map((t) => t.serial), ["b2"], "a1's tombstone is too old; b2 expired by then");
    assert.equal(later.floor, 2, "deltas from before version 2 now get the full list");
    assert.equal(later.entries.length, 0);
    // At most MAX_TOMBSTONES kept.
    const many: Shard = { version: 1, floor: 0, entries: Array.from({ length: MAX_TOMBSTONES + 10 }, (_, i) => ({ serial: (i + 1).toString(16), notAfter: 1, v: 1, reason: "Quarantined" })), removed: [] };
    const pruned = pruneShard(many, now)!;
    assert.equal(pruned.removed.length, MAX_TOMBSTONES);
    assert.equal(pruned.floor, 2);
  });
});

describe("revocation list: deltas since a version", () => {
  const build = () => {
    let shards: Shard[] = Array.from({ length: 4 }, () => ({ version: 0, floor: 0, entries: [], removed: [] }));
    const add = (serials: string[], notAfter = Math.floor(Date.now() / 1000) + 3600) => {
      for (const s of serials) {
        const k = shardOf(s, 4);
        shards[k] = addToShard(shards[k], [{ serial: s, notAfter, v: 0, reason: "Quarantined" }]) ?? shards[k];
      }
    };
    return { add, get: () => shards, set: (s: Shard[]) => (shards = s) };
  };

  it("answers the full list without since, and only what was added and removed since a version", () => {
    const l = build();
    l.add(["a1", "a2", "a3"]);
    const first = answer(l.get(), undefined);
    assert.ok(first.full);
    assert.deepEqual([...first.serials].sort(), ["a1", "a2", "a3"]);
    const v1 = parseSince(first.version, 4);
    l.add(["b1", "b2"]);
    const d = answer(l.get(), v1);
    assert.equal(d.full, false);
    assert.deepEqual(!d.full && [...d.added].sort(), ["b1", "b2"]);
    assert.deepEqual(!d.full && d.removed, []);
    assert.deepEqual(answer(l.get(), parseSince(d.version, 4)), { version: d.version, full: false, added: [], removed: [] }, "nothing since the latest version");
    // Expired entries leave: the delta says so.
    const v2 = parseSince(d.version, 4);
    l.set(l.get().map((s) => ({ ...s, entries: s.entries.map((e) => (e.serial === "a2" ? { ...e, notAfter: 1 } : e)) })));
    l.set(l.get().map((s) => pruneShard(s, Date.now()) ?? s));
    const d2 = answer(l.get(), v2);
    assert.deepEqual(!d2.full && [d2.added, d2.removed], [[], ["a2"]]);
    // An enforcer applying the answers ends with the same set as a full fetch.
    let have = applyRevocationAnswer(new Set(), parseRevocationAnswer(JSON.stringify(first)));
    have = applyRevocationAnswer(have, parseRevocationAnswer(JSON.stringify(d)));
    have = applyRevocationAnswer(have, parseRevocationAnswer(JSON.stringify(d2)));
    const full = answer(l.get(), undefined);
    assert.deepEqual([...have].sort(), full.full ? [...full.serials].sort() : null);
  });

  it("falls back to the full list when since is older than the tombstones, newer than this replica, or for other shards", () => {
    const l = build();
    l.add(["a1", "a2", "a3", "a4", "a5", "a6"]);
    const v = parseSince(answer(l.get(), undefined).version, 4)!;
    assert.equal(answer(l.get(), v.map((x) => x + 1)).full, true, "a replica behind the enforcer");
    l.set(l.get().map((s) => ({ ...s, floor: s.version })));
    assert.equal(answer(l.get(), v.map(() => 0)).full, true, "tombstones no longer reach back");
    assert.equal(parseSince("1.2.3", 4), undefined, "another shard layout: full list");
  });

  it("refuses a malformed since", () => {
    for (const bad of ["", "x", "1..2", "-1", "1.2.", "01", "1e3", "1.2.3.4 ", "9".repeat(16), "1.".repeat(20000) + "1"]) assert.throws(() => parseSince(bad), SinceError, JSON.stringify(bad.slice(0, 20)));
    assert.deepEqual(parseSince(new Array(REVOCATION_SHARDS).fill("7").join(".")), new Array(REVOCATION_SHARDS).fill(7));
  });

  it("the enforcer refuses a malformed answer (and so keeps its last good set)", () => {
    for (const bad of ["{}", '{"version":"1"}', '{"version":"1","full":true}', '{"version":"x","full":true,"serials":[]}', '{"version":"1","full":false,"added":[]}']) assert.throws(() => parseRevocationAnswer(bad), Error, bad);
    assert.deepEqual([...applyRevocationAnswer(new Set(["a"]), parseRevocationAnswer('{"version":"1","full":false,"added":["00B","zz"],"removed":["a"]}'))], ["b"]);
  });
});

describe("RevocationList against an API server", () => {
  it("revokes 10,000 serials into 16 shards, one write per touched shard, and prunes them", async () => {
    const kube = fakeKube();
    const list = new RevocationList(kube, log, "tenet-system");
    const notAfter = new Date(Date.now() + HOUR).toISOString();
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ serial: serial(i), notAfter, reason: "Quarantined" }));
    assert.equal(await list.revoke(entries), true);
    assert.equal(list.size, 10_000);
    assert.ok(entries.every((e) => list.isRevoked(e.serial.toUpperCase())));
    assert.equal(kube.writes, REVOCATION_SHARDS);
    for (let i = 0; i < REVOCATION_SHARDS; i++) {
      const cm = kube.objects.get(`/api/v1/namespaces/tenet-system/configmaps/${shardName(i)}`);
      assert.ok(JSON.stringify(cm).length < 100 * 1024, `shard ${i} is small`);
      assert.ok(!JSON.stringify(cm).includes("pod"), "no pod names");
    }
    assert.equal(await list.revoke(entries.slice(0, 10)), false, "already there: no write");
    assert.equal(await list.prune(new Date(Date.now() + 2 * HOUR)), true);
    assert.equal(list.size, 0);
  });

  it("never forgets a revocation: a malformed shard is neither used nor overwritten, a deleted one is written back", async () => {
    const kube = fakeKube();
    const list = new RevocationList(kube, log, "tenet-system");
    const s = serial(1);
    await list.revoke([{ serial: s, notAfter: new Date(Date.now() + HOUR).toISOString() }]);
    const path = `/api/v1/namespaces/tenet-system/configmaps/${shardName(shardOf(normalizeSerial(s)!))}`;
    const good = structuredClone(kube.objects.get(path));
    kube.objects.set(path, { ...good, data: { ...good.data, entries: "garbage" } });
    await assert.rejects(list.prune(new Date(Date.now() + 2 * HOUR)), /entries line 1 must be/);
    assert.equal(kube.objects.get(path).data.entries, "garbage", "left for a person to repair");
    assert.ok(list.isRevoked(s), "the last good state still holds it");
    kube.objects.delete(path);
    await list.revoke([{ serial: serial(2), notAfter: new Date(Date.now() + HOUR).toISOString() }]);
    await list.prune(); // touches every shard: the deleted one is written back
    const back = decodeShard(kube.objects.get(path).data);
    assert.ok(back.entries.some((e) => e.serial === normalizeSerial(s)), "written back from memory");
    assert.ok(back.version > decodeShard(good.data).version, "its version still grows");
  });
});

describe("GET /v1/revocations: authenticated, no pod names (hostile callers)", () => {
  const jwt = (claims: Record<string, unknown>) => [Buffer.from('{"alg":"RS256"}').toString("base64url"), Buffer.from(JSON.stringify(claims)).toString("base64url"), "c2ln"].join(".");
  const GOOD = jwt({ exp: Math.floor(Date.now() / 1000) + 600, sub: "good" });
  async function app() {
    const kube = fakeKube();
    const list = new RevocationList(kube, log, "tenet-system");
    await list.revoke([{ serial: "0abc", notAfter: new Date(Date.now() + HOUR).toISOString(), reason: "Quarantined" }]);
    const pod = { metadata: { name: "orders-0", namespace: "shop", uid: "uid-1", labels: {} }, spec: { serviceAccountName: "orders", containers: [] } };
    const reviews: any = {
      async create(_path: string, body: any) {
        if (body.spec.token !== GOOD) return { status: { authenticated: false, error: "invalid bearer token" } };
        return { status: { authenticated: true, audiences: ["tenet"], user: { username: "system:serviceaccount:shop:orders", extra: { "authentication.kubernetes.io/pod-name": ["orders-0"], "authentication.kubernetes.io/pod-uid": ["uid-1"] } } } };
      },
    };
    const pods: any = { get: (key: string) => (key === "shop/orders-0" ? pod : undefined) };
    const a = Fastify();
    caRoutes(a, { issue: async () => Promise.reject(new Error("unused")), bundle: () => undefined, revocations: list, authenticate: (t) => authenticatePod(t, { kube: reviews, pods }), metrics: {} as any, events: {} as any, issuance: {} as any, log });
    return { a, list };
  }

  it("refuses a caller without a token, with another scheme, or with a token the API server rejects: 401", async () => {
    const { a } = await app();
    for (const headers of [{}, { authorization: "Basic Zm9vOmJhcg==" }, { authorization: "Bearer" }, { authorization: `Bearer ${jwt({ exp: 9999999999 })}` }, { authorization: "Bearer not-a-jwt" }]) {
      const r = await a.inject({ url: "/v1/revocations", headers });
      assert.equal(r.statusCode, 401, JSON.stringify(headers));
      assert.ok(!r.body.includes("0abc"), "no serial to a stranger");
    }
  });

  it("serves the pod's enforcer serials only (no pod names, no reasons), deltas with since, 304 when unchanged, 400 for a malformed since", async () => {
    const { a, list } = await app();
    const auth = { authorization: `Bearer ${GOOD}` };
    const r = await a.inject({ url: "/v1/revocations", headers: auth });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(Object.keys(r.json()).sort(), ["full", "serials", "version"]);
    assert.deepEqual(r.json().serials, ["abc"]);
    assert.ok(!/orders|shop|Quarantined|pod/.test(r.body), r.body);
    const version = r.json().version;
    assert.equal(r.headers.etag, `"${version}"`);
    assert.equal((await a.inject({ url: `/v1/revocations?since=${version}`, headers: { ...auth, "if-none-match": `"${version}"` } })).statusCode, 304);
    await list.revoke([{ serial: "0def", notAfter: new Date(Date.now() + HOUR).toISOString(), reason: "Quarantined" }]);
    const d = await a.inject({ url: `/v1/revocations?since=${version}`, headers: { ...auth, "if-none-match": `"${version}"` } });
    assert.equal(d.statusCode, 200);
    assert.deepEqual(d.json(), { version: list.version, full: false, added: ["def"], removed: [] });
    for (const bad of ["x", "1..2", "-1", encodeURIComponent("1;2"), "1&since=2"]) {
      const b = await a.inject({ url: `/v1/revocations?since=${bad}`, headers: auth });
      assert.equal(b.statusCode, 400, bad);
      assert.equal(b.json().error.reason, "BadSince");
    }
  });
});

describe("the enforcer's TrustStore fetches only what changed", () => {
  it("fetches the full list once, then ?since= deltas with the pod's token; keeps the last good set on failures; tells listeners of changes", async () => {
    const { TrustStore } = await import("../../enforcer/trust.ts");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(`${tmpdir()}/trust-`);
    writeFileSync(`${dir}/bundle.pem`, `-----BEGIN CERTIFICATE-----\n${Buffer.from("not really a certificate").toString("base64")}\n-----END CERTIFICATE-----\n`);
    const calls: { url: string; etag?: string; auth?: boolean }[] = [];
    let next: { status: number; body: string } = { status: 200, body: JSON.stringify({ version: "1.0", full: true, serials: ["a1", "a2"] }) };
    const client: any = { get: async (url: string, opts: any) => (calls.push({ url, ...opts }), { ...next, etag: undefined }) };
    const trust = new TrustStore({ bundleFile: `${dir}/bundle.pem`, revocationsURL: "https://op.example/v1/revocations" }, client, log);
    let fired = 0;
    trust.onRevocationsChange(() => fired++);
    await trust.refresh();
    assert.equal(calls[0].url, "https://op.example/v1/revocations");
    assert.equal(calls[0].auth, true, "with the pod's token");
    assert.ok(trust.isRevoked("A1") && trust.isRevoked("a2"));
    assert.equal(fired, 1);
    next = { status: 200, body: JSON.stringify({ version: "2.0", full: false, added: ["b1"], removed: ["a1"] }) };
    await trust.refresh();
    assert.equal(calls[1].url, "https://op.example/v1/revocations?since=1.0");
    assert.equal(calls[1].etag, '"1.0"');
    assert.ok(!trust.isRevoked("a1") && trust.isRevoked("a2") && trust.isRevoked("b1"));
    assert.equal(fired, 2);
    next = { status: 304, body: "" };
    await trust.refresh();
    assert.equal(fired, 2, "304: nothing changed");
    for (const failure of [{ status: 503, body: "" }, { status: 200, body: "{not json" }, { status: 401, body: "{}" }]) {
      next = failure;
      await trust.refresh();
      assert.equal(trust.revokedCount, 2, `last good set kept after ${JSON.stringify(failure)}`);
    }
    assert.match(calls.at(-1)!.url, /since=2\.0$/, "the version held is kept too");
    next = { status: 400, body: "{}" };
    await trust.refresh();
    next = { status: 200, body: JSON.stringify({ version: "3.1", full: true, serials: ["c1"] }) };
    await trust.refresh();
    assert.equal(calls.at(-1)!.url, "https://op.example/v1/revocations", "after a 400, the full list");
    assert.deepEqual([trust.isRevoked("c1"), trust.revokedCount], [true, 1]);
    assert.equal(fired, 3);
  });
});
