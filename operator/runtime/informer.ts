// A list-watch cache that never gives up: it relists on 410 Gone, reconnects with backoff
// after any error (API server restarts included), restarts silent watches, re-announces
// every cached object after a reconnect and on a resync timer, and stores only the fields
// its transform keeps.
import type { Logger } from "../../common/logger.ts";
import { isGone, isNotFound, resourcePath, type Kube, type WatchEvent } from "../../common/kube.ts";
import type { KubeObject } from "../../common/objects.ts";
import { realClock, type Clock } from "./clock.ts";

export type ChangeType = "add" | "update" | "delete" | "resync";
export type ChangeHandler<T> = (type: ChangeType, obj: T, old?: T) => void;

export interface InformerOptions<T extends KubeObject> {
  name: string;
  resource: { group?: string; version: string; plural: string };
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Keep only the fields the controllers read: bounded memory at 10,000 pods. */
  transform?: (raw: any) => T;
  resyncMs?: number;
  watchTimeoutSeconds?: number;
  /** Retry delay after a failed list or watch: doubles from 250 ms up to this (default 30 s), with jitter. */
  maxBackoffMs?: number;
  /** Jitter source in [0, 1) (tests). */
  random?: () => number;
  clock?: Clock;
  onRestart?: (reason: string) => void;
  /** The resource may not be installed (another project's CRD): treat 404 as empty, re-check slowly. */
  optional?: boolean;
  /** Objects per page when relisting (default 500); large kinds use fewer, so a page's raw JSON stays small. */
  pageSize?: number;
}

const INITIAL_BACKOFF_MS = 250;
/** A watch open this long before it failed counts as a recovery: the next outage backs off from the start. */
const HEALTHY_WATCH_MS = 10_000;

export const objectKey = (o: KubeObject) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: ChangeHandler<T>[] = [];
  private resourceVersion = "";
  private abort?: AbortController;
  private stopped = false;
  private syncedOnce?: () => void;
  private resyncTimer?: unknown;
  readonly synced: Promise<void>;
  hasSynced = false;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly opts: InformerOptions<T>,
  ) {
    this.synced = new Promise((r) => (this.syncedOnce = r));
  }

  get name() {
    return this.opts.name;
  }

  onChange(h: ChangeHandler<T>) {
    this.handlers.push(h);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  listNamespace(namespace: string): T[] {
    const objs = this.byNamespace.get(namespace);
    return objs ? [...objs.values()] : [];
  }

  get size() {
    return this.cache.size;
  }

  /** Starts the loop; the returned promise resolves once the first list is in the cache. */
  start(): Promise<void> {
    void this.run();
    this.scheduleResync();
    return this.synced;
  }

  stop() {
    this.stopped = true;
    this.abort?.abort();
    if (this.resyncTimer) (this.opts.clock ?? realClock).clearTimeout(this.resyncTimer);
  }

  private get path() {
    return resourcePath(this.opts.resource, this.opts.namespace);
  }

  private async run() {
    const clock = this.opts.clock ?? realClock;
    const maxBackoff = this.opts.maxBackoffMs ?? 30_000;
    const random = this.opts.random ?? Math.random;
    let backoff = INITIAL_BACKOFF_MS;
    let recovering = false;
    while (!this.stopped) {
      let openedAt: number | undefined;
      try {
        if (!this.resourceVersion) await this.relist();
        await this.watchOnce(() => {
          openedAt = clock.now();
          // Back once the server accepts a watch again: one re-announcement per recovery, not per attempt.
          if (recovering) {
            recovering = false;
            this.log.info({ informer: this.name }, "watch re-established; re-announcing cached objects");
            this.announceAll();
          }
        });
        backoff = INITIAL_BACKOFF_MS; // the server ended a watch normally
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          this.log.info({ informer: this.name }, "resource version expired (410 Gone); relisting");
          this.resourceVersion = "";
          continue;
        }
        if (this.opts.optional && isNotFound(err)) {
          if (!this.hasSynced) {
            this.log.info({ informer: this.name, resource: this.path }, "resource not installed; treating it as empty and checking again every minute");
            this.hasSynced = true;
            this.syncedOnce?.();
          }
          this.resourceVersion = "";
          await new Promise<void>((r) => clock.setTimeout(r, 60_000));
          continue;
        }
        // A watch that was healthy for a while starts the next outage from the short delay again;
        // one that fails as soon as it opens keeps backing off.
        if (openedAt !== undefined && clock.now() - openedAt >= HEALTHY_WATCH_MS) backoff = INITIAL_BACKOFF_MS;
        recovering = true;
        // Jitter: between half and all of the current step, so replicas do not retry in lockstep.
        const delay = Math.round(backoff / 2 + (backoff / 2) * random());
        this.opts.onRestart?.(err instanceof Error ? err.message : String(err));
        this.log.warn({ informer: this.name, err: String((err as Error)?.message ?? err), retryInMs: delay }, "watch failed; retrying");
        await new Promise<void>((r) => clock.setTimeout(r, delay));
        backoff = Math.min(maxBackoff, backoff * 2);
      }
    }
  }

  private async relist() {
    // Page by page: each page is reduced by the transform and dropped before the next arrives,
    // so a relist of 10,000 pods never holds all of them raw (memory at scale, issue 15).
    const seen = new Set<string>();
    const list = await this.kube.listPages(this.path, { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector }, (items) => {
      for (const raw of items) seen.add(this.upsert(raw));
    }, this.opts.pageSize);
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) this.remove(key, old);
    }
    this.resourceVersion = list.resourceVersion ?? "";
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.log.debug({ informer: this.name, objects: this.cache.size }, "cache synced");
      this.syncedOnce?.();
    }
  }

  /** One watch call: resolves when the server closes it, rejects on errors; `onOpen` once the server accepted it. */
  private async watchOnce(onOpen?: () => void) {
    const clock = this.opts.clock ?? realClock;
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
    this.abort = new AbortController();
    const abort = this.abort;
    // A watch can go silent (half-open connection): abort it if the server's own timeout passed.
    let watchdog = clock.setTimeout(() => abort.abort(), (timeoutSeconds + 30) * 1000);
    try {
      await this.kube.watch(
        this.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        (e) => this.apply(e),
        abort.signal,
        onOpen,
      );
    } catch (err) {
      if (abort.signal.aborted && !this.stopped) return; // watchdog: start a fresh watch
      throw err;
    } finally {
      clock.clearTimeout(watchdog);
    }
  }

  private apply(e: WatchEvent) {
    const rv = e.object?.metadata?.resourceVersion;
    if (e.type === "BOOKMARK") {
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (e.type === "DELETED") {
      const key = objectKey(e.object);
      const old = this.cache.get(key);
      this.remove(key, old ?? this.transform(e.object));
    } else {
      this.upsert(e.object);
    }
    if (rv) this.resourceVersion = rv;
  }

  private transform(raw: any): T {
    return this.opts.transform ? this.opts.transform(raw) : (raw as T);
  }

  private upsert(raw: any): string {
    const obj = this.transform(raw);
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return key;
    this.cache.set(key, obj);
    const ns = obj.metadata.namespace ?? "";
    let objs = this.byNamespace.get(ns);
    if (!objs) this.byNamespace.set(ns, (objs = new Map()));
    objs.set(key, obj);
    this.emit(old ? "update" : "add", obj, old);
    return key;
  }

  private remove(key: string, old: T | undefined) {
    if (!this.cache.delete(key) || !old) return;
    const ns = old.metadata.namespace ?? "";
    const set = this.byNamespace.get(ns);
    set?.delete(key);
    if (set?.size === 0) this.byNamespace.delete(ns);
    this.emit("delete", old);
  }

  private announceAll() {
    for (const obj of this.cache.values()) this.emit("resync", obj);
  }

  private scheduleResync() {
    const ms = this.opts.resyncMs;
    if (!ms || this.stopped) return;
    const clock = this.opts.clock ?? realClock;
    this.resyncTimer = clock.setTimeout(() => {
      if (this.hasSynced) this.announceAll();
      this.scheduleResync();
    }, ms);
  }

  private emit(type: ChangeType, obj: T, old?: T) {
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.log.error({ informer: this.name, err: String(err) }, "event handler failed");
      }
    }
  }
}
