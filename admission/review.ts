// What an admission decision takes and gives, independent of how it arrives: the operator's
// webhooks decode AdmissionReviews into it (operator/admission/transport.ts), `tenet check`
// builds it from manifests (cli/check.ts). Types and constants only.

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  userInfo?: { username?: string; groups?: string[] };
  object?: any;
  oldObject?: any;
  dryRun?: boolean;
}

export interface AdmissionResult {
  allowed: boolean;
  /** Shown to the user when denied. */
  message?: string;
  /** Machine-readable reason, for metrics and logs. */
  reason: string;
  patch?: unknown[];
  /** `patch` already encoded (base64 of its JSON), when a cache holds it. */
  encodedPatch?: string;
  warnings?: string[];
}

/**
 * `reviewKey`, when the transport has one: the review's text without its uid. Two requests with
 * the same key are the same request but for the uid, so it can key the handlers' caches.
 */
export type AdmissionHandler = (req: AdmissionRequest, reviewKey?: string) => AdmissionResult | Promise<AdmissionResult>;

/**
 * The kinds the webhook configurations send (operator/admission/webhook-config.ts) and
 * `tenet check` judges; any other request.kind.kind — which an unauthenticated caller of the
 * port can set to anything — is counted as "other", so the label set of
 * tenet_admission_requests_total stays finite.
 */
export const ADMISSION_KINDS: ReadonlySet<string> = new Set(["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"]);
