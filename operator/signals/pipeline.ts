// From accepted signals to responses: a bounded queue (the intake answers 429 when it is full),
// drained in slices so the process keeps serving; each signal is de-duplicated, attributed to a
// workload identity, matched against the RuntimeRules of its namespace that select its pod,
// correlated, and the firings handed to the responder. Unattributable signals are counted and
// kept (the last UNATTRIBUTED_KEPT) for GET /v1/signals/unattributed.
import type { Logger } from "../../common/logger.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { RuntimeRule } from "../../crds/types.gen.ts";
import { matcherOf } from "../../policy/selector.ts";
import { Correlator, type Firing } from "../../signals/correlate.ts";
import { compileDetection } from "../../signals/detection.ts";
import type { AttributedSignal, Attribution, Signal } from "../../signals/event.ts";
import type { Informer } from "../runtime/informer.ts";
import type { Attributor } from "./attribution.ts";
import type { SignalMetrics } from "./metrics.ts";
import type { Responder } from "./responses.ts";

export const QUEUE_LIMIT = 50_000;
export const UNATTRIBUTED_KEPT = 200;
const SLICE = 500;

type Rule = RuntimeRule & TenetObject;

export interface Queued {
  signal: Signal;
  /** Set when the sender's identity already decides it (an enforcer reports for its own pod; Tenet's own signals). */
  attribution?: Attribution;
  labels?: Record<string, string>;
  receivedAt: number;
}

export class SignalPipeline {
  readonly correlator: Correlator;
  private queue: Queued[] = [];
  private head = 0;
  private draining = false;
  private waiters: (() => void)[] = [];
  private readonly unattributed: { time: string; source: string; rule: string; reason: string; hostname?: string; output: string }[] = [];
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      log: Logger;
      rules: Informer<Rule>;
      attributor: Attributor;
      responder: Responder;
      metrics: SignalMetrics;
      now: () => number;
      queueLimit?: number;
    },
  ) {
    this.correlator = new Correlator({ now: deps.now });
    this.sweeper = setInterval(() => this.correlator.sweep(), 60_000);
    this.sweeper.unref();
  }

  get depth() {
    return this.queue.length - this.head;
  }

  /** Room for n more? The intake refuses the whole batch (429) when not. */
  hasRoom(n: number) {
    return this.depth + n <= (this.deps.queueLimit ?? QUEUE_LIMIT);
  }

  enqueue(items: Queued[]) {
    for (const q of items) this.queue.push(q);
    this.deps.metrics.queueDepth.set(this.depth);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  /** Resolves once everything queued so far has been processed. */
  idle(): Promise<void> {
    if (!this.draining && this.depth === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  recentUnattributed() {
    return [...this.unattributed];
  }

  stop() {
    clearInterval(this.sweeper);
  }

  /** Processes until the queue is empty, a slice at a time. */
  async drain(): Promise<void> {
    try {
      while (this.depth > 0) {
        const end = Math.min(this.queue.length, this.head + SLICE);
        const pending: Promise<unknown>[] = [];
        for (; this.head < end; this.head++) {
          const firings = this.process(this.queue[this.head]);
          if (firings.length) pending.push(this.respond(firings));
        }
        if (this.head > 10_000 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        this.deps.metrics.queueDepth.set(this.depth);
        await Promise.all(pending);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.draining = false;
      if (this.depth > 0) this.enqueue([]);
      else for (const w of this.waiters.splice(0)) w();
    }
  }

  /** One signal: de-duplicate, attribute, match and correlate. Synchronous; responses run after. */
  process(q: Queued): Firing[] {
    const { metrics } = this.deps;
    const s = q.signal;
    const admitted = this.correlator.admit(s);
    if (admitted === "duplicate") {
      metrics.processed.inc({ source: s.source, outcome: "duplicate" });
      return [];
    }
    const a = q.attribution ?? this.deps.attributor.attribute(s);
    if ("unattributed" in a) {
      metrics.processed.inc({ source: s.source, outcome: "unattributed" });
      metrics.unattributed.inc({ source: s.source, reason: a.unattributed });
      this.unattributed.push({ time: new Date(s.time).toISOString(), source: s.source, rule: s.rule, reason: a.unattributed, hostname: s.hostname, output: s.output.slice(0, 256) });
      if (this.unattributed.length > UNATTRIBUTED_KEPT) this.unattributed.shift();
      return [];
    }
    metrics.processed.inc({ source: s.source, outcome: admitted === "late" ? "late" : "correlated" });
    const e = s as AttributedSignal;
    e.attribution = a;
    const labels = q.labels ?? (a.pod ? this.deps.attributor.labelsOf(a) : undefined);
    const out: Firing[] = [];
    for (const r of this.deps.rules.listNamespace(a.namespace)) {
      if (!r.spec.detection || r.metadata.deletionTimestamp || !matcherOf(r.spec)(labels)) continue;
      const d = compileDetection(r.spec);
      if (!d.signals.length) continue;
      for (const f of this.correlator.evaluate(`${a.namespace}/${r.metadata.name}`, d, e, admitted === "late")) out.push(f);
    }
    return out;
  }

  private async respond(firings: Firing[]) {
    for (const f of firings) {
      this.deps.metrics.firings.inc({ kind: f.kind });
      const rule = this.deps.rules.get(f.rule);
      if (!rule) continue;
      const d = compileDetection(rule.spec);
      const severity = f.severity;
      try {
        await this.deps.responder.respond(f, d.responses, severity);
      } catch (err) {
        this.deps.log.error({ rule: f.rule, name: f.name, err: (err as Error).message }, "could not respond to a detection");
      }
    }
  }
}
