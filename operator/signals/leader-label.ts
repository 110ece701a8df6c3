// Correlation state lives in one replica, so every signal must reach the same one: the leader.
// The Service tenet-signals selects only the pod labelled tenet.dev/signals-leader=true; the
// leader labels its own pod when it starts leading, and every replica clears the label at start
// (a replica that lost leadership exits and restarts in the same pod, label and all) and on a
// graceful stop. During a handover both pods may be selected for a moment; events that land on
// the old leader then miss their correlation window there, which is the price of no shared store.
import type { Kube } from "../../common/kube.ts";
import { resourcePath, Resources } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { SIGNALS_LEADER_LABEL } from "../../common/names.ts";

export interface OwnPod {
  namespace: string;
  name: string;
}

/** The operator's own pod (POD_NAME, POD_NAMESPACE from the downward API); undefined outside a pod. */
export function ownPod(env: NodeJS.ProcessEnv = process.env): OwnPod | undefined {
  return env.POD_NAME && env.POD_NAMESPACE ? { namespace: env.POD_NAMESPACE, name: env.POD_NAME } : undefined;
}

/** Sets (leading) or clears the label on the operator's own pod; a failure is logged, never thrown (senders then retry). */
export async function markSignalsLeader(kube: Kube, log: Logger, pod: OwnPod | undefined, leading: boolean): Promise<void> {
  if (!pod) return;
  const body = { metadata: { labels: { [SIGNALS_LEADER_LABEL]: leading ? "true" : null } } };
  for (let attempt = 1; ; attempt++) {
    try {
      await kube.patch(resourcePath(Resources.pods, pod.namespace, pod.name), "merge", body);
      log.info({ pod: `${pod.namespace}/${pod.name}`, label: SIGNALS_LEADER_LABEL, leading }, leading ? "this replica takes signals (Service tenet-signals)" : "this replica takes no signals");
      return;
    } catch (err) {
      if (attempt >= 5) {
        log.warn({ err: (err as Error).message, pod: `${pod.namespace}/${pod.name}`, leading }, "could not label the operator's own pod for the tenet-signals Service");
        return;
      }
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}
