// Validating admission, before RuntimeRules: the pod metadata Tenet's own decisions rest on is
// out of the pod owner's reach (docs/security.md, "Quarantine state").
//   - tenet.dev/certificates (the serials quarantine revokes), tenet.dev/posture,
//     tenet.dev/posture-detail, tenet.dev/released (the accepted-violation fingerprint) and
//     tenet.dev/quarantined-by (the rules an automatic release answers to) and
//     tenet.dev/signal-response (a runtime-signal response: label or quarantine) are
//     Tenet's: only Tenet's own ServiceAccount may set, change or remove them. tenet.dev/quarantined
//     likewise, except that anyone may set it to "true" (isolating a pod gives nothing away).
//   - tenet.dev/release (a person's explicit release) needs a permission an ordinary namespace
//     editor does not have: `update` on the virtual subresource `runtimerules/release`
//     (group tenet.dev) in the pod's namespace, checked with a SubjectAccessReview for the
//     requesting user. Removing it is always allowed.
// Pods only; CREATE and UPDATE, of the pod itself and of its status and ephemeralcontainers
// subresources (an update through pods/status may change labels and annotations too). The
// ValidatingWebhookConfiguration sends metadata-only updates when they touch one of these keys
// (webhook-config.ts).
import type { AdmissionRequest, AdmissionResult } from "./review.ts";
import { CERTIFICATES_ANNOTATION, DETAIL_ANNOTATION, POSTURE_LABEL, QUARANTINE_LABEL, QUARANTINED_BY_ANNOTATION, RELEASE_ANNOTATION, RELEASED_ANNOTATION, SIGNAL_ANNOTATION } from "../common/names.ts";

/** Labels and annotations only Tenet may write. */
export const TENET_LABELS = [POSTURE_LABEL, QUARANTINE_LABEL] as const;
export const TENET_ANNOTATIONS = [CERTIFICATES_ANNOTATION, DETAIL_ANNOTATION, RELEASED_ANNOTATION, QUARANTINED_BY_ANNOTATION, SIGNAL_ANNOTATION] as const;
/** Keys the webhook must see changes of (webhook-config.ts matchConditions). */
export const GUARDED_LABELS: readonly string[] = TENET_LABELS;
export const GUARDED_ANNOTATIONS: readonly string[] = [...TENET_ANNOTATIONS, RELEASE_ANNOTATION];
/** The permission releasing a quarantined pod needs. */
export const RELEASE_PERMISSION = { verb: "update", group: "tenet.dev", resource: "runtimerules", subresource: "release" } as const;

export interface ProtectDeps {
  /** Tenet's own usernames (its ServiceAccount, and what the API server says it is). */
  isTenet: (username: string | undefined) => boolean;
  /** SubjectAccessReview: may this user `update runtimerules/release` in the namespace? */
  mayRelease: (user: NonNullable<AdmissionRequest["userInfo"]>, namespace: string) => Promise<boolean>;
}

export async function protectTenetMetadata(req: AdmissionRequest, deps: ProtectDeps): Promise<AdmissionResult | undefined> {
  if (req.kind.kind !== "Pod" || req.resource.resource !== "pods") return undefined;
  if (req.operation !== "CREATE" && req.operation !== "UPDATE") return undefined;
  const user = req.userInfo ?? {};
  if (deps.isTenet(user.username)) return undefined;
  const now = req.object?.metadata ?? {};
  const before = req.operation === "UPDATE" ? (req.oldObject?.metadata ?? {}) : {};
  const changed = (field: "labels" | "annotations", key: string) => valueOf(now[field], key) !== valueOf(before[field], key);

  const touched: string[] = [];
  for (const k of TENET_LABELS) {
    if (!changed("labels", k)) continue;
    // Quarantining a pod by hand only isolates it; on CREATE the posture label says nothing
    // (certificates read it only when Tenet wrote it, see operator/ca/attributes.ts).
    if (k === QUARANTINE_LABEL && valueOf(now.labels, k) === "true") continue;
    if (req.operation === "CREATE" && k === POSTURE_LABEL) continue;
    touched.push(`label ${k}`);
  }
  for (const k of TENET_ANNOTATIONS) {
    if (!changed("annotations", k)) continue;
    if (req.operation === "CREATE" && k === DETAIL_ANNOTATION) continue;
    touched.push(`annotation ${k}`);
  }
  const ns = req.namespace ?? now.namespace ?? "";
  const who = user.username ?? "(unknown user)";
  if (touched.length) {
    return {
      allowed: false,
      reason: "TenetMetadata",
      message: `${who} may not change ${touched.join(", ")} of pod ${ns}/${now.name ?? req.name ?? ""}: only Tenet's own ServiceAccount writes them (they record its posture decisions and the certificates a quarantine revokes). To release a quarantined pod, annotate it with ${RELEASE_ANNOTATION}="<reason>" (needs ${RELEASE_PERMISSION.verb} on ${RELEASE_PERMISSION.resource}/${RELEASE_PERMISSION.subresource} in group ${RELEASE_PERMISSION.group}).`,
    };
  }
  const release = valueOf(now.annotations, RELEASE_ANNOTATION);
  if (release !== undefined && changed("annotations", RELEASE_ANNOTATION)) {
    let allowed = false;
    try {
      allowed = await deps.mayRelease(user, ns);
    } catch (err) {
      return { allowed: false, reason: "ReleaseCheckFailed", message: `could not check whether ${who} may release pods in ${ns} (SubjectAccessReview failed: ${(err as Error).message}); retry` };
    }
    if (!allowed) {
      const p = RELEASE_PERMISSION;
      return {
        allowed: false,
        reason: "ReleaseForbidden",
        message: `${who} may not release pods from quarantine in namespace ${ns}: the annotation ${RELEASE_ANNOTATION} needs permission to ${p.verb} ${p.resource}/${p.subresource} (apiGroup ${p.group}) in that namespace; ask a security administrator (RBAC rule: apiGroups [${p.group}], resources [${p.resource}/${p.subresource}], verbs [${p.verb}])`,
      };
    }
  }
  return undefined;
}

function valueOf(m: unknown, key: string): string | undefined {
  if (!m || typeof m !== "object") return undefined;
  const v = (m as Record<string, unknown>)[key];
  return typeof v === "string" ? v : undefined;
}

/** The SubjectAccessReview body for a release by this user. */
export function releaseReview(user: NonNullable<AdmissionRequest["userInfo"]> & { uid?: string; extra?: Record<string, string[]> }, namespace: string) {
  return {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: user.username,
      groups: user.groups,
      uid: user.uid,
      extra: user.extra,
      resourceAttributes: { namespace, ...RELEASE_PERMISSION },
    },
  };
}
