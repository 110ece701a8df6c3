// The reconcile loop: workers pull keys from a de-duplicating queue; success forgets the
// key, errors back off per key, conflicts requeue quietly, and one failing key never
// blocks the others.
import type { Logger } from "../../common/logger.ts";
import { isConflict } from "../../common/kube.ts";
import { WorkQueue, type BackoffOptions } from "./queue.ts";
import type { RuntimeMetrics } from "./metrics.ts";

export interface ReconcileResult {
  /** Reconcile again after this delay (timed work, e.g. an exemption reaching its expiry). */
  requeueAfterMs?: number;
}

export type Reconciler = (key: string, log: Logger) => Promise<ReconcileResult | void>;

/** An error the user must fix: reported, not retried hot. */
export class TerminalError extends Error {}

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  log: Logger;
  metrics: RuntimeMetrics;
  workers?: number;
  backoff?: BackoffOptions;
}

export class Controller {
  readonly queue: WorkQueue;
  private running: Promise<void>[] = [];
  private readonly log: Logger;

  constructor(private readonly opts: ControllerOptions) {
    this.queue = new WorkQueue(opts.backoff);
    this.log = opts.log.child({ controller: opts.name });
  }

  get name() {
    return this.opts.name;
  }

  enqueue(key: string) {
    this.queue.add(key);
    this.opts.metrics.queueDepth.set({ controller: this.name }, this.queue.depth);
  }

  /** Starts the workers. Call only after the informers this controller reads have synced. */
  start() {
    const n = this.opts.workers ?? 2;
    for (let i = 0; i < n; i++) this.running.push(this.worker());
    this.log.info({ workers: n }, "controller started");
  }

  /** Stops taking keys and waits for in-flight reconciles to finish. */
  async stop() {
    this.queue.shutdown();
    await Promise.all(this.running);
    this.running = [];
  }

  private async worker() {
    const { metrics } = this.opts;
    const controller = this.name;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      metrics.queueDepth.set({ controller }, this.queue.depth);
      const log = this.log.child({ key });
      const end = metrics.reconcileDuration.startTimer({ controller });
      try {
        const result = await this.opts.reconcile(key, log);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          metrics.reconciles.inc({ controller, result: "requeue" });
        } else {
          metrics.reconciles.inc({ controller, result: "success" });
        }
      } catch (err) {
        if (isConflict(err)) {
          // Someone else wrote first: our cache is behind. Try again shortly, quietly.
          this.queue.addRateLimited(key);
          metrics.reconciles.inc({ controller, result: "conflict" });
          log.debug({ err: String(err) }, "conflict; requeued");
        } else if (err instanceof TerminalError) {
          this.queue.forget(key);
          metrics.reconciles.inc({ controller, result: "terminal" });
          log.warn({ err: err.message }, "reconcile failed; not retrying until the object changes");
        } else {
          const delay = this.queue.addRateLimited(key);
          metrics.reconciles.inc({ controller, result: "error" });
          log.warn({ err: String((err as Error)?.message ?? err), retries: this.queue.retries(key), retryInMs: delay }, "reconcile failed; will retry");
        }
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }
}
