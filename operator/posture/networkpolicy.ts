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

  /** Server-side apply unless the cached policy already is what we want. */
  async ensure(namespace: string): Promise<void> {
    const have = this.informer.get(`${namespace}/${NETWORK_POLICY_NAME}`);
    if (have && isDeepStrictEqual(normalize(have.spec), desiredSpec)) return;
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

/** The API server leaves empty rules out; compare only what we set. */
function normalize(spec: any) {
  return { podSelector: spec?.podSelector, policyTypes: spec?.policyTypes };
}
