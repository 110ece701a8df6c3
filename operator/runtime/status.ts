// Writes status through the /status subresource, by merge patch, only when a field this
// controller owns changed. Fields it does not name (written by other controllers, e.g. the
// CA's issuance counters) are left alone.
import { isDeepStrictEqual } from "node:util";
import { resourcePath, type Kube } from "../../common/kube.ts";
import type { KubeObject } from "../../common/objects.ts";

export async function patchStatusIfChanged(
  kube: Kube,
  resource: { group?: string; version: string; plural: string },
  obj: KubeObject & { status?: Record<string, unknown> },
  owned: Record<string, unknown>,
): Promise<boolean> {
  const current = obj.status ?? {};
  const changed = Object.entries(owned).some(([k, v]) => !isDeepStrictEqual(clean(current[k]), clean(v)));
  if (!changed) return false;
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(owned)) patch[k] = v === undefined ? null : v;
  await kube.patch(resourcePath(resource, obj.metadata.namespace, obj.metadata.name, "status"), "merge", { status: patch });
  return true;
}

/** Drops undefined values so {a: undefined} equals {}. */
const clean = (v: unknown) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
