// The vulnerability gate of a RuntimeRule: one image, its scan and the rule give a verdict that
// says why. Admission, rescans and the CLI all call evaluateImage, so an exemption gives the same
// verdict everywhere and stops working at the same instant.

import type { RuntimeRuleSpec, RuntimeRuleVulnerabilities } from "../crds/types.gen.ts";
import { hasPathPrefix, repositoryOf, repositoryPrefixes, type ImageRef } from "../common/images.ts";
import { SUMMARY_ONLY_ID, type ScanRecord, type Severity, type Vulnerability } from "../scans/records.ts";

export interface RuleRef {
  namespace: string;
  name: string;
  spec: RuntimeRuleSpec;
}

export type Decision = "allow" | "warn" | "deny";

export interface ImageVerdict {
  /** "ns/name" */
  rule: string;
  enforcement: "enforce" | "audit";
  /** the image as written in the pod */
  image: string;
  /** audit mode never denies: what would deny becomes warn */
  decision: Decision;
  reason: "WithinThresholds" | "OverThreshold" | "Unscanned" | "NoVulnerabilityPolicy";
  /** after exemptions and ignoreUnfixed */
  counts: Record<Severity, number>;
  exceeded: { severity: Severity; count: number; threshold: number }[];
  /** CVE ids skipped because of an unexpired exemption */
  exempted: string[];
  /** ids whose exemption has expired and therefore counted */
  expiredExemptions: string[];
  /** scan source */
  source?: string;
  /** one sentence a pipeline user can act on */
  message: string;
}

type Counts = Record<Severity, number>;

const zero = (): Counts => ({ CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
const copy = (c: Counts): Counts => ({ CRITICAL: c.CRITICAL, HIGH: c.HIGH, MEDIUM: c.MEDIUM, LOW: c.LOW, UNKNOWN: c.UNKNOWN });
const any = (c: Counts) => c.CRITICAL + c.HIGH + c.MEDIUM + c.LOW + c.UNKNOWN > 0;
const subtract = (from: Counts, c: Counts) => {
  from.CRITICAL -= c.CRITICAL;
  from.HIGH -= c.HIGH;
  from.MEDIUM -= c.MEDIUM;
  from.LOW -= c.LOW;
  from.UNKNOWN -= c.UNKNOWN;
};

const THRESHOLD_FIELDS: [Severity, "critical" | "high" | "medium" | "low" | "unknown"][] = [
  ["CRITICAL", "critical"],
  ["HIGH", "high"],
  ["MEDIUM", "medium"],
  ["LOW", "low"],
  ["UNKNOWN", "unknown"],
];

// ---- Per-scan tallies, computed once per list of findings (records are immutable once indexed;
// the scan index shares one list among the records with the same findings, scans/intern.ts) ----

interface Tally {
  /** every finding */
  all: Counts;
  /** findings that count under ignoreUnfixed: those with a fixed version, and summary-only ones */
  fixable: Counts;
}

interface ScanStats {
  total: Tally;
  byId: Map<string, Tally>;
}

const statsCache = new WeakMap<readonly Vulnerability[], ScanStats>();

const countsUnderIgnoreUnfixed = (v: Vulnerability) => !!v.fixedVersion || v.id === SUMMARY_ONLY_ID;

function statsOf(scan: ScanRecord): ScanStats {
  let s = statsCache.get(scan.vulnerabilities);
  if (s) return s;
  s = { total: { all: zero(), fixable: zero() }, byId: new Map() };
  for (const v of scan.vulnerabilities) {
    const key = v.id.toUpperCase();
    let t = s.byId.get(key);
    if (!t) s.byId.set(key, (t = { all: zero(), fixable: zero() }));
    s.total.all[v.severity]++;
    t.all[v.severity]++;
    if (countsUnderIgnoreUnfixed(v)) {
      s.total.fixable[v.severity]++;
      t.fixable[v.severity]++;
    }
  }
  statsCache.set(scan.vulnerabilities, s);
  return s;
}

// ---- Per-rule compiled policy, cached by the spec object: informers replace a changed object
// rather than edit it, so a spec object is treated as immutable ----

interface CompiledExemption {
  id: string;
  key: string;
  /** ms since epoch; NaN (an unreadable date) never applies, so a typo cannot hide a vulnerability */
  expires: number;
  /** normalized repository prefixes; empty = every image */
  prefixes: string[];
}

interface CompiledPolicy {
  thresholds: [Severity, number][];
  /** " critical (threshold 0)" per threshold, for messages */
  thresholdText: string[];
  ignoreUnfixed: boolean;
  unscanned: "deny" | "warn" | "allow" | "rescan";
  exemptions: CompiledExemption[];
}

const policyCache = new WeakMap<RuntimeRuleVulnerabilities, CompiledPolicy>();
const UNSCANNED_MODES: readonly string[] = ["deny", "warn", "allow", "rescan"];

function compile(v: RuntimeRuleVulnerabilities): CompiledPolicy {
  let p = policyCache.get(v);
  if (p) return p;
  const thresholds: [Severity, number][] = [];
  for (const [sev, field] of THRESHOLD_FIELDS) {
    const t = v.thresholds?.[field];
    if (typeof t === "number") thresholds.push([sev, t]);
  }
  p = {
    thresholds,
    thresholdText: thresholds.map(([s, t]) => ` ${s.toLowerCase()} (threshold ${t})`),
    ignoreUnfixed: v.ignoreUnfixed === true,
    // The schema's enum and default make anything else impossible; if it happens, the default applies.
    unscanned: UNSCANNED_MODES.includes(v.unscannedImages as never) ? (v.unscannedImages as CompiledPolicy["unscanned"]) : "warn",
    exemptions: (v.exemptions ?? []).map((e) => ({
      id: e.id,
      key: e.id.toUpperCase(),
      expires: Date.parse(e.expires),
      prefixes: (e.images ?? []).flatMap(repositoryPrefixes),
    })),
  };
  policyCache.set(v, p);
  return p;
}

function exemptionCovers(e: CompiledExemption, repo: string): boolean {
  if (e.prefixes.length === 0) return true;
  for (const p of e.prefixes) if (hasPathPrefix(repo, p)) return true;
  return false;
}

// ---- Evaluation ----

/**
 * The verdict of one rule on one image. Exemptions apply while now < expires (at the instant itself
 * the vulnerability counts again), and only to images under one of the exemption's repository
 * prefixes. Audit rules never deny: what would deny becomes warn.
 */
export function evaluateImage(image: ImageRef, scan: ScanRecord | undefined, rule: RuleRef, now: Date): ImageVerdict {
  const ruleName = `${rule.namespace}/${rule.name}`;
  const enforcement = rule.spec.enforcement === "audit" ? "audit" : "enforce";
  const audit = enforcement === "audit";
  const raw = image.raw;
  const v = rule.spec.vulnerabilities;

  if (!v) {
    const verdict: ImageVerdict = {
      rule: ruleName,
      enforcement,
      image: raw,
      decision: "allow",
      reason: "NoVulnerabilityPolicy",
      counts: scan ? copy(statsOf(scan).total.all) : zero(),
      exceeded: [],
      exempted: [],
      expiredExemptions: [],
      message: `image ${raw} is not checked for vulnerabilities: RuntimeRule ${ruleName} has no spec.vulnerabilities`,
    };
    if (scan) verdict.source = scan.source;
    return verdict;
  }
  const p = compile(v);

  if (!scan) {
    const decision: Decision = p.unscanned === "deny" ? (audit ? "warn" : "deny") : p.unscanned === "warn" ? "warn" : "allow";
    return {
      rule: ruleName,
      enforcement,
      image: raw,
      decision,
      reason: "Unscanned",
      counts: zero(),
      exceeded: [],
      exempted: [],
      expiredExemptions: [],
      message: unscannedMessage(raw, ruleName, p.unscanned, audit),
    };
  }

  const stats = statsOf(scan);
  const counts = copy(p.ignoreUnfixed ? stats.total.fixable : stats.total.all);
  const exempted: string[] = [];
  const expiredExemptions: string[] = [];
  if (p.exemptions.length) {
    const nowMs = now.getTime();
    const repo = repositoryOf(image);
    for (const e of p.exemptions) {
      const t = stats.byId.get(e.key);
      if (!t || !exemptionCovers(e, repo)) continue;
      const c = p.ignoreUnfixed ? t.fixable : t.all;
      if (!any(c)) continue; // nothing of it counts anyway
      if (nowMs < e.expires) {
        if (exempted.includes(e.id)) continue;
        const i = expiredExemptions.indexOf(e.id);
        if (i >= 0) expiredExemptions.splice(i, 1); // another, unexpired entry for the same id wins
        subtract(counts, c);
        exempted.push(e.id);
      } else if (!exempted.includes(e.id) && !expiredExemptions.includes(e.id)) {
        expiredExemptions.push(e.id);
      }
    }
  }

  const exceeded: ImageVerdict["exceeded"] = [];
  for (const [severity, threshold] of p.thresholds) {
    if (counts[severity] > threshold) exceeded.push({ severity, count: counts[severity], threshold });
  }
  const over = exceeded.length > 0;
  // Plain literals, not spreads: this runs for every image of every rule on every admission.
  const verdict: ImageVerdict = {
    rule: ruleName,
    enforcement,
    image: raw,
    decision: over ? (audit ? "warn" : "deny") : "allow",
    reason: over ? "OverThreshold" : "WithinThresholds",
    counts,
    exceeded,
    exempted,
    expiredExemptions,
    source: scan.source,
    message: "",
  };
  verdict.message = over ? overMessage(verdict, scan, p) : withinMessage(verdict, p);
  return verdict;
}

function unscannedMessage(raw: string, rule: string, mode: CompiledPolicy["unscanned"], audit: boolean): string {
  const head = `image ${raw} has no vulnerability scan yet`;
  switch (mode) {
    case "deny":
      return (
        `${head} and RuntimeRule ${rule} refuses unscanned images (spec.vulnerabilities.unscannedImages: deny)` +
        (audit ? ", but the rule is in audit mode, so it is admitted" : "") +
        `: publish a Trivy report for it first, or set unscannedImages to rescan to admit it and re-evaluate it when the report arrives`
      );
    case "warn":
      return `${head}; RuntimeRule ${rule} admits it with a warning (spec.vulnerabilities.unscannedImages: warn)`;
    case "allow":
      return `${head}; RuntimeRule ${rule} admits unscanned images (spec.vulnerabilities.unscannedImages: allow)`;
    case "rescan":
      return (
        `${head}; RuntimeRule ${rule} admits it now and will re-evaluate it when a report arrives` +
        (audit ? "" : ", quarantining the pod if it breaks the thresholds") +
        ` (spec.vulnerabilities.unscannedImages: rescan)`
      );
  }
}

const lower = (s: Severity) => s.toLowerCase();

/** "3 critical (threshold 0) and 7 high (threshold 5)" */
export function formatExceeded(exceeded: ImageVerdict["exceeded"]): string {
  const parts = exceeded.map((e) => `${e.count} ${lower(e.severity)} (threshold ${e.threshold})`);
  return parts.length <= 1 ? (parts[0] ?? "") : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/** The short clause admission lists per image: "image X has 3 critical (threshold 0) per <source>". */
export function describeImageProblem(v: ImageVerdict): string {
  if (v.reason === "OverThreshold") {
    const expired = v.expiredExemptions.length ? `; expired exemptions: ${v.expiredExemptions.join(", ")}` : "";
    return `image ${v.image} has ${formatExceeded(v.exceeded)} vulnerabilities (scan: ${v.source})${expired}`;
  }
  if (v.reason === "Unscanned") return `image ${v.image} has no vulnerability scan yet`;
  return v.message;
}

function overMessage(v: ImageVerdict, scan: ScanRecord, p: CompiledPolicy): string {
  const examples = exampleFindings(v, scan, p);
  const expired = v.expiredExemptions.length
    ? `; the exemptions for ${v.expiredExemptions.join(", ")} have expired, so they count again`
    : "";
  return (
    `image ${v.image} has ${formatExceeded(v.exceeded)} vulnerabilities` +
    (examples ? ` (${examples})` : "") +
    `, over the thresholds of RuntimeRule ${v.rule} (scan: ${v.source})${expired}` +
    (v.enforcement === "audit" ? "; the rule is in audit mode, so it is only reported" : "") +
    `: upgrade the image, or add an exemption to spec.vulnerabilities.exemptions of RuntimeRule ${v.rule} with an expires date`
  );
}

// Examples depend only on the scan, the exceeded severities, the exemptions used and ignoreUnfixed:
// admission asks for the same ones for every pod of a workload.
const examplesCache = new WeakMap<ScanRecord, Map<string, string>>();

/** Up to three findings behind the exceeded severities, so the user knows where to start. */
function exampleFindings(v: ImageVerdict, scan: ScanRecord, p: CompiledPolicy): string {
  let perScan = examplesCache.get(scan);
  if (!perScan) examplesCache.set(scan, (perScan = new Map()));
  const key = `${v.exceeded.map((e) => e.severity).join(",")}|${v.exempted.join(",")}|${p.ignoreUnfixed}`;
  let text = perScan.get(key);
  if (text !== undefined) return text;
  const over = new Set(v.exceeded.map((e) => e.severity));
  const skip = new Set(v.exempted.map((id) => id.toUpperCase()));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of scan.vulnerabilities) {
    if (out.length === 3) break;
    if (!over.has(f.severity) || f.id === SUMMARY_ONLY_ID || seen.has(f.id) || skip.has(f.id.toUpperCase())) continue;
    if (p.ignoreUnfixed && !countsUnderIgnoreUnfixed(f)) continue;
    seen.add(f.id);
    const pkg = f.pkg ? ` in ${f.pkg}${f.installedVersion ? ` ${f.installedVersion}` : ""}` : "";
    out.push(`${f.id}${pkg}${f.fixedVersion ? `, fixed in ${f.fixedVersion}` : ", no fix yet"}`);
  }
  text = out.join("; ");
  if (perScan.size >= 64) perScan.clear();
  perScan.set(key, text);
  return text;
}

function withinMessage(v: ImageVerdict, p: CompiledPolicy): string {
  let counts = p.thresholds.length ? "" : "no thresholds set";
  for (let i = 0; i < p.thresholds.length; i++) counts += `${i ? ", " : ""}${v.counts[p.thresholds[i][0]]}${p.thresholdText[i]}`;
  const exempted = v.exempted.length ? `; exempted until their expiry: ${v.exempted.join(", ")}` : "";
  const expired = v.expiredExemptions.length ? `; counted again after their exemption expired: ${v.expiredExemptions.join(", ")}` : "";
  return `image ${v.image} is within the thresholds of RuntimeRule ${v.rule}: ${counts} (scan: ${v.source})${exempted}${expired}`;
}
