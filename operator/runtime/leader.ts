// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the holder renews
// every retry period; others take over when the record has not changed for a lease duration
// (measured on their own clock, so clock skew between nodes does not matter). A leader that
// cannot renew within the renew deadline steps down; one that shuts down releases the Lease
// so the next replica takes over at once.
import type { Logger } from "../../common/logger.ts";
import { isAlreadyExists, isConflict, isNotFound, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { RuntimeMetrics } from "./metrics.ts";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** Lease times are metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
const microTime = (d = new Date()) => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export class LeaderElector {
  private leader = false;
  private stopped = false;
  private observed = "";
  private observedAt = 0;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly opts: LeaderElectionOptions,
    private readonly metrics?: RuntimeMetrics,
  ) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
  }

  get isLeader() {
    return this.leader;
  }

  private get path() {
    return resourcePath(Resources.leases, this.opts.namespace, this.opts.name);
  }

  /**
   * Campaigns until elected, then renews. `onStoppedLeading` fires if renewal fails past the
   * deadline; the caller should then stop all leader work (we exit the process, like client-go).
   */
  async run(onStartedLeading: () => void, onStoppedLeading: () => void): Promise<void> {
    const log = this.log.child({ lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity });
    log.info("campaigning for leadership");
    while (!this.stopped && !(await this.attempt(log, Date.now() + this.renewDeadlineMs))) await sleep(this.retryPeriodMs);
    if (this.stopped) return;
    this.setLeader(true);
    log.info("became leader");
    onStartedLeading();
    while (!this.stopped) {
      await sleep(this.retryPeriodMs);
      if (this.stopped) break;
      // As client-go: each renewal round has renewDeadline to succeed, and that deadline bounds every
      // request in it (a stalled API server aborts the request at the deadline, not at a socket
      // timeout), so a leader that cannot renew stops within retryPeriod + renewDeadline of its
      // last renewal — before its lease (leaseDuration, longer) runs out for the others.
      const deadline = Date.now() + this.renewDeadlineMs;
      let renewed = false;
      while (!this.stopped && !renewed && Date.now() < deadline) {
        renewed = await this.attempt(log, deadline);
        if (!renewed && !this.stopped) await sleep(Math.max(0, Math.min(this.retryPeriodMs, deadline - Date.now())));
      }
      if (!renewed && !this.stopped) {
        this.setLeader(false);
        log.error({ renewDeadlineMs: this.renewDeadlineMs }, "lost leadership: could not renew the lease in time");
        onStoppedLeading();
        return;
      }
    }
  }

  /** One tryAcquireOrRenew whose requests are aborted at `deadline`. */
  private async attempt(log: Logger, deadline: number): Promise<boolean> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(0, deadline - Date.now()));
    try {
      return await this.tryAcquireOrRenew(log, abort.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops campaigning and, if leading, releases the Lease so another replica takes over now. */
  async release(): Promise<void> {
    this.stopped = true;
    if (!this.leader) return;
    this.setLeader(false);
    try {
      const lease = await this.kube.get(this.path);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime() };
      await this.kube.replace(this.path, lease);
      this.log.info("released leadership");
    } catch (err) {
      this.log.warn({ err: String(err) }, "could not release the lease; the next leader waits for it to expire");
    }
  }

  private setLeader(v: boolean) {
    this.leader = v;
    this.metrics?.leader.set(v ? 1 : 0);
  }

  private async tryAcquireOrRenew(log: Logger, signal?: AbortSignal): Promise<boolean> {
    const now = new Date();
    const mine: LeaseSpec = {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      let lease: { metadata: any; spec?: LeaseSpec };
      try {
        lease = await this.kube.request("GET", this.path, { signal });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.kube.request("POST", resourcePath(Resources.leases, this.opts.namespace), {
          signal,
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec: mine,
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const record = `${spec.holderIdentity}|${spec.renewTime}`;
      if (record !== this.observed) {
        this.observed = record;
        this.observedAt = Date.now();
      }
      const holder = spec.holderIdentity ?? "";
      const heldByMe = holder === this.opts.identity;
      const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000;
      if (holder && !heldByMe && Date.now() - this.observedAt < durationMs) return false;
      const next: LeaseSpec = heldByMe
        ? { ...spec, renewTime: mine.renewTime, leaseDurationSeconds: mine.leaseDurationSeconds }
        : { ...mine, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
      const updated = await this.kube.request("PUT", this.path, { body: { ...lease, spec: next }, signal });
      this.observed = `${next.holderIdentity}|${next.renewTime}`;
      this.observedAt = Date.now();
      if (!heldByMe) log.info({ previousHolder: holder || "(none)" }, "acquired the lease");
      return !!updated;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) return false;
      log.warn({ err: String((err as Error).message ?? err), aborted: signal?.aborted || undefined }, signal?.aborted ? "lease request aborted at the renew deadline" : "lease update failed");
      return false;
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
