// One shape for every signal Tenet correlates, whatever sent it: Falco alerts (runtime layer),
// enforcer denials (network and API layers) and Tenet's own admission denials and posture changes.
// Pure data: parsers (falco.ts, enforcer.ts) produce it, the operator attributes it to a pod
// and the correlator (correlate.ts) groups it by workload identity.

/** Who sent it. */
export type SignalSource = "falco" | "enforcer" | "tenet";
/** The layer it speaks for (the incident timeline groups by these). */
export type SignalLayer = "runtime" | "network" | "api" | "admission" | "posture";

/** Falco's priority scale, most severe first (index = rank; a smaller rank is more severe). */
export const PRIORITIES = ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Rank of a priority name, case-insensitive; Falco also writes "Info". Unknown names rank as debug. */
export function priorityRank(name: unknown): number {
  if (typeof name !== "string") return PRIORITIES.length - 1;
  const n = name.toLowerCase();
  const i = PRIORITIES.indexOf((n === "info" ? "informational" : n) as Priority);
  return i < 0 ? PRIORITIES.length - 1 : i;
}

export type FieldValue = string | number | boolean | null;

export interface Signal {
  /** falcosidekick's uuid, the enforcer's batch entry id, or a digest of the event (duplicates are dropped by it). */
  id: string;
  source: SignalSource;
  layer: SignalLayer;
  /** Falco rule name, enforcer reason (TLSRefused, APIDenied, …), Tenet reason (AdmissionDenied, PostureViolating). */
  rule: string;
  /** Rank in PRIORITIES. */
  priority: number;
  /** When it happened, ms since the epoch (from the event, not from its arrival). */
  time: number;
  /** Exact nanosecond time when the sender gave one (Falco's evt.time exceeds 2^53: kept as a string). */
  timeNs?: string;
  tags: string[];
  /** Falco output_fields / enforcer details: flat, values bounded. */
  fields: Record<string, FieldValue>;
  /** Human-readable line, clipped. */
  output: string;
  hostname?: string;
  /** How many occurrences this entry stands for (enforcers aggregate bursts); at least 1. */
  count: number;
  /** What the sender says the event is about; the operator decides what it is attributed to. */
  claim: { namespace?: string; pod?: string; containerID?: string };
}

/** The workload identity a signal is attributed to. */
export interface Attribution {
  namespace: string;
  pod?: string;
  podUID?: string;
  /** spiffe://<trust domain>/ns/<ns>/sa/<sa>: replicas share it, so correlation groups by it. */
  spiffeID?: string;
  serviceAccount?: string;
  /** The ServiceIdentity selecting the pod, if exactly one does. */
  serviceIdentity?: string;
  /** The pod's controller, e.g. Deployment/orders or ReplicaSet/orders-5d9c…, or Pod/<name>. */
  workload?: string;
}

export interface AttributedSignal extends Signal {
  attribution: Attribution;
}

/** Limits every parser applies, so one event can never grow state without bound. */
export const SIGNAL_LIMITS = {
  ruleLength: 256,
  outputLength: 1024,
  tags: 32,
  tagLength: 64,
  fields: 64,
  fieldNameLength: 128,
  fieldValueLength: 512,
  idLength: 128,
} as const;
