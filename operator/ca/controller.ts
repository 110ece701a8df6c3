// Leader-only CA housekeeping, as one controller with two kinds of keys:
//   "ca"          — rotation policy of both CAs, workload and serving (requested, or before expiry), pruning retired CAs and
//                   expired revocations; requeued for the next due time
//   "bundle/<ns>" — the trust-bundle ConfigMap in tenet-system and in every namespace that has
//                   a ServiceIdentity, so workloads can mount it
import type { Logger } from "../../common/logger.ts";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { ReconcileResult, Reconciler } from "../runtime/controller.ts";
import { nextPlanAt } from "./authorities.ts";
import type { CAStore } from "./store.ts";
import type { RevocationList } from "./revocations.ts";
import { BUNDLE_CONFIGMAP, BUNDLE_KEY, COMPONENT_LABEL, OPERATOR_BUNDLE_KEY, PART_OF_TENET } from "../../common/names.ts";

const HOUSEKEEPING_MS = 10 * 60_000;

export function caReconciler(deps: { kube: Kube; store: CAStore; servingStore: CAStore; revocations: RevocationList; fieldManager: string }): Reconciler {
  return async (key: string, log: Logger): Promise<ReconcileResult | void> => {
    if (key === "ca") {
      const { state } = await deps.store.maintain();
      const { state: servingState } = await deps.servingStore.maintain();
      await deps.revocations.prune();
      const times = [state, servingState].map((s) => (s ? nextPlanAt(s) : undefined)).filter((t): t is number => t !== undefined);
      const next = times.length ? Math.min(...times) : undefined;
      const wait = next !== undefined ? Math.max(1000, next - Date.now() + 100) : HOUSEKEEPING_MS;
      return { requeueAfterMs: Math.min(wait, HOUSEKEEPING_MS) };
    }
    if (key.startsWith("bundle/")) {
      const namespace = key.slice("bundle/".length);
      const bundle = deps.store.authorities?.bundlePem;
      const operatorBundle = deps.servingStore.authorities?.bundlePem;
      if (!bundle || !operatorBundle) return { requeueAfterMs: 5000 };
      await deps.kube.apply(
        resourcePath(Resources.configMaps, namespace, BUNDLE_CONFIGMAP),
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: BUNDLE_CONFIGMAP, namespace, labels: { ...PART_OF_TENET, [COMPONENT_LABEL]: "trust-bundle" } },
          // ca.crt: the workload CAs (peers); operator-ca.crt: the serving CAs (the operator only).
          data: { [BUNDLE_KEY]: bundle, [OPERATOR_BUNDLE_KEY]: operatorBundle },
        },
        deps.fieldManager,
      );
      log.debug({ namespace }, "trust bundle published");
      return;
    }
    log.warn({ key }, "unknown CA controller key");
  };
}
