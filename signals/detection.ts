// RuntimeRule spec.detection, compiled once per spec into matchers the correlator runs, and
// checked for what the schema and CEL cannot see (status conditions name the field and the fix):
// a correlation that refers to a later one (or to itself through others), a priority comparison
// nothing satisfies, an enforcer or Tenet rule name that no event has, a value_count field no
// event of its signals carries.
import type { RuntimeRuleDetection, RuntimeRuleDetectionCorrelation, RuntimeRuleDetectionResponse } from "../crds/types.gen.ts";
import { PRIORITIES, priorityRank, type FieldValue, type Signal, type SignalSource } from "./event.ts";
import { ENFORCER_KINDS } from "./enforcer.ts";

/** Rule names Tenet itself reports (operator/signals: admission denials, posture changes). */
export const TENET_RULES = ["AdmissionDenied", "PostureViolating"] as const;
/** Fields an enforcer event carries (signals/enforcer.ts). */
export const ENFORCER_FIELDS = ["reason", "peer", "method", "path", "api", "status"] as const;

export interface CompiledSignal {
  name: string;
  source: SignalSource;
  matches(s: Signal): boolean;
}

export interface CompiledCorrelation {
  name: string;
  type: RuntimeRuleDetectionCorrelation["type"];
  /** Signals or earlier correlations, in order (temporal_ordered). */
  inputs: string[];
  timespanMs: number;
  groupBy: "identity" | "pod";
  gte: number;
  field?: string;
  severity?: string;
}

export interface CompiledResponse {
  name: string;
  on: Set<string>;
  action: RuntimeRuleDetectionResponse["action"];
  dryRun: boolean;
  cooldownMs: number;
  maxQuarantinedPercent: number;
}

export interface CompiledDetection {
  signals: CompiledSignal[];
  /** Only correlations whose inputs are defined before them; the others are reported, not run. */
  correlations: CompiledCorrelation[];
  responses: CompiledResponse[];
  /** Correlations by the names they listen to. */
  listeners: Map<string, CompiledCorrelation[]>;
  problems: DetectionProblem[];
}

export interface DetectionProblem {
  reason: "InvalidDetection" | "NeverMatches";
  message: string;
}

/** A Go duration (as the CRD pattern admits it) in ms; NaN when it is not one. */
export function goDuration(s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s;
  const re = /^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/;
  if (!rest) return NaN;
  while (rest) {
    const m = re.exec(rest);
    if (!m) return NaN;
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** ">=warning" → the ranks it admits, [lo, hi] (rank 0 is emergency, the most severe). */
export function priorityRange(expr: string | undefined): [number, number] | undefined {
  if (expr === undefined) return [0, PRIORITIES.length - 1];
  const m = /^(>=|<=|>|<|=)?\s*([a-z]+)$/.exec(expr);
  if (!m || !PRIORITIES.includes(m[2] as never)) return undefined;
  const r = priorityRank(m[2]);
  const last = PRIORITIES.length - 1;
  switch (m[1] ?? ">=") {
    case ">=": return [0, r];
    case ">": return [0, r - 1];
    case "<=": return [r, last];
    case "<": return [r + 1, last];
    default: return [r, r];
  }
}

function globMatcher(patterns: string[] | undefined): (rule: string) => boolean {
  if (!patterns?.length) return () => true;
  const exact = new Set(patterns.filter((p) => !p.includes("*")));
  const globs = patterns.filter((p) => p.includes("*")).map((p) => new RegExp(`^${p.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "s"));
  return (rule) => exact.has(rule) || globs.some((g) => g.test(rule));
}

const asText = (v: FieldValue | undefined) => (v === undefined || v === null ? undefined : String(v));

const compiledCache = new WeakMap<object, CompiledDetection>();

/** Compiled once per RuntimeRule spec object (informer caches hand out the same object until it changes). */
export function compileDetection(spec: { detection?: RuntimeRuleDetection; enforcement?: "enforce" | "audit" }): CompiledDetection {
  const cached = compiledCache.get(spec);
  if (cached) return cached;
  const out = compile(spec.detection ?? {}, spec.enforcement ?? "enforce");
  compiledCache.set(spec, out);
  return out;
}

function compile(spec: RuntimeRuleDetection, enforcement: "enforce" | "audit"): CompiledDetection {
  const problems: DetectionProblem[] = [];
  const signals: CompiledSignal[] = [];
  (spec.signals ?? []).forEach((s, i) => {
    const at = `spec.detection.signals[${i}] (${s.name})`;
    const range = priorityRange(s.priority);
    if (!range) {
      problems.push({ reason: "InvalidDetection", message: `${at}.priority "${s.priority}" is not a comparison like ">=warning"` });
      return;
    }
    const [lo, hi] = range;
    if (lo > hi) problems.push({ reason: "NeverMatches", message: `${at}.priority "${s.priority}" admits no priority (nothing is more severe than emergency or less severe than debug); use e.g. ">=warning"` });
    const known = s.source === "enforcer" ? Object.keys(ENFORCER_KINDS) : s.source === "tenet" ? [...TENET_RULES] : undefined;
    if (known && s.rules?.length) {
      const rule = globMatcher(s.rules);
      if (!known.some(rule)) problems.push({ reason: "NeverMatches", message: `${at}.rules ${JSON.stringify(s.rules)} match no ${s.source} event; ${s.source} events are named ${known.join(", ")}` });
    }
    if (s.source === "enforcer") {
      for (const f of s.fields ?? []) {
        if (!ENFORCER_FIELDS.includes(f.field as never) && f.operator !== "DoesNotExist") problems.push({ reason: "NeverMatches", message: `${at}.fields: enforcer events have no field "${f.field}"; they carry ${ENFORCER_FIELDS.join(", ")}` });
      }
    }
    const rule = globMatcher(s.rules);
    const tags = s.tags ?? [];
    const fields = (s.fields ?? []).map((f) => {
      const values = f.values ?? [];
      const set = new Set(values);
      switch (f.operator) {
        case "Exists": return (v: FieldValue | undefined) => v !== undefined && v !== null;
        case "DoesNotExist": return (v: FieldValue | undefined) => v === undefined || v === null;
        case "In": return (v: FieldValue | undefined) => { const t = asText(v); return t !== undefined && set.has(t); };
        case "NotIn": return (v: FieldValue | undefined) => { const t = asText(v); return t === undefined || !set.has(t); };
        case "Contains": return (v: FieldValue | undefined) => { const t = asText(v); return t !== undefined && values.some((x) => t.includes(x)); };
        default: return (v: FieldValue | undefined) => { const t = asText(v); return t !== undefined && values.some((x) => t.startsWith(x)); };
      }
    });
    const names = (s.fields ?? []).map((f) => f.field);
    signals.push({
      name: s.name,
      source: s.source,
      matches: (e) =>
        e.source === s.source &&
        e.priority >= lo &&
        e.priority <= hi &&
        rule(e.rule) &&
        tags.every((t) => e.tags.includes(t)) &&
        fields.every((f, k) => f(e.fields[names[k]])),
    });
  });

  const defined = new Set(signals.map((s) => s.name));
  const signalSources = new Map((spec.signals ?? []).map((s) => [s.name, s.source] as const));
  const correlations: CompiledCorrelation[] = [];
  (spec.correlations ?? []).forEach((c, i) => {
    const at = `spec.detection.correlations[${i}] (${c.name})`;
    const missing = c.signals.filter((n) => !defined.has(n));
    if (missing.length) {
      const later = missing.filter((n) => (spec.correlations ?? []).some((o) => o.name === n));
      problems.push({
        reason: "InvalidDetection",
        message: later.length
          ? `${at}.signals refers to ${later.join(", ")}, defined after it (or in a cycle): a correlation may refer only to signals and to correlations listed before it; reorder spec.detection.correlations`
          : `${at}.signals refers to ${missing.join(", ")}, which is not a usable signal or correlation; fix the name or the signal it names`,
      });
      return;
    }
    const timespanMs = goDuration(c.timespan, NaN);
    if (!Number.isFinite(timespanMs) || timespanMs < 1000) {
      problems.push({ reason: "InvalidDetection", message: `${at}.timespan "${c.timespan}" is not a Go duration of at least 1s` });
      return;
    }
    if (c.type === "value_count" && c.field) {
      const sources = c.signals.map((n) => signalSources.get(n));
      if (sources.length && sources.every((s) => s === "enforcer") && !ENFORCER_FIELDS.includes(c.field as never)) {
        problems.push({ reason: "NeverMatches", message: `${at}.field "${c.field}": enforcer events have no such field; they carry ${ENFORCER_FIELDS.join(", ")}` });
      }
    }
    if (c.type === "temporal_ordered" && c.signals.length < 2) problems.push({ reason: "InvalidDetection", message: `${at}: temporal_ordered needs at least two signals` });
    correlations.push({ name: c.name, type: c.type, inputs: c.signals, timespanMs, groupBy: c.groupBy ?? "identity", gte: c.condition?.gte ?? 1, field: c.field, severity: c.severity });
    defined.add(c.name);
  });

  const responses: CompiledResponse[] = [];
  (spec.responses ?? []).forEach((r, i) => {
    const at = `spec.detection.responses[${i}] (${r.name})`;
    const missing = r.on.filter((n) => !defined.has(n));
    if (missing.length) problems.push({ reason: "InvalidDetection", message: `${at}.on names ${missing.join(", ")}, which is not a usable signal or correlation; it never fires for them` });
    const cooldownMs = goDuration(r.cooldown, 600_000);
    if (!Number.isFinite(cooldownMs)) problems.push({ reason: "InvalidDetection", message: `${at}.cooldown "${r.cooldown}" is not a Go duration` });
    responses.push({
      name: r.name,
      on: new Set(r.on.filter((n) => defined.has(n))),
      action: r.action === "quarantine" && enforcement === "audit" ? "label" : r.action,
      dryRun: r.dryRun ?? false,
      cooldownMs: Number.isFinite(cooldownMs) ? cooldownMs : 600_000,
      maxQuarantinedPercent: r.maxQuarantinedPercent ?? 50,
    });
  });

  const listeners = new Map<string, CompiledCorrelation[]>();
  for (const c of correlations) for (const n of new Set(c.inputs)) listeners.set(n, [...(listeners.get(n) ?? []), c]);
  return { signals, correlations, responses, listeners, problems };
}
