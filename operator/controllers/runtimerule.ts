// RuntimeRule: checks what the schema cannot — expired CVE exemptions, unusable registry
// entries — counts the pods it governs, and wakes up when the next exemption expires.
import type { RuntimeRule } from "../../crds/types.gen.ts";
import { selectorMatcher } from "../../policy/selector.ts";
import { compileDetection } from "../../signals/detection.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { StatusPlan } from "./status-reconciler.ts";
import { verdictFrom } from "./status-reconciler.ts";

export const Reasons = {
  Valid: "RuleValid",
  ExemptionExpired: "ExemptionExpired",
  InvalidRegistry: "InvalidRegistry",
  InvalidSelector: "InvalidSelector",
  InvalidDetection: "InvalidDetection",
  NeverMatches: "NeverMatches",
} as const;

const MAX_REQUEUE_MS = 6 * 60 * 60_000;

export function planRuntimeRule(rule: RuntimeRule, podsInNamespace: CachedPod[], now: Date): StatusPlan {
  const problems: { reason: string; message: string }[] = [];
  let nextExpiry = Infinity;

  (rule.spec.vulnerabilities?.exemptions ?? []).forEach((ex, i) => {
    const expires = Date.parse(ex.expires);
    if (expires <= now.getTime()) {
      problems.push({
        reason: Reasons.ExemptionExpired,
        message: `spec.vulnerabilities.exemptions[${i}] (${ex.id}) expired at ${ex.expires} and no longer applies; extend its expires date or remove it`,
      });
    } else {
      nextExpiry = Math.min(nextExpiry, expires);
    }
  });

  (rule.spec.podSecurity?.allowedRegistries ?? []).forEach((reg, i) => {
    if (/^[a-z]+:\/\//i.test(reg) || reg.includes("@") || /\s/.test(reg)) {
      problems.push({
        reason: Reasons.InvalidRegistry,
        message: `spec.podSecurity.allowedRegistries[${i}] "${reg}" must be a registry host or repository prefix like "ghcr.io/acme", without scheme, digest or spaces`,
      });
    }
  });

  // Detections that cannot work as written (signals/detection.ts): InvalidDetection, NeverMatches.
  if (rule.spec.detection) problems.push(...compileDetection(rule.spec).problems);

  const { matches, error } = selectorMatcher(rule.spec.selector);
  const matchedPods = podsInNamespace.filter((p) => !p.metadata.deletionTimestamp && matches(p.metadata.labels)).length;
  if (error) problems.unshift({ reason: Reasons.InvalidSelector, message: `spec.selector: ${error}` });

  const exemptions = rule.spec.vulnerabilities?.exemptions?.length ?? 0;
  return {
    fields: { matchedPods },
    verdict: verdictFrom(problems, {
      ready: true,
      reason: Reasons.Valid,
      message: `governs ${matchedPods} pod(s) in ${rule.spec.enforcement ?? "enforce"} mode with ${exemptions} active exemption(s)`,
    }),
    // Wake up when the next exemption expires, so Ready flips at that instant.
    requeueAfterMs: Number.isFinite(nextExpiry) ? Math.min(MAX_REQUEUE_MS, nextExpiry - now.getTime() + 1) : undefined,
  };
}
