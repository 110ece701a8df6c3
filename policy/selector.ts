// metav1.LabelSelector matching, with the API server's semantics: an empty selector matches
// everything; requirements AND together.
export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist" | string;
  values?: string[];
}
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export type LabelMatcher = (labels: Record<string, string> | undefined) => boolean;

/** Compiles a selector once so matching thousands of pods costs a few lookups each. */
export function compileSelector(sel: LabelSelector | undefined): LabelMatcher {
  const exact = Object.entries(sel?.matchLabels ?? {});
  const exprs = (sel?.matchExpressions ?? []).map((e) => {
    const values = new Set(e.values ?? []);
    switch (e.operator) {
      case "In":
        return (l: Record<string, string>) => e.key in l && values.has(l[e.key]);
      case "NotIn":
        return (l: Record<string, string>) => !(e.key in l) || !values.has(l[e.key]);
      case "Exists":
        return (l: Record<string, string>) => e.key in l;
      case "DoesNotExist":
        return (l: Record<string, string>) => !(e.key in l);
      default:
        throw new Error(`unknown selector operator "${e.operator}" for key "${e.key}"`);
    }
  });
  return (labels) => {
    const l = labels ?? {};
    for (const [k, v] of exact) if (l[k] !== v) return false;
    for (const f of exprs) if (!f(l)) return false;
    return true;
  };
}

/** A selector as kubectl users write it: `app=orders,tier in (web,api)`. */
export function formatSelector(sel: LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator.toLowerCase() === "in" ? "in" : "notin"} (${(e.values ?? []).join(",")})`);
  }
  return parts.length ? parts.join(",") : "(everything)";
}

/** What a selector that cannot be compiled matches: nothing. */
export const MATCHES_NOTHING: LabelMatcher = () => false;

/**
 * THE rule for selectors everywhere in Tenet (ADR 6): a selector that fails to compile (an
 * unknown operator; the CRD schemas make it unreachable through the API server) matches
 * nothing, and `error` says why so the object's status can report it (reason InvalidSelector).
 * It never extends an object to pods its author did not mean.
 */
export function selectorMatcher(sel: LabelSelector | undefined): { matches: LabelMatcher; error?: string } {
  try {
    return { matches: compileSelector(sel) };
  } catch (err) {
    return { matches: MATCHES_NOTHING, error: (err as Error).message };
  }
}

const compiled = new WeakMap<object, LabelMatcher>();

/** selectorMatcher(owner.selector).matches, compiled once per owner object (a cached spec: the same object until it changes). */
export function matcherOf(owner: { selector?: LabelSelector }): LabelMatcher {
  let m = compiled.get(owner);
  if (!m) compiled.set(owner, (m = selectorMatcher(owner.selector ?? {}).matches));
  return m;
}
