// What the operator keeps of a Pod. Everything else is dropped on arrival, so the cache
// stays a small multiple of the fields it uses.
import type { KubeObject } from "../runtime/informer.ts";

export interface CachedPod extends KubeObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: { serviceAccountName: string; containers: { name: string; image: string }[] };
  status: { phase?: string };
}

export function toCachedPod(raw: any): CachedPod {
  const m = raw.metadata ?? {};
  const spec = raw.spec ?? {};
  const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].map((c: any) => ({ name: String(c.name ?? ""), image: String(c.image ?? "") }));
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      annotations: pick(m.annotations, (k) => k.startsWith("tenet.dev/")),
      deletionTimestamp: m.deletionTimestamp,
    },
    spec: { serviceAccountName: spec.serviceAccountName ?? "default", containers },
    status: { phase: raw.status?.phase },
  };
}

function pick(o: Record<string, string> | undefined, keep: (k: string) => boolean) {
  if (!o) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of Object.entries(o))
    if (keep(k)) {
      out[k] = v;
      any = true;
    }
  return any ? out : undefined;
}
