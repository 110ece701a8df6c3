// The API server applies a CRD's schema defaults when it stores an object, so the webhook only
// ever judges defaulted RuntimeRules (an unset requireRunAsNonRoot is true). `tenet check` reads
// objects that were never stored: it applies the same defaults (crds/defaults.gen.ts, generated
// from crds/*.yaml) first, or its verdicts would differ from admission's.
import { CRD_DEFAULTS, type DefaultsTree } from "../crds/defaults.gen.ts";

/** Apiserver structural defaulting: an absent field with a default gets it; present objects and array items are walked. */
export function applyDefaults(kind: string, obj: any): void {
  const tree = CRD_DEFAULTS[kind];
  if (tree) walk(tree, obj);
}

function walk(t: DefaultsTree, v: any): void {
  if (Array.isArray(v)) {
    if (t.items) for (const x of v) walk(t.items, x);
    return;
  }
  if (!v || typeof v !== "object") return;
  for (const [k, sub] of Object.entries(t.properties ?? {})) {
    if (v[k] === undefined && sub.default !== undefined) v[k] = structuredClone(sub.default);
    if (v[k] !== undefined) walk(sub, v[k]);
  }
}
