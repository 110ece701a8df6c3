// Signal metrics. Every label comes from a fixed set: source (falco, enforcer, tenet),
// outcome, action, kind, reason (the attribution codes).
import { Counter, Gauge, type Registry } from "prom-client";

export class SignalMetrics {
  /** At the intake: accepted, rejected (malformed entry), throttled (429), unauthenticated, forbidden. */
  readonly received: Counter<"source" | "outcome">;
  /** After the queue: correlated, duplicate, late, unattributed. */
  readonly processed: Counter<"source" | "outcome">;
  readonly unattributed: Counter<"source" | "reason">;
  readonly firings: Counter<"kind">;
  readonly responses: Counter<"action" | "outcome">;
  readonly queueDepth: Gauge;

  constructor(registry: Registry) {
    this.received = new Counter({ name: "tenet_signals_received_total", help: "Signals at the intake, by source and outcome (accepted, rejected, throttled, unauthenticated, forbidden).", labelNames: ["source", "outcome"], registers: [registry] });
    this.processed = new Counter({ name: "tenet_signals_processed_total", help: "Accepted signals after attribution, by source and outcome (correlated, duplicate, late, unattributed).", labelNames: ["source", "outcome"], registers: [registry] });
    this.unattributed = new Counter({ name: "tenet_signals_unattributed_total", help: "Signals no pod could be found for, by source and reason.", labelNames: ["source", "reason"], registers: [registry] });
    this.firings = new Counter({ name: "tenet_signals_firings_total", help: "Detections that fired, by kind (signal, correlation).", labelNames: ["kind"], registers: [registry] });
    this.responses = new Counter({ name: "tenet_signals_responses_total", help: "Responses run, by action and outcome (Applied, DryRun, Cooldown, Held, Failed).", labelNames: ["action", "outcome"], registers: [registry] });
    this.queueDepth = new Gauge({ name: "tenet_signals_queue_depth", help: "Signals accepted and not yet processed.", registers: [registry] });
  }
}
