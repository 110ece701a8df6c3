// Mutating admission: inject the enforcer sidecar into pods that opted in. Pure: the
// namespace labels come from a cache, the patch from diffing an edited copy.
import type { AdmissionRequest, AdmissionResult } from "./review.ts";
import { InjectionError, injectPod, shouldInject, type InjectionConfig } from "./inject.ts";
import { jsonPatch } from "./patch.ts";
import { ENFORCER_CONTAINER } from "../common/names.ts";
import type { PatchCache } from "./patch-cache.ts";

export interface MutateDeps {
  namespaceLabels: (namespace: string) => Record<string, string> | undefined;
  config: InjectionConfig;
  /** Patches by pod (patch-cache.ts); without it every request computes its patch. */
  patches?: PatchCache;
}

/** `reviewKey`: the transport's key for the review (review.ts), a cheaper cache key than the pod's JSON. */
export function mutate(req: AdmissionRequest, deps: MutateDeps, reviewKey?: string): AdmissionResult {
  if (req.kind.kind !== "Pod" || req.resource.resource !== "pods" || req.subResource || req.operation !== "CREATE") {
    return { allowed: true, reason: "NotAPodCreate" };
  }
  const pod = req.object;
  if (!pod?.spec || !Array.isArray(pod.spec.containers)) return { allowed: false, reason: "MalformedPod", message: "the pod has no spec.containers" };
  const namespace = req.namespace ?? pod.metadata?.namespace ?? "";
  const others = (pod.spec.initContainers ?? []).filter((c: any) => c?.name !== ENFORCER_CONTAINER);
  const sidecar = pod.spec.initContainers?.find((c: any) => c?.name === ENFORCER_CONTAINER);
  // Decided as if the pod had no tenet-enforcer: a pod that arrives with one (pod templates never
  // contain it) is a look-alike or a copy, and injection is level-based — injectPod rewrites
  // Tenet's parts in place, so whatever stands under that name is replaced by the real enforcer.
  const decision = shouldInject(sidecar ? { ...pod, spec: { ...pod.spec, initContainers: others } } : pod, deps.namespaceLabels(namespace) ?? {}, namespace);
  if (!decision.inject && sidecar && sidecar.image !== deps.config.image) {
    return { allowed: false, reason: "ForeignEnforcer", message: `the pod already has a container named ${ENFORCER_CONTAINER} with image ${JSON.stringify(sidecar?.image)}, which Tenet did not inject (expected ${deps.config.image}); remove it and let Tenet inject the enforcer` };
  }
  if (!decision.inject) return { allowed: true, reason: decision.reason };
  try {
    const reason = sidecar ? "Reinjected" : "Injected";
    if (!deps.patches) return { allowed: true, reason, patch: jsonPatch(pod, injectPod(pod, deps.config)) };
    const { ops, encoded } = deps.patches.patchFor(pod, deps.config, reviewKey);
    return { allowed: true, reason, patch: ops as unknown[], encodedPatch: encoded };
  } catch (err) {
    if (err instanceof InjectionError) {
      return { allowed: false, reason: "InjectionConflict", message: `Tenet cannot inject its enforcer into this pod: ${err.message}. Rename the conflicting item, or opt out with the annotation tenet.dev/inject: "false".` };
    }
    throw err;
  }
}
