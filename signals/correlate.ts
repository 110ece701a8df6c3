// The correlator: per RuntimeRule, which signals an attributed event matches, and which
// correlations (event_count, value_count, temporal_ordered) that completes, grouped by workload
// identity (or pod) within each correlation's timespan. Time is the events' own time; the
// clock (injected) only decides what is too old to matter and what is from the future.
//   - duplicates (same id: falcosidekick's uuid or the event's digest) are dropped, once seen;
//   - out-of-order events are inserted where they belong, and a window is judged around them;
//   - events older than maxLatenessMs still fire single-signal responses but join no window;
//   - events from the future beyond futureSkewMs count as arriving now;
//   - a correlation that fires starts counting afresh for that group;
//   - state is bounded: entries per window, windows overall (least recently used go first).
import type { AttributedSignal } from "./event.ts";
import type { CompiledCorrelation, CompiledDetection } from "./detection.ts";

export interface Firing {
  /** The RuntimeRule, "ns/name". */
  rule: string;
  /** The signal or correlation that fired. */
  name: string;
  kind: "signal" | "correlation";
  /** The group (SPIFFE ID or ns/pod) it fired for. */
  group: string;
  /** The event that decided it. */
  decidedBy: AttributedSignal;
  /** The events it rests on, oldest first (bounded). */
  evidence: AttributedSignal[];
  severity?: string;
}

interface Entry {
  name: string;
  time: number;
  count: number;
  value?: string;
  evidence: AttributedSignal[];
}

export interface CorrelatorOptions {
  now: () => number;
  maxLatenessMs?: number;
  futureSkewMs?: number;
  maxWindows?: number;
  maxEntriesPerWindow?: number;
  dedupeSize?: number;
}

export const MAX_EVIDENCE = 64;

export type Admission = "accepted" | "duplicate" | "late";

export class Correlator {
  private readonly windows = new Map<string, Entry[]>();
  private readonly seen = new Set<string>();
  readonly maxLatenessMs: number;
  private readonly futureSkewMs: number;
  private readonly maxWindows: number;
  private readonly maxEntries: number;
  private readonly dedupeSize: number;

  constructor(private readonly opts: CorrelatorOptions) {
    this.maxLatenessMs = opts.maxLatenessMs ?? 10 * 60_000;
    this.futureSkewMs = opts.futureSkewMs ?? 30_000;
    this.maxWindows = opts.maxWindows ?? 100_000;
    this.maxEntries = opts.maxEntriesPerWindow ?? 256;
    this.dedupeSize = opts.dedupeSize ?? 200_000;
  }

  get windowCount() {
    return this.windows.size;
  }

  /** Once per event, before evaluate(): drops duplicates, clamps future times, tells late ones. */
  admit(e: { id: string; time: number }): Admission {
    if (this.seen.has(e.id)) return "duplicate";
    this.seen.add(e.id);
    if (this.seen.size > this.dedupeSize) this.seen.delete(this.seen.values().next().value!);
    const now = this.opts.now();
    if (e.time > now + this.futureSkewMs) e.time = now;
    return e.time < now - this.maxLatenessMs ? "late" : "accepted";
  }

  /** The firings one event causes for one rule (whose selector already selected the event's pod). */
  evaluate(rule: string, d: CompiledDetection, e: AttributedSignal, late = false): Firing[] {
    const out: Firing[] = [];
    for (const s of d.signals) {
      if (!s.matches(e)) continue;
      out.push({ rule, name: s.name, kind: "signal", group: groupOf(e, "pod"), decidedBy: e, evidence: [e] });
      if (!late) this.feed(rule, d, s.name, { name: s.name, time: e.time, count: e.count, evidence: [e] }, e, out, 0);
    }
    return out;
  }

  private feed(rule: string, d: CompiledDetection, name: string, entry: Entry, e: AttributedSignal, out: Firing[], depth: number) {
    if (depth > 32) return;
    for (const c of d.listeners.get(name) ?? []) {
      const group = groupOf(e, c.groupBy);
      const key = `${rule}\u0000${c.name}\u0000${group}`;
      const entries = this.window(key);
      const value = c.type === "value_count" && c.field ? fieldText(e, c.field) : undefined;
      if (c.type === "value_count" && value === undefined) continue;
      insert(entries, value === undefined && entry.name === name ? entry : { name, time: entry.time, count: entry.count, value, evidence: entry.evidence }, this.maxEntries);
      prune(entries, this.opts.now() - c.timespanMs - this.maxLatenessMs);
      const hit = judge(c, entries, entry.time);
      if (!hit) continue;
      this.windows.delete(key);
      const evidence = bounded(hit.flatMap((x) => x.evidence));
      out.push({ rule, name: c.name, kind: "correlation", group, decidedBy: e, evidence, severity: c.severity });
      this.feed(rule, d, c.name, { name: c.name, time: entry.time, count: 1, evidence }, e, out, depth + 1);
    }
  }

  private window(key: string): Entry[] {
    let w = this.windows.get(key);
    if (w) {
      this.windows.delete(key); // most recently used last
    } else {
      w = [];
      if (this.windows.size >= this.maxWindows) this.windows.delete(this.windows.keys().next().value!);
    }
    this.windows.set(key, w);
    return w;
  }

  /** Drops every window whose newest entry is older than `before` (call now and then). */
  sweep(before = this.opts.now() - 24 * 3_600_000 - this.maxLatenessMs) {
    for (const [k, w] of this.windows) if (!w.length || w[w.length - 1].time < before) this.windows.delete(k);
  }
}

/** The group a correlation counts an event in: its workload identity, or its pod. */
export function groupOf(e: AttributedSignal, by: "identity" | "pod"): string {
  const a = e.attribution;
  if (by === "identity" && a.spiffeID) return a.spiffeID;
  return a.pod ? `${a.namespace}/${a.pod}` : (a.spiffeID ?? a.namespace);
}

function fieldText(e: AttributedSignal, field: string): string | undefined {
  const v = e.fields[field];
  return v === undefined || v === null ? undefined : String(v);
}

function insert(entries: Entry[], x: Entry, max: number) {
  let i = entries.length;
  while (i > 0 && entries[i - 1].time > x.time) i--;
  entries.splice(i, 0, x);
  if (entries.length > max) entries.shift();
}

function prune(entries: Entry[], before: number) {
  let n = 0;
  while (n < entries.length && entries[n].time < before) n++;
  if (n) entries.splice(0, n);
}

function bounded(ev: AttributedSignal[]): AttributedSignal[] {
  const uniq = [...new Set(ev)].sort((a, b) => a.time - b.time);
  return uniq.length <= MAX_EVIDENCE ? uniq : [...uniq.slice(0, 16), ...uniq.slice(-(MAX_EVIDENCE - 16))];
}

/** The entries of a window around time `t` that satisfy the correlation, or undefined. */
export function judge(c: CompiledCorrelation, entries: Entry[], t: number): Entry[] | undefined {
  const W = c.timespanMs;
  if (c.type === "temporal_ordered") {
    // Greedy earliest chain per start; each step's pointer only moves forward as the start does,
    // so a window is judged in O(entries × steps), however the events arrived.
    const k = c.inputs.length;
    const ptr = new Array<number>(k).fill(0);
    for (let i = 0; i < entries.length; i++) {
      const start = entries[i];
      if (start.name !== c.inputs[0] || start.time < t - W) continue;
      if (start.time > t) break;
      const chain = [start];
      let prev = i;
      for (let j = 1; j < k; j++) {
        if (ptr[j] <= prev) ptr[j] = prev + 1;
        while (ptr[j] < entries.length && entries[ptr[j]].name !== c.inputs[j]) ptr[j]++;
        if (ptr[j] >= entries.length) return undefined; // no later start can find this step either
        if (entries[ptr[j]].time > start.time + W) break;
        chain.push(entries[ptr[j]]);
        prev = ptr[j];
      }
      if (chain.length === k) return chain;
    }
    return undefined;
  }
  // event_count / value_count. In order (t is the newest time), [t - W, t] holds every window
  // containing t: count back from the newest entry and stop as soon as the condition holds.
  const values = new Map<string, number>();
  if (t >= entries[entries.length - 1].time) {
    let n = 0;
    for (let i = entries.length - 1; i >= 0 && entries[i].time >= t - W; i--) {
      const x = entries[i];
      if (c.type === "event_count") n += x.count;
      else if (x.value !== undefined) values.set(x.value, 1);
      if ((c.type === "event_count" ? n : values.size) >= c.gte) return entries.slice(i);
    }
    return undefined;
  }
  // Out of order: every window [s, s + W] with s in [t - W, t] contains t; slide over them.
  values.clear();
  let j = 0;
  let sum = 0;
  for (let i = 0; i < entries.length; i++) {
    const s = entries[i].time;
    if (s > t) break;
    if (j < i) j = i;
    while (j < entries.length && entries[j].time <= s + W) {
      add(entries[j], 1);
      j++;
    }
    if (s >= t - W && (c.type === "event_count" ? sum : values.size) >= c.gte) return entries.slice(i, j);
    add(entries[i], -1);
  }
  return undefined;

  function add(x: Entry, sign: 1 | -1) {
    if (c.type === "event_count") sum += sign * x.count;
    else if (x.value !== undefined) {
      const n = (values.get(x.value) ?? 0) + sign;
      if (n <= 0) values.delete(x.value);
      else values.set(x.value, n);
    }
  }
}
