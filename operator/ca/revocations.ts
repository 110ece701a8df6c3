// The revocation list: serial numbers of certificates that peers must refuse (quarantined
// workloads). Stored in REVOCATION_SHARDS ConfigMaps in Tenet's namespace
// (tenet-revocations-0 … tenet-revocations-15), a serial going to the shard its SHA-256 picks, so
// that a mass quarantine fits: each entry is one compact line (serial, notAfter, version, reason
// code, ~60 bytes), each shard is kept under SHARD_MAX_BYTES (a write that would pass it fails
// loudly): about 250,000 revoked certificates in all. Human-readable reasons (which pod, which
// rule) go to Events and logs, never into what enforcers fetch; no pod name is stored here.
//
// Every shard carries a version, bumped by each write (read-modify-write on its resourceVersion,
// so each shard's history is linear whoever writes), each entry the version that added it, and
// recent removals (pruned entries) are kept as tombstones. The list's version is the shards'
// versions joined by dots ("3.0.12…"): each part only grows, so an enforcer that sends the version
// it has (`GET /v1/revocations?since=…`) gets the serials added and removed since then, and 304
// when nothing changed. Entries leave the list once the certificate has expired anyway.
import { createHash } from "node:crypto";
import type { Logger } from "../../common/logger.ts";
import { isAlreadyExists, isNotFound, RETRY, retryOnConflict, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { Informer } from "../runtime/informer.ts";
import type { KubeObject } from "../../common/objects.ts";
import { COMPONENT_LABEL, PART_OF_TENET, REVOCATIONS_CONFIGMAP } from "../../common/names.ts";

export const REVOCATION_SHARDS = 16;
/** Well under the API server's 1 MiB object limit (metadata, managedFields). */
export const SHARD_MAX_BYTES = 900 * 1024;
/** Tombstones (removed serials) kept per shard for delta fetches: at most this many, for at most TOMBSTONE_MS. */
export const MAX_TOMBSTONES = 4000;
export const TOMBSTONE_MS = 24 * 3600_000;
export const REVOCATIONS_COMPONENT = "revocations";
/** The pre-sharding single ConfigMap (key revocations.json): read once at start and merged in. */
export const LEGACY_REVOCATIONS_CONFIGMAP = REVOCATIONS_CONFIGMAP;

export const shardName = (i: number) => `${REVOCATIONS_CONFIGMAP}-${i}`;

export interface RevocationEntry {
  serial: string;
  /** When the certificate expires; the entry is pruned after this. */
  notAfter: string;
  /** A short code (letters, at most 32): "Quarantined". Why in words goes to Events and logs. */
  reason?: string;
}

/** Lowercase hex without leading zeros, as enforcers compare serials; undefined when not a hex serial. */
export function normalizeSerial(serial: string): string | undefined {
  if (typeof serial !== "string" || !/^[0-9a-fA-F]{1,64}$/.test(serial)) return undefined;
  return serial.toLowerCase().replace(/^0+(?=.)/, "");
}

/** The shard a (normalized) serial lives in: spread evenly whatever the serials look like. */
export function shardOf(serial: string, shards = REVOCATION_SHARDS): number {
  return createHash("sha256").update(serial).digest().readUInt32BE(0) % shards;
}

interface Entry {
  serial: string;
  notAfter: number; // seconds
  v: number;
  reason: string;
}
interface Tombstone {
  serial: string;
  v: number;
  at: number; // seconds, when removed
}

/** One shard's content. Entries and tombstones are kept in version order. */
export interface Shard {
  version: number;
  /** Tombstones with a version ≤ floor were discarded: deltas from before it cannot be computed. */
  floor: number;
  entries: Entry[];
  removed: Tombstone[];
}

const emptyShard = (): Shard => ({ version: 0, floor: 0, entries: [], removed: [] });
const REASON = /^[A-Za-z]{1,32}$/;
const UINT = /^(0|[1-9][0-9]{0,14})$/;

export function encodeShard(s: Shard): Record<string, string> {
  return {
    version: String(s.version),
    floor: String(s.floor),
    entries: s.entries.map((e) => `${e.serial} ${e.notAfter} ${e.v} ${e.reason}`).join("\n"),
    removed: s.removed.map((t) => `${t.serial} ${t.v} ${t.at}`).join("\n"),
  };
}

/** The shard in a ConfigMap's data; throws on anything malformed (the caller keeps its last good state). */
export function decodeShard(data: Record<string, string> | undefined): Shard {
  const d = data ?? {};
  const num = (what: string, v: string | undefined) => {
    if (v === undefined || !UINT.test(v)) throw new Error(`${what} must be a non-negative integer, not ${JSON.stringify(String(v).slice(0, 40))}`);
    return Number(v);
  };
  const version = num("version", d.version ?? "0");
  const floor = num("floor", d.floor ?? "0");
  const lines = (text: string | undefined) => (text ? text.split("\n").filter((l) => l.length > 0) : []);
  const entries = lines(d.entries).map((line, i) => {
    const [serial, notAfter, v, reason, ...rest] = line.split(" ");
    const s = normalizeSerial(serial);
    if (!s || rest.length || reason === undefined || !REASON.test(reason)) throw new Error(`entries line ${i + 1} must be "<hex serial> <notAfter seconds> <version> <reason code>"`);
    return { serial: s, notAfter: num(`entries line ${i + 1} notAfter`, notAfter), v: num(`entries line ${i + 1} version`, v), reason };
  });
  const removed = lines(d.removed).map((line, i) => {
    const [serial, v, at, ...rest] = line.split(" ");
    const s = normalizeSerial(serial);
    if (!s || rest.length) throw new Error(`removed line ${i + 1} must be "<hex serial> <version> <removed at seconds>"`);
    return { serial: s, v: num(`removed line ${i + 1} version`, v), at: num(`removed line ${i + 1} time`, at) };
  });
  for (const e of entries) if (e.v > version) throw new Error(`entry ${e.serial} has version ${e.v}, newer than the shard's ${version}`);
  entries.sort((a, b) => a.v - b.v);
  removed.sort((a, b) => a.v - b.v);
  return { version, floor, entries, removed };
}

/** Adds entries (those not there yet) as one new version; undefined when nothing changes. */
export function addToShard(s: Shard, add: Entry[]): Shard | undefined {
  const have = new Set(s.entries.map((e) => e.serial));
  const fresh: Entry[] = [];
  for (const e of add) {
    if (have.has(e.serial)) continue;
    have.add(e.serial);
    fresh.push(e);
  }
  if (!fresh.length) return undefined;
  const version = s.version + 1;
  return { ...s, version, entries: [...s.entries, ...fresh.map((e) => ({ ...e, v: version }))], removed: s.removed.filter((t) => !have.has(t.serial)) };
}

/** Drops entries expired at `now` (tombstones for them), and old tombstones; undefined when nothing changes. */
export function pruneShard(s: Shard, nowMs: number): Shard | undefined {
  const nowSec = Math.floor(nowMs / 1000);
  const keep = s.entries.filter((e) => e.notAfter > nowSec);
  const gone = s.entries.filter((e) => e.notAfter <= nowSec);
  const oldTombstones = s.removed.some((t) => t.at * 1000 < nowMs - TOMBSTONE_MS);
  if (!gone.length && !oldTombstones) return undefined;
  const version = gone.length ? s.version + 1 : s.version;
  let removed = [...s.removed, ...gone.map((e) => ({ serial: e.serial, v: version, at: nowSec }))];
  let floor = s.floor;
  const cut = removed.filter((t) => t.at * 1000 < nowMs - TOMBSTONE_MS).length;
  const drop = Math.max(cut, removed.length - MAX_TOMBSTONES);
  if (drop > 0) {
    floor = Math.max(floor, ...removed.slice(0, drop).map((t) => t.v));
    removed = removed.slice(drop);
  }
  return { version, floor, entries: keep, removed };
}

/** The list's version: the shards' versions joined by dots. */
export const versionOf = (shards: readonly Shard[]) => shards.map((s) => s.version).join(".");

export class SinceError extends Error {}

/** `since` as one number per shard; undefined when it is for another number of shards (a full list answers it); throws SinceError when malformed. */
export function parseSince(since: string, shards = REVOCATION_SHARDS): number[] | undefined {
  if (since.length > 20 * 1024 || !/^(0|[1-9][0-9]{0,14})(\.(0|[1-9][0-9]{0,14}))*$/.test(since)) throw new SinceError("since must be a version this endpoint served: non-negative integers joined by dots");
  const parts = since.split(".").map(Number);
  return parts.length === shards ? parts : undefined;
}

export type RevocationAnswer = { version: string; full: true; serials: string[] } | { version: string; full: false; added: string[]; removed: string[] };

/**
 * What an enforcer at version `since` needs: the serials added and removed since then, or the
 * full list when there is no `since`, it is for another shard layout, older than a shard's
 * tombstones reach, or newer than this replica has seen (a replica behind, or a list rebuilt).
 */
export function answer(shards: readonly Shard[], since: number[] | undefined): RevocationAnswer {
  const version = versionOf(shards);
  const full = (): RevocationAnswer => ({ version, full: true, serials: shards.flatMap((s) => s.entries.map((e) => e.serial)) });
  if (!since || since.length !== shards.length) return full();
  const added: string[] = [];
  const removed: string[] = [];
  for (const [i, s] of shards.entries()) {
    const from = since[i];
    if (from === s.version) continue;
    if (from > s.version || from < s.floor) return full();
    for (let j = firstAfter(s.entries, from); j < s.entries.length; j++) added.push(s.entries[j].serial);
    const present = new Set<string>();
    const tomb = firstAfter(s.removed, from);
    if (tomb < s.removed.length) for (const e of s.entries) present.add(e.serial);
    for (let j = tomb; j < s.removed.length; j++) if (!present.has(s.removed[j].serial)) removed.push(s.removed[j].serial);
  }
  return { version, full: false, added, removed };
}

/** Index of the first item with v > from (items in version order). */
function firstAfter(items: readonly { v: number }[], from: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].v > from) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

export class RevocationList {
  private shards: Shard[];
  private serials = new Set<string>();
  private fullCache?: { version: string; body: string };
  private informer?: Informer<ConfigMapObject>;
  /** Writes from this process, one at a time (posture batches, pruning). */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly namespace: string,
    readonly shardCount = REVOCATION_SHARDS,
  ) {
    this.shards = Array.from({ length: shardCount }, emptyShard);
  }

  /** The list's version (also its ETag, quoted). */
  get version() {
    return versionOf(this.shards);
  }
  get etag() {
    return `"${this.version}"`;
  }
  get size() {
    return this.serials.size;
  }
  isRevoked(serial: string) {
    const s = normalizeSerial(serial);
    return s !== undefined && this.serials.has(s);
  }

  /** The answer to `GET /v1/revocations[?since=…]` (the full list is kept serialized per version). */
  answer(since: number[] | undefined): string {
    const a = answer(this.shards, since);
    if (!a.full) return JSON.stringify(a);
    if (this.fullCache?.version !== a.version) this.fullCache = { version: a.version, body: JSON.stringify(a) };
    return this.fullCache.body;
  }

  private path(i: number) {
    return resourcePath(Resources.configMaps, this.namespace, shardName(i));
  }

  async start() {
    await Promise.all(this.shards.map((_, i) => this.create(i, emptyShard())));
    this.informer = new Informer<ConfigMapObject>(this.kube, this.log, {
      name: "revocations",
      resource: Resources.configMaps,
      namespace: this.namespace,
      labelSelector: `${COMPONENT_LABEL}=${REVOCATIONS_COMPONENT}`,
    });
    // A deleted shard keeps its last good content here (and is written back from it): never forget.
    this.informer.onChange((type, cm) => type !== "delete" && this.accept(cm));
    await this.informer.start();
    await this.migrateLegacy();
  }

  stop() {
    this.informer?.stop();
  }

  private async create(i: number, shard: Shard) {
    try {
      await this.kube.create(resourcePath(Resources.configMaps, this.namespace), this.configMap(i, shard));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  /** Entries of the single pre-sharding ConfigMap, if there is one, go into the shards. */
  private async migrateLegacy() {
    let cm: ConfigMapObject;
    try {
      cm = await this.kube.get(resourcePath(Resources.configMaps, this.namespace, LEGACY_REVOCATIONS_CONFIGMAP));
    } catch (err) {
      if (isNotFound(err)) return;
      this.log.warn({ err: (err as Error).message }, "cannot read the pre-sharding revocation list; not migrated");
      return;
    }
    let entries: RevocationEntry[];
    try {
      const doc = JSON.parse(cm.data?.["revocations.json"] ?? '{"entries":[]}');
      entries = (Array.isArray(doc?.entries) ? doc.entries : []).filter((e: any) => typeof e?.serial === "string" && typeof e?.notAfter === "string").map((e: any) => ({ serial: e.serial, notAfter: e.notAfter, reason: "Migrated" }));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, "the pre-sharding revocation list is malformed; not migrated");
      return;
    }
    const live = entries.filter((e) => Date.parse(e.notAfter) > Date.now() && !this.isRevoked(e.serial));
    if (live.length) {
      await this.revoke(live);
      this.log.info({ entries: live.length }, "pre-sharding revocation list merged into the shards");
    }
  }

  private configMap(i: number, shard: Shard, base?: ConfigMapObject) {
    return {
      ...(base ?? {}),
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { ...(base?.metadata ?? { name: shardName(i), namespace: this.namespace }), labels: { ...PART_OF_TENET, [COMPONENT_LABEL]: REVOCATIONS_COMPONENT } },
      data: encodeShard(shard),
    };
  }

  private accept(cm: ConfigMapObject) {
    const m = /^(.*)-(\d+)$/.exec(cm.metadata.name ?? "");
    const i = m && m[1] === REVOCATIONS_CONFIGMAP ? Number(m[2]) : -1;
    if (!(i >= 0 && i < this.shardCount && cm.metadata.name === shardName(i))) return;
    try {
      const shard = decodeShard(cm.data);
      // Each shard's version only grows; an older one seen late (a stale watch event) is ignored.
      if (shard.version < this.shards[i].version) return;
      this.shards[i] = shard;
      this.serials = new Set(this.shards.flatMap((s) => s.entries.map((e) => e.serial)));
    } catch (err) {
      // Keep enforcing the last good list rather than forgetting revocations.
      this.log.error({ configMap: `${this.namespace}/${cm.metadata.name}`, err: (err as Error).message }, "revocation list shard is malformed; keeping the last good version");
    }
  }

  /** Read-modify-write of one shard with its resourceVersion; retried on conflict. */
  private updateShard(i: number, change: (s: Shard) => Shard | undefined): Promise<boolean> {
    return retryOnConflict(async () => {
      let cm: ConfigMapObject;
      try {
        cm = await this.kube.get(this.path(i));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // Deleted: written back from what this replica last saw, its version still growing.
        const last = this.shards[i];
        await this.create(i, { ...last, version: last.version + 1 });
        return RETRY;
      }
      const next = change(decodeShard(cm.data));
      if (!next) return false;
      const body = this.configMap(i, next, cm);
      const bytes = Object.values(body.data).reduce((n, v) => n + Buffer.byteLength(v), 0);
      if (bytes > SHARD_MAX_BYTES) throw new Error(`revocation list shard ${shardName(i)} would hold ${bytes} bytes (limit ${SHARD_MAX_BYTES}): not written`);
      this.accept(await this.kube.replace(this.path(i), body));
      return true;
    }, `revocation list shard ${shardName(i)}: too many concurrent updates`);
  }

  /** One write per touched shard, shards in parallel; writes from this process one at a time. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  revoke(entries: RevocationEntry[]): Promise<boolean> {
    const byShard = new Map<number, Entry[]>();
    for (const e of entries) {
      const serial = normalizeSerial(e.serial);
      const notAfter = Date.parse(e.notAfter);
      if (!serial || Number.isNaN(notAfter)) throw new Error(`cannot revoke ${JSON.stringify(String(e.serial).slice(0, 80))}: a hex serial and an RFC 3339 notAfter are required`);
      const reason = e.reason && REASON.test(e.reason) ? e.reason : "Unspecified";
      const i = shardOf(serial, this.shardCount);
      const list = byShard.get(i) ?? [];
      list.push({ serial, notAfter: Math.ceil(notAfter / 1000), v: 0, reason });
      byShard.set(i, list);
    }
    return this.serialized(async () => {
      return settled(await Promise.allSettled([...byShard].map(([i, add]) => this.updateShard(i, (s) => addToShard(s, add)))));
    });
  }

  /** Leader housekeeping: drop entries whose certificates have expired (and old tombstones). */
  prune(now = new Date()): Promise<boolean> {
    return this.serialized(async () => {
      return settled(await Promise.allSettled(this.shards.map((_, i) => this.updateShard(i, (s) => pruneShard(s, now.getTime())))));
    });
  }
}

/** Every shard's write has finished: the first failure, or whether any shard changed. */
function settled(results: PromiseSettledResult<boolean>[]): boolean {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.some((r) => r.status === "fulfilled" && r.value);
}
