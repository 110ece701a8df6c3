// ServiceIdentity: which pods an identity covers, the SPIFFE ID they get, and whether the
// object makes sense (a selector that matches nothing, or pods claimed by two identities).
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import { spiffeID } from "../../pki/spiffe-id.ts";
import { formatSelector, selectorMatcher } from "../../policy/selector.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { StatusPlan } from "./status-reconciler.ts";
import { verdictFrom } from "./status-reconciler.ts";

export const Reasons = {
  Valid: "IdentityReady",
  NoMatchingPods: "NoMatchingPods",
  Overlap: "OverlappingIdentities",
  InvalidSelector: "InvalidSelector",
} as const;

/** Pods a ServiceIdentity covers: selector match, optional service account, not terminating. */
export function selectsPod(si: ServiceIdentity, pod: CachedPod, matches = selectorMatcher(si.spec.selector).matches): boolean {
  if (pod.metadata.deletionTimestamp) return false;
  if (si.spec.serviceAccountName && pod.spec.serviceAccountName !== si.spec.serviceAccountName) return false;
  return matches(pod.metadata.labels);
}

export function planServiceIdentity(
  si: ServiceIdentity,
  podsInNamespace: CachedPod[],
  otherIdentities: ServiceIdentity[],
  trustDomain: string,
): StatusPlan {
  const ns = si.metadata.namespace!;
  const problems: { reason: string; message: string; progressing?: boolean }[] = [];
  const { matches, error } = selectorMatcher(si.spec.selector);
  if (error) {
    return {
      fields: { matchedPods: 0 },
      verdict: { ready: false, reason: Reasons.InvalidSelector, message: `spec.selector: ${error}; fix the selector` },
    };
  }
  const pods = podsInNamespace.filter((p) => selectsPod(si, p, matches));
  const accounts = [...new Set(pods.map((p) => p.spec.serviceAccountName))].sort();
  const account = si.spec.serviceAccountName ?? (accounts.length === 1 ? accounts[0] : undefined);
  const id = account ? spiffeID(trustDomain, ns, account) : accounts.length ? accounts.map((a) => spiffeID(trustDomain, ns, a)).join(",") : undefined;

  if (pods.length === 0) {
    const sa = si.spec.serviceAccountName ? ` running as service account "${si.spec.serviceAccountName}"` : "";
    problems.push({
      reason: Reasons.NoMatchingPods,
      message: `spec.selector (${formatSelector(si.spec.selector)}) matches no pod${sa} in namespace ${ns}; check the pods' labels or fix spec.selector`,
      // Pods may still come (a Deployment applied with it): waiting, not stalled.
      progressing: true,
    });
  }
  for (const other of otherIdentities) {
    if (other.metadata.name === si.metadata.name) continue;
    const otherMatches = selectorMatcher(other.spec.selector).matches;
    const shared = pods.find((p) => selectsPod(other, p, otherMatches));
    if (shared) {
      problems.push({
        reason: Reasons.Overlap,
        message: `pod ${shared.metadata.name} is also selected by ServiceIdentity ${other.metadata.name}; a pod must have exactly one identity, so narrow spec.selector of one of them`,
      });
    }
  }
  return {
    fields: { spiffeID: id, matchedPods: pods.length },
    verdict: verdictFrom(problems, {
      ready: true,
      reason: Reasons.Valid,
      message: `${pods.length} pod(s) covered as ${id}`,
    }),
  };
}
