// APIPolicy: checks what the schema cannot — that every rule names declared APIs and
// scopes, that path patterns and inline JWKS are usable — and counts protected workloads.
import { clip } from "../../common/bounded.ts";
import type { APIPolicy } from "../../crds/types.gen.ts";
import { jwksProblem, policyDocument, specVersion } from "../../policy/authz.ts";
import { selectorMatcher } from "../../policy/selector.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { StatusPlan } from "./status-reconciler.ts";
import { verdictFrom } from "./status-reconciler.ts";
import { POLICY_VERSION_ANNOTATION } from "../../common/names.ts";

export const Reasons = {
  Valid: "PolicyValid",
  UnknownAPI: "UnknownAPI",
  UnknownScope: "UnknownScope",
  InvalidPath: "InvalidPathPattern",
  InvalidJWKS: "InvalidJWKS",
  InvalidSelector: "InvalidSelector",
} as const;

/** Path patterns: literal segments, `*` for exactly one segment, a trailing `**` for any rest. */
export function pathPatternProblem(pattern: string): string | undefined {
  if (!pattern.startsWith("/")) return "must start with '/'";
  const segments = pattern.split("/").slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === "**" && i !== segments.length - 1) return "'**' may only be the last segment";
    if (s !== "*" && s !== "**" && s.includes("*")) return "a wildcard must be a whole segment ('*') or a trailing '/**'";
    if (s === "." || s === "..") return "'.' and '..' segments are not allowed (paths are normalized before matching)";
    if (s === "" && i !== segments.length - 1) return "empty segment ('//')";
  }
  return undefined;
}

/**
 * Status: workloads = pods selected; compiledVersion = hash of this policy's spec; enforcers = selected
 * pods whose recorded document version (POLICY_VERSION_ANNOTATION) equals the version of the document
 * the operator serves them now — a document that contains this policy's current spec. Counted only
 * when `policiesInNamespace` is given (the document depends on every policy selecting the pod).
 */
/** The condition that says whether the operator could fetch the key sets this policy's rules name by jwksURI. */
export const JWKS_CONDITION = "JWKSFetched";

export function planAPIPolicy(
  policy: APIPolicy,
  podsInNamespace: CachedPod[],
  policiesInNamespace?: APIPolicy[],
  jwks?: (uri: string) => string | undefined,
  jwksFetchProblem?: (uri: string) => { reason: string; message: string } | undefined,
): StatusPlan {
  const problems: { reason: string; message: string }[] = [];
  const apis = new Map((policy.spec.apis ?? []).map((a) => [a.name, a]));

  (policy.spec.apis ?? []).forEach((api, i) => {
    (api.paths ?? []).forEach((p, j) => {
      const why = pathPatternProblem(p);
      if (why) problems.push({ reason: Reasons.InvalidPath, message: `spec.apis[${i}].paths[${j}] "${p}": ${why}` });
    });
  });

  (policy.spec.rules ?? []).forEach((rule, i) => {
    (rule.to ?? []).forEach((to, j) => {
      const api = apis.get(to.api);
      if (!api) {
        const declared = [...apis.keys()].join(", ") || "none";
        problems.push({
          reason: Reasons.UnknownAPI,
          message: `spec.rules[${i}] (${rule.name}).to[${j}].api "${to.api}" is not declared in spec.apis (declared: ${declared}); declare it or fix the name`,
        });
        return;
      }
      const scopes = new Set(Object.values(api.methods ?? {}));
      (to.scopes ?? []).forEach((scope, k) => {
        if (!scopes.has(scope)) {
          problems.push({
            reason: Reasons.UnknownScope,
            message: `spec.rules[${i}] (${rule.name}).to[${j}].scopes[${k}] "${scope}" is not a scope of API "${to.api}" (its scopes: ${[...scopes].join(", ") || "none"}); map a method to it in spec.apis or fix the scope`,
          });
        }
      });
    });
    const jwks = rule.jwt?.jwks;
    if (jwks !== undefined) {
      const why = jwksProblem(jwks);
      if (why) problems.push({ reason: Reasons.InvalidJWKS, message: `spec.rules[${i}] (${rule.name}).jwt.jwks: ${why}; paste a JWKS document ({"keys":[...]}) or use jwt.jwksURI` });
    }
  });

  let workloads = 0;
  let enforcers: number | undefined;
  const { matches, error } = selectorMatcher(policy.spec.selector);
  if (error) problems.unshift({ reason: Reasons.InvalidSelector, message: `spec.selector: ${error}` });
  else {
    const selected = podsInNamespace.filter((p) => !p.metadata.deletionTimestamp && matches(p.metadata.labels));
    workloads = selected.length;
    if (policiesInNamespace) {
      const versions = new Map<string, string>();
      enforcers = 0;
      for (const pod of selected) {
        const recorded = pod.metadata.annotations?.[POLICY_VERSION_ANNOTATION];
        if (!recorded) continue;
        const key = JSON.stringify(Object.entries(pod.metadata.labels ?? {}).sort());
        let current = versions.get(key);
        if (current === undefined) {
          current = policyDocument(pod.metadata.namespace, pod.metadata.labels, policiesInNamespace, jwks).version;
          versions.set(key, current);
        }
        if (recorded === current) enforcers++;
      }
    }
  }

  const rules = policy.spec.rules?.length ?? 0;
  return {
    conditions: jwksFetchProblem ? { [JWKS_CONDITION]: jwksCondition(policy, jwks, jwksFetchProblem) } : undefined,
    fields: { workloads, compiledVersion: specVersion(policy.spec), ...(enforcers !== undefined ? { enforcers } : {}) },
    verdict: verdictFrom(problems, {
      ready: true,
      reason: Reasons.Valid,
      message: `${apis.size} API(s), ${rules} rule(s), protecting ${workloads} pod(s) in ${policy.spec.mode ?? "enforce"} mode${rules === 0 ? "; no rule allows anything, so every call is denied" : ""}`,
    }),
  };
}

function jwksCondition(policy: APIPolicy, jwks: ((uri: string) => string | undefined) | undefined, problem: (uri: string) => { reason: string; message: string } | undefined) {
  const uris = [...new Set((policy.spec.rules ?? []).map((r) => r.jwt?.jwksURI).filter((u): u is string => typeof u === "string" && u !== ""))];
  if (uris.length === 0) return undefined;
  const problems = uris.map(problem).filter((p): p is { reason: string; message: string } => !!p);
  if (problems.length) return { ready: false, reason: problems[0].reason, message: clip(`${problems.map((p) => p.message).join("; ")}; enforcers fetch the keys themselves meanwhile`, 4096)! };
  const pending = uris.filter((u) => jwks?.(u) === undefined);
  if (pending.length) return { ready: undefined, reason: "JWKSPending", message: `not fetched yet: ${pending.join(", ")}` };
  return { ready: true, reason: "JWKSFetched", message: `the operator fetched ${uris.length} key set(s) and ships them in the policy documents` };
}
