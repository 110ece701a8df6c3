// The quarantine NetworkPolicy: one per namespace, deny-all ingress and egress for pods labelled
// tenet.dev/quarantined=true. Created on the first quarantine in a namespace and left in place:
// a released pod loses the label, so the policy simply stops selecting it.
import { isDeepStrictEqual } from "node:util";
import { resourcePath, type Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { Informer } from "../runtime/informer.ts";
import type { KubeObject } from "../../common/objects.ts";
import { MANAGED_BY_LABEL, MANAGED_BY_TENET, NETWORK_POLICY_NAME, PART_OF_TENET, PURPOSE_ANNOTATION, QUARANTINE_LABEL } from "../../common/names.ts";

export const NetworkPolicies = { group: "networking.k8s.io", version: "v1", plural: "networkpolicies" };

const desiredSpec = { podSelector: { matchLabels: { [QUARANTINE_LABEL]: "true" } }, policyTypes: ["Ingress", "Egress"] };

interface CachedPolicy extends KubeObject {
  spec: unknown;
}

export class QuarantinePolicies {
  readonly informer: Informer<CachedPolicy>;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly fieldManager: string,
  ) {
    this.informer = new Informer<CachedPolicy>(kube, log, {
      name: "quarantine-networkpolicies",
      resource: NetworkPolicies,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_TENET[MANAGED_BY_LABEL]}`,
      transform: (raw) => ({ metadata: { name: raw.metadata.name, namespace: raw.metadata.namespace, resourceVersion: raw.metadata.resourceVersion }, spec: raw.spec }),
    });
  }

  /** Cached policies already found intact: the informer replaces an object on change, never edits it,
   * so each is compared once, not once per quarantined pod. */
  private readonly checked = new WeakSet<CachedPolicy>();

  /** Whether the cached policy of the namespace is exactly what we want (absent: false). */
  intact(namespace: string): boolean {
    const have = this.informer.get(`${namespace}/${NETWORK_POLICY_NAME}`);
    if (!have) return false;
    if (this.checked.has(have)) return true;
    const ok = isDeepStrictEqual(normalize(have.spec), desiredSpec);
    if (ok) this.checked.add(have);
    return ok;
  }

  /** Server-side apply unless the cached policy already is what we want. An edited policy gets
   * its whole spec replaced: an apply would keep the rules another manager added (an `ingress:
   * [{}]` allows everything), since it only removes fields it owned. */
  async ensure(namespace: string): Promise<void> {
    if (this.intact(namespace)) return;
    const have = this.informer.get(`${namespace}/${NETWORK_POLICY_NAME}`);
    const path = resourcePath(NetworkPolicies, namespace, NETWORK_POLICY_NAME);
    if (have) {
      await this.kube.patch(path, "json", [{ op: "replace", path: "/spec", value: desiredSpec }]).catch((err) => {
        this.log.warn({ networkPolicy: `${namespace}/${NETWORK_POLICY_NAME}`, err: (err as Error).message }, "could not replace the quarantine NetworkPolicy's spec; applying it");
      });
    }
    await this.kube.apply(
      resourcePath(NetworkPolicies, namespace, NETWORK_POLICY_NAME),
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: NETWORK_POLICY_NAME, namespace, labels: { ...MANAGED_BY_TENET, ...PART_OF_TENET }, annotations: { [PURPOSE_ANNOTATION]: "isolates pods Tenet quarantined (label tenet.dev/quarantined=true): no ingress, no egress" } },
        spec: desiredSpec,
      },
      this.fieldManager,
    );
    this.log.info({ networkPolicy: `${namespace}/${NETWORK_POLICY_NAME}` }, "quarantine NetworkPolicy applied");
  }
}

/** The API server leaves empty rules out; anything beyond our selector and types (rules that
 * allow traffic, extra selector terms) is a change to undo. */
function normalize(spec: any) {
  const out: any = { podSelector: spec?.podSelector, policyTypes: spec?.policyTypes };
  for (const k of Object.keys(spec ?? {})) if (!(k in out) && !(Array.isArray(spec[k]) && spec[k].length === 0)) out[k] = spec[k];
  if (out.podSelector && Array.isArray(out.podSelector.matchExpressions) && out.podSelector.matchExpressions.length === 0) out.podSelector = { matchLabels: out.podSelector.matchLabels };
  return out;
}
