// The enforcer's denials and anomalies as signals for the operator (POST /v1/signals/enforcer,
// with this pod's projected token: the operator attributes them to this pod, and to no other).
// Every denied audit record is folded into one entry per (kind, reason, peer) over
// TENET_SIGNAL_FLUSH_MS; more than burstThreshold denials in one interval adds a Burst entry.
// Sending never blocks a request; a refused or failed batch is kept (bounded) and sent again.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { AuditRecord } from "./audit.ts";
import { operatorError, type OperatorClient } from "./operator-client.ts";

export type SignalKind = "TLSRefused" | "PlaintextAttempt" | "APIDenied" | "Burst";

export interface ReportedEvent {
  id: string;
  kind: SignalKind;
  reason: string;
  time: string;
  count: number;
  peer?: string;
  method?: string;
  path?: string;
  api?: string;
  status?: number;
}

/** Which kind of signal a denied attempt is; undefined for what is not one (app failures). */
export function classify(rec: AuditRecord): SignalKind | undefined {
  if (rec.decision !== "deny") return undefined;
  if (rec.status === 0) return /HTTP_REQUEST|http request|WRONG_VERSION_NUMBER/i.test(rec.detail ?? "") ? "PlaintextAttempt" : "TLSRefused";
  if (rec.reason === "AppUnavailable" || rec.status >= 500) return undefined;
  return "APIDenied";
}

export const MAX_ENTRIES = 500;

export class SignalReporter {
  private entries = new Map<string, ReportedEvent>();
  private pending: ReportedEvent[] = [];
  private denials = 0;
  private timer?: NodeJS.Timeout;
  private sending = false;
  private readonly prefix = randomBytes(6).toString("hex");
  private seq = 0;

  constructor(
    private readonly opts: { url: string; namespace?: string; podName: string; flushMs: number; burstThreshold: number; client: Pick<OperatorClient, "post">; log: Logger; now?: () => number },
  ) {}

  start() {
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs);
    this.timer.unref();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
  }

  /** Called for every audit record (the hot path: a Map update, nothing else). */
  observe(rec: AuditRecord) {
    const kind = classify(rec);
    if (!kind) return;
    this.denials++;
    const peer = rec.caller ?? undefined;
    const key = `${kind}\u0000${rec.reason}\u0000${peer ?? ""}`;
    const now = new Date(this.opts.now?.() ?? Date.now()).toISOString();
    const e = this.entries.get(key);
    if (e) {
      e.count++;
      e.time = now;
      e.method = rec.method;
      e.path = rec.path;
      return;
    }
    if (this.entries.size >= MAX_ENTRIES) return void (this.entries.get("overflow") ?? this.entries.set("overflow", this.entry("APIDenied", "TooManyDistinct", now)).get("overflow")!).count++;
    this.entries.set(key, { ...this.entry(kind, rec.reason, now), peer, method: rec.method, path: rec.path, api: rec.api, status: rec.status || undefined });
  }

  private entry(kind: SignalKind, reason: string, time: string): ReportedEvent {
    return { id: `${this.prefix}-${++this.seq}`, kind, reason: reason.slice(0, 64), time, count: 1 };
  }

  /** Sends what was gathered (and what a failed send left); keeps it when the operator refuses it. */
  async flush(): Promise<void> {
    if (this.sending) return;
    const batch = [...this.pending, ...this.entries.values()];
    if (this.denials > this.opts.burstThreshold) batch.push(this.entry("Burst", `MoreThan${this.opts.burstThreshold}`, new Date(this.opts.now?.() ?? Date.now()).toISOString()));
    if (batch.length && this.denials > this.opts.burstThreshold) batch[batch.length - 1].count = this.denials;
    this.entries = new Map();
    this.denials = 0;
    this.pending = [];
    if (!batch.length) return;
    this.sending = true;
    try {
      const res = await this.opts.client.post(this.opts.url, { pod: this.opts.namespace ? { namespace: this.opts.namespace, name: this.opts.podName } : undefined, events: batch.slice(0, 1000) });
      if (res.status === 429 || res.status >= 500) throw operatorError("signal report", res);
      if (res.status !== 202) this.opts.log.warn({ status: res.status, err: operatorError("signal report", res).message }, "the operator refused the signal report; dropped");
    } catch (err) {
      // Kept for the next interval (ids unchanged, so the operator counts them once), bounded.
      this.pending = batch.slice(-MAX_ENTRIES);
      this.opts.log.debug({ err: (err as Error).message, kept: this.pending.length }, "signal report not sent; retrying");
    } finally {
      this.sending = false;
    }
  }
}
