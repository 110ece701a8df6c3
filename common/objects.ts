// The object shapes every part of Tenet shares: what the informers cache (KubeObject) and what
// Tenet's own kinds add (TenetObject: status with conditions). Types only.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}

export interface KubeObject {
  metadata: ObjectMeta;
}

/** A status condition (metav1.Condition). */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** A ServiceIdentity, APIPolicy or RuntimeRule as the informers cache it. */
export interface TenetObject extends KubeObject {
  apiVersion?: string;
  kind?: string;
  status?: { conditions?: Condition[]; [k: string]: unknown };
}
