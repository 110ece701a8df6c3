// Leader-only CA housekeeping, as one controller with two kinds of keys:
//   "ca"          — rotation policy (requested, or before expiry), pruning retired CAs and
//                   expired revocations; requeued for the next due time
//   "bundle/<ns>" — the trust-bundle ConfigMap in tenet-system and in every namespace that has
//                   a ServiceIdentity, so workloads can mount it
import type { Logger } from "../../common/logger.ts";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { ReconcileResult, Reconciler } from "../runtime/controller.ts";
import { nextPlanAt } from "./authorities.ts";
import type { CAStore } from "./store.ts";
import type { RevocationList } from "./revocations.ts";
import { BUNDLE_CONFIGMAP, BUNDLE_KEY, COMPONENT_LABEL, PART_OF_TENET } from "../../common/names.ts";

const HOUSEKEEPING_MS = 10 * 60_000;

export function caReconciler(deps: { kube: Kube; store: CAStore; revocations: RevocationList; fieldManager: string }): Reconciler {
  return async (key: string, log: Logger): Promise<ReconcileResult | void> => {
    if (key === "ca") {
      const { state } = await deps.store.maintain();
      await deps.revocations.prune();
      const next = state ? nextPlanAt(state) : undefined;
      const wait = next !== undefined ? Math.max(1000, next - Date.now() + 100) : HOUSEKEEPING_MS;
      return { requeueAfterMs: Math.min(wait, HOUSEKEEPING_MS) };
    }
    if (key.startsWith("bundle/")) {
      const namespace = key.slice("bundle/".length);
      const bundle = deps.store.authorities?.bundlePem;
      if (!bundle) return { requeueAfterMs: 5000 };
      await deps.kube.apply(
        resourcePath(Resources.configMaps, namespace, BUNDLE_CONFIGMAP),
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: BUNDLE_CONFIGMAP, namespace, labels: { ...PART_OF_TENET, [COMPONENT_LABEL]: "trust-bundle" } },
          data: { [BUNDLE_KEY]: bundle },
        },
        deps.fieldManager,
      );
      log.debug({ namespace }, "trust bundle published");
      return;
    }
    log.warn({ key }, "unknown CA controller key");
  };
}
