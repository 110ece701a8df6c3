// The shape all three first controllers share: read the object from the cache, compute the
// desired status with a pure plan function, write it only if it changed, and tell the user
// with an Event when readiness flips.
import type { Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import type { Condition, TenetObject } from "../../common/objects.ts";
import { getCondition, setCondition } from "../runtime/conditions.ts";
import type { ReconcileResult, Reconciler } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import { patchStatusIfChanged } from "../runtime/status.ts";

export interface ReadyVerdict {
  ready: boolean;
  reason: string;
  message: string;
  /** Not ready, but expected to become ready without a change to the spec (waiting for pods): kstatus
   * InProgress (Reconciling=True). Otherwise a not-ready object needs its spec fixed: Stalled=True. */
  progressing?: boolean;
}

/** kstatus' abnormal-true conditions (sigs.k8s.io/cli-utils/pkg/kstatus), which Flux reads with Ready. */
export const KSTATUS = { reconciling: "Reconciling", stalled: "Stalled" } as const;

export interface StatusPlan {
  /** Status fields this controller owns (besides observedGeneration and conditions). */
  fields: Record<string, unknown>;
  verdict: ReadyVerdict;
  /** Further conditions this controller owns, by type; undefined removes the condition. Unknown status: ready undefined. */
  conditions?: Record<string, (Omit<ReadyVerdict, "ready"> & { ready: boolean | undefined }) | undefined>;
  requeueAfterMs?: number;
}

export function statusReconciler<T extends TenetObject>(deps: {
  kube: Kube;
  events: EventRecorder;
  informer: Informer<T>;
  resource: { group: string; version: string; plural: string };
  kind: string;
  plan: (obj: T, now: Date, log: Logger) => StatusPlan;
  now?: () => Date;
}): Reconciler {
  return async (key, log): Promise<ReconcileResult | void> => {
    const obj = deps.informer.get(key);
    if (!obj || obj.metadata.deletionTimestamp) return;
    const now = deps.now?.() ?? new Date();
    const plan = deps.plan(obj, now, log);
    const generation = obj.metadata.generation;
    const previous = getCondition(obj.status?.conditions, "Ready");
    const ready: Condition = {
      type: "Ready",
      status: plan.verdict.ready ? "True" : "False",
      reason: plan.verdict.reason,
      message: plan.verdict.message,
      observedGeneration: generation,
    };
    let conditions = setCondition(obj.status?.conditions, ready, now);
    // kstatus: Stalled=True (Failed) when only a spec change helps, Reconciling=True (InProgress)
    // while waiting; neither once Ready. Both carry Ready's reason and message.
    const abnormal = plan.verdict.ready ? undefined : plan.verdict.progressing ? KSTATUS.reconciling : KSTATUS.stalled;
    for (const type of [KSTATUS.reconciling, KSTATUS.stalled]) {
      if (type === abnormal) conditions = setCondition(conditions, { ...ready, type, status: "True" }, now);
      else conditions = conditions.filter((c) => c.type !== type);
    }
    for (const [type, c] of Object.entries(plan.conditions ?? {})) {
      if (!c) conditions = conditions.filter((x) => x.type !== type);
      else conditions = setCondition(conditions, { type, status: c.ready === undefined ? "Unknown" : c.ready ? "True" : "False", reason: c.reason, message: c.message, observedGeneration: generation }, now);
    }
    const written = await patchStatusIfChanged(deps.kube, deps.resource, obj, {
      ...plan.fields,
      observedGeneration: generation,
      conditions,
    });
    if (written) log.debug({ ready: ready.status, reason: ready.reason }, "status updated");
    if (previous?.status !== ready.status || previous?.reason !== ready.reason) {
      log.info({ ready: ready.status, reason: ready.reason, message: ready.message }, "readiness changed");
      const target = { apiVersion: `${deps.resource.group}/${deps.resource.version}`, kind: deps.kind, metadata: obj.metadata as any };
      await deps.events.emit(target, plan.verdict.ready ? "Normal" : "Warning", ready.reason, ready.message);
    }
    return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
  };
}

/** Many problems, one message: the first reason names the condition, every problem is listed. */
export function verdictFrom(problems: { reason: string; message: string; progressing?: boolean }[], ok: ReadyVerdict): ReadyVerdict {
  if (problems.length === 0) return ok;
  return { ready: false, reason: problems[0].reason, message: problems.map((p) => p.message).join("; "), progressing: problems.every((p) => p.progressing) };
}
