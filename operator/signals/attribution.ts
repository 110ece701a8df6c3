// Which workload identity a signal is about: the pod named by namespace + pod, or found by its
// container ID (Falco's 12-character short ID, from the pods' container statuses), then its
// ServiceAccount's SPIFFE ID and the ServiceIdentity selecting it. What cannot be attributed is
// said so (a reason), counted and kept visible by the intake, never silently dropped.
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import type { TenetObject } from "../../common/objects.ts";
import { spiffeID } from "../../pki/spiffe-id.ts";
import type { Attribution, Signal } from "../../signals/event.ts";
import type { CachedPod } from "../cache/pods.ts";
import { selectsPod } from "../controllers/serviceidentity.ts";
import type { Informer } from "../runtime/informer.ts";

export type Unattributed = { unattributed: "NoKubernetesFields" | "UnknownPod" | "UnknownContainer" };

export class Attributor {
  private readonly byContainer = new Map<string, string>();

  constructor(
    private readonly pods: Informer<CachedPod>,
    private readonly identities: Informer<ServiceIdentity & TenetObject> | undefined,
    private readonly trustDomain: string,
  ) {
    pods.onChange((type, pod, old) => {
      const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
      for (const id of old?.status.containerIDs ?? []) if (this.byContainer.get(id) === key) this.byContainer.delete(id);
      if (type === "delete") for (const id of pod.status.containerIDs ?? []) this.byContainer.delete(id);
      else for (const id of pod.status.containerIDs ?? []) this.byContainer.set(id, key);
    });
  }

  /** The pod a Falco event is about: its container ID when known (the node's runtime said so), else namespace + pod. */
  attribute(s: Signal): Attribution | Unattributed {
    const { namespace, pod, containerID } = s.claim;
    if (containerID) {
      const key = this.byContainer.get(containerID);
      const p = key ? this.pods.get(key) : undefined;
      if (p) return this.ofPod(p);
      if (!namespace || !pod) return { unattributed: "UnknownContainer" };
    }
    if (!namespace || !pod) return { unattributed: "NoKubernetesFields" };
    const p = this.pods.get(`${namespace}/${pod}`);
    return p && !p.metadata.deletionTimestamp ? this.ofPod(p) : { unattributed: "UnknownPod" };
  }

  ofPod(p: CachedPod): Attribution {
    const ns = p.metadata.namespace;
    const sa = p.spec.serviceAccountName;
    const selecting = this.identities?.listNamespace(ns).filter((si) => selectsPod(si, p)) ?? [];
    return {
      namespace: ns,
      pod: p.metadata.name,
      podUID: p.metadata.uid,
      serviceAccount: sa,
      spiffeID: spiffeID(this.trustDomain, ns, sa),
      serviceIdentity: selecting.length === 1 ? selecting[0].metadata.name : undefined,
      workload: workloadOf(p),
    };
  }

  /** The labels RuntimeRule selectors see for an attributed pod. */
  labelsOf(a: Attribution): Record<string, string> | undefined {
    return a.pod ? this.pods.get(`${a.namespace}/${a.pod}`)?.metadata.labels : undefined;
  }

  /** An identity without a pod (an admission denial: the pod does not exist yet). */
  ofServiceAccount(namespace: string, serviceAccount: string): Attribution {
    return { namespace, serviceAccount, spiffeID: spiffeID(this.trustDomain, namespace, serviceAccount) };
  }
}

/** Deployment/<name> for a ReplicaSet named <deployment>-<pod-template-hash>, else the controller, else Pod/<name>. */
export function workloadOf(p: CachedPod): string {
  const o = p.owner;
  if (!o) return `Pod/${p.metadata.name}`;
  const hash = p.metadata.labels?.["pod-template-hash"];
  if (o.kind === "ReplicaSet" && hash && o.name.endsWith(`-${hash}`)) return `Deployment/${o.name.slice(0, -hash.length - 1)}`;
  return `${o.kind}/${o.name}`;
}
