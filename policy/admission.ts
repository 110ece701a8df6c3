// The validating-admission decision for a pod (or a workload's pod template): every RuntimeRule of
// the namespace whose selector matches, every container image once per rule, one message that lists
// every violation of every enforcing rule. Pure: caches and clock come from the caller.

import { matcherOf } from "./selector.ts";
import { ImageRefError, parseImage, type ImageRef } from "../common/images.ts";
import { containersOf, groupViolations, podSecurityViolations, type PodSecurityViolation } from "./podsecurity.ts";
import type { ScanRecord } from "../scans/records.ts";
import type { ScanIndex } from "../scans/scan-index.ts";
import { describeImageProblem, evaluateImage, formatExceeded, type Decision, type ImageVerdict, type RuleRef } from "./vulnerabilities.ts";
import type { RuntimeRuleSpec } from "../crds/types.gen.ts";

export interface PodUnderReview {
  namespace: string;
  labels: Record<string, string>;
  podSpec: any;
  /** "Pod demo/orders-x" or "Deployment demo/orders" for messages */
  owner: string;
}

export interface RuleVerdict {
  rule: string;
  enforcement: "enforce" | "audit";
  images: ImageVerdict[];
  podSecurity: PodSecurityViolation[];
  decision: Decision;
  message: string;
}

export interface AdmissionVerdict {
  allowed: boolean;
  /** admission warnings (audit mode, warn) */
  warnings: string[];
  /** the denial message when !allowed: every violation of every enforcing rule, one message */
  message: string;
  rules: RuleVerdict[];
}

/** The API server shows long denial messages cut; we summarize before that happens. */
export const MAX_MESSAGE = 1500;
/** Events carry RuleVerdict.message; keep it well inside an Event's note. */
export const MAX_RULE_MESSAGE = 1000;
/** Kubernetes asks for warnings under 120 characters and may truncate those over 256, or many of them. */
export const MAX_WARNING = 256;
export const MAX_WARNINGS = 10;
/** One item of a message (a violation, or alike violations together) never takes more than this. */
const MAX_ITEM = 400;

// Selectors compile once per rule spec (policy/selector.ts matcherOf): the webhook rebuilds RuleRefs per
// request, but the spec object stays the same while the cached RuntimeRule does.

// Parsed images by reference; pods of one workload repeat the same few strings.
const imageCache = new Map<string, ImageRef | ImageRefError>();
const IMAGE_CACHE_LIMIT = 10_000;

function parseCached(raw: string): ImageRef | ImageRefError {
  let r = imageCache.get(raw);
  if (r === undefined) {
    try {
      r = Object.freeze(parseImage(raw)) as ImageRef;
    } catch (e) {
      if (!(e instanceof ImageRefError)) throw e;
      r = e;
    }
    if (imageCache.size >= IMAGE_CACHE_LIMIT) imageCache.clear();
    imageCache.set(raw, r);
  }
  return r;
}

interface PodImage {
  raw: string;
  ref: ImageRef;
  invalid?: string;
  scan?: ScanRecord;
}

export function evaluatePod(pod: PodUnderReview, rules: RuleRef[], scans: ScanIndex, now: Date): AdmissionVerdict {
  const applicable: RuleRef[] = [];
  for (const r of rules) if (r.namespace === pod.namespace && matcherOf(r.spec)(pod.labels)) applicable.push(r);
  if (applicable.length === 0) return { allowed: true, warnings: [], message: "", rules: [] };

  // Every distinct image of every container kind, parsed and looked up once for all rules.
  const images: PodImage[] = [];
  const seen = new Set<string>();
  for (const { container } of containersOf(pod.podSpec)) {
    const raw = typeof container.image === "string" ? container.image : "";
    if (seen.has(raw)) continue;
    seen.add(raw);
    const parsed = parseCached(raw);
    if (parsed instanceof ImageRefError) {
      // No scan can describe an invalid reference: it is judged as unscanned, and the message says why.
      images.push({ raw, ref: { registry: "", repository: raw, full: raw, raw }, invalid: parsed.message });
    } else {
      images.push({ raw, ref: parsed, scan: scans.lookup(parsed, pod.namespace) });
    }
  }
  const refs: ImageRef[] = [];
  for (const i of images) if (!i.invalid) refs.push(i.ref);

  const verdicts: RuleVerdict[] = [];
  const refusals: Refusal[] = [];
  const warnings: string[] = [];
  for (const rule of applicable) {
    const ruleName = `${rule.namespace}/${rule.name}`;
    const enforcement = rule.spec.enforcement === "audit" ? "audit" : "enforce";
    const audit = enforcement === "audit";
    const imageVerdicts: ImageVerdict[] = [];
    let denies = false;
    let warns = false;
    for (const img of images) {
      const v = evaluateImage(img.ref, img.scan, rule, now);
      if (img.invalid) v.message = `image ${JSON.stringify(img.raw)} is not a valid reference (${img.invalid}), so no scan can match it; ${v.message}`;
      if (v.decision === "deny") denies = true;
      else if (v.decision === "warn") warns = true;
      imageVerdicts.push(v);
    }
    const podSecurity = podSecurityViolations(pod.podSpec, rule.spec.podSecurity, refs);
    if (podSecurity.length) {
      if (audit) warns = true;
      else denies = true;
    }
    const decision: Decision = denies ? "deny" : warns ? "warn" : "allow";
    const label = `RuntimeRule ${ruleName}${audit ? " (audit)" : ""}`;
    if (decision === "allow") {
      const message = `${label} admits it: ${images.length} image${images.length === 1 ? "" : "s"} checked, no violations`;
      verdicts.push({ rule: ruleName, enforcement, images: imageVerdicts, podSecurity, decision, message });
      continue;
    }

    // What the rule objects to (in audit mode: what it would refuse), and what it only notes.
    const unscannedDeny = rule.spec.vulnerabilities?.unscannedImages === "deny";
    const refused: ImageVerdict[] = [];
    const noted: ImageVerdict[] = [];
    for (const v of imageVerdicts) {
      if (v.decision === "allow") continue;
      if (v.reason === "OverThreshold" || (v.reason === "Unscanned" && unscannedDeny)) refused.push(v);
      else noted.push(v);
    }
    // Warnings must stay short: the fix is spelled out only where the rule refuses.
    const objections: Item[] = [...imageEntries(refused, images, true, audit ? undefined : ruleName), ...groupViolations(podSecurity)];
    const notes = imageEntries(noted, images, false, undefined);
    const head = `${label} ${objections.length === 0 ? "admits it with warnings" : audit ? "would refuse it" : "refuses it"}: `;
    const message = clip(head + fitItems([...objections, ...notes], MAX_RULE_MESSAGE - head.length), MAX_RULE_MESSAGE);
    verdicts.push({ rule: ruleName, enforcement, images: imageVerdicts, podSecurity, decision, message });
    if (decision === "deny") refusals.push({ rule: ruleName, items: objections });
    for (const n of notes) warnings.push(`${label}: ${n.text}`);
    if (audit) for (const o of objections) warnings.push(`${label} would refuse it: ${o.text}`);
  }

  return {
    allowed: refusals.length === 0,
    warnings: capWarnings(warnings, verdicts),
    message: refusals.length ? denialMessage(pod.owner, refusals) : "",
    rules: verdicts,
  };
}

/** One thing a rule objects to: the full sentence, and a few words for when space runs out. */
interface Item {
  text: string;
  brief: string;
}

interface Refusal {
  rule: string;
  items: Item[];
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(max - 1, 0))}…`;
}

/**
 * Image problems: one item per over-threshold image (its counts and scan; the last one also says
 * how to fix them in RuntimeRule `fixIn`), one for all unscanned images together. `refused` says
 * whether the rule refuses (or would refuse) them, or only notes them.
 */
function imageEntries(vs: ImageVerdict[], images: PodImage[], refused: boolean, fixIn: string | undefined): Item[] {
  const out: Item[] = [];
  const unscanned: string[] = [];
  let over = 0;
  let lastOver = -1;
  for (const v of vs) {
    const invalid = images.find((i) => i.raw === v.image)?.invalid;
    if (v.reason === "OverThreshold") {
      over++;
      lastOver = out.length;
      out.push({ text: describeImageProblem(v), brief: `image ${v.image}: ${formatExceeded(v.exceeded)}` });
    } else if (v.reason === "Unscanned" && !invalid) unscanned.push(v.image);
    else out.push({ text: v.message, brief: `invalid image ${JSON.stringify(v.image)}` });
  }
  if (fixIn && lastOver >= 0) {
    out[lastOver].text += over === 1
      ? `: upgrade the image, or add an exemption with an expires date to spec.vulnerabilities.exemptions of RuntimeRule ${fixIn}`
      : `: upgrade the images, or add exemptions with an expires date to spec.vulnerabilities.exemptions of RuntimeRule ${fixIn}`;
  }
  if (unscanned.length) {
    const names = unscanned.length === 1 ? `image ${unscanned[0]} has` : `images ${listOf(unscanned)} have`;
    out.push({
      text: refused
        ? `${names} no vulnerability scan yet and the rule refuses unscanned images (spec.vulnerabilities.unscannedImages: deny): publish a Trivy report first, or set unscannedImages to rescan to admit and re-evaluate when the report arrives`
        : `${names} no vulnerability scan yet (spec.vulnerabilities.unscannedImages: warn)`,
      brief: `unscanned: ${listOf(unscanned)}`,
    });
  }
  return out;
}

function listOf(items: string[]): string {
  const shown = items.length > 5 ? [...items.slice(0, 4), `${items.length - 4} more`] : items;
  return shown.length === 1 ? shown[0] : `${shown.slice(0, -1).join(", ")} and ${shown[shown.length - 1]}`;
}

/**
 * Items within a budget of characters: full sentences while the rest can still be named briefly,
 * then the rest briefly ("also: hostPath: "/boot", "/dev"; …"), so every violation is at least named.
 */
function fitItems(items: Item[], budget: number): string {
  const n = items.length;
  // briefTail[i]: room needed to name items i.. briefly after the full ones.
  const briefTail: number[] = new Array(n + 1).fill(0);
  for (let i = n - 1; i >= 0; i--) briefTail[i] = briefTail[i + 1] + items[i].brief.length + 2;
  let out = "";
  let i = 0;
  for (; i < n; i++) {
    const text = clip(items[i].text, MAX_ITEM);
    const next = out.length + (out ? 2 : 0) + text.length;
    const rest = i + 1 < n ? 8 + briefTail[i + 1] : 0;
    if (next + rest > budget) break;
    out += (out ? "; " : "") + text;
  }
  if (i < n) {
    out += out ? "; also " : "";
    for (let j = i; j < n; j++) {
      const brief = (j > i ? "; " : "") + items[j].brief;
      const more = n - j - 1 > 0 ? `; and ${n - j - 1} more` : "";
      if (j > i && out.length + brief.length + more.length > budget) return `${out}; and ${n - j} more`;
      out += j === i ? clip(brief, Math.max(budget - out.length - more.length, 40)) : brief;
    }
  }
  return out;
}

/** "Deployment demo/orders refused by RuntimeRule demo/a: …; and by RuntimeRule demo/b: …", within MAX_MESSAGE. */
function denialMessage(owner: string, refusals: Refusal[]): string {
  let text = `${owner} refused by `;
  refusals.forEach(({ rule, items }, i) => {
    const intro = `${i === 0 ? "" : "; and by "}RuntimeRule ${rule}: `;
    // Share what is left between this rule and those still to come, so every refusing rule is named.
    const left = MAX_MESSAGE - text.length - intro.length;
    const share = i === refusals.length - 1 ? left : Math.max(Math.floor(left / (refusals.length - i)), 160);
    text += intro + fitItems(items, share);
  });
  return clip(text, MAX_MESSAGE);
}

function capWarnings(all: string[], verdicts: RuleVerdict[]): string[] {
  const out = all.slice(0, MAX_WARNINGS).map((w) => clip(w, MAX_WARNING));
  if (all.length > MAX_WARNINGS) {
    const rules = [...new Set(verdicts.filter((v) => v.decision !== "allow").map((v) => v.rule))].join(", ");
    out[MAX_WARNINGS - 1] = clip(`and ${all.length - MAX_WARNINGS + 1} more warnings (see the Events of RuntimeRule ${rules})`, MAX_WARNING);
  }
  return out;
}

/**
 * The pod spec and pod labels inside an object admission sees: a Pod, a workload's pod template,
 * or a CronJob's job template. Anything else has no pod spec.
 */
export function podSpecOf(kind: string, obj: any): { podSpec: any; labels: Record<string, string> } | undefined {
  if (!obj || typeof obj !== "object") return undefined;
  let holder: any;
  switch (kind) {
    case "Pod":
      holder = obj;
      break;
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "ReplicationController":
    case "Job":
      holder = obj.spec?.template;
      break;
    case "CronJob":
      holder = obj.spec?.jobTemplate?.spec?.template;
      break;
    default:
      return undefined;
  }
  const podSpec = holder?.spec;
  if (!podSpec || typeof podSpec !== "object") return undefined;
  const labels = holder.metadata?.labels;
  return { podSpec, labels: labels && typeof labels === "object" ? labels : {} };
}
