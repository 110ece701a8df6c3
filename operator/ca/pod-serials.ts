// Which certificates were issued to which pod: the serials (and expiries) live in an annotation
// on the pod itself, so quarantine can revoke them after any restart or on any replica, and
// they go away with the pod. Written before the certificate is handed out: a certificate whose
// serial is not recorded could never be revoked.
import { isNotFound, retryOnConflict, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { CachedPod } from "../cache/pods.ts";
import { CERTIFICATES_ANNOTATION, FieldManagers } from "../../common/names.ts";


/** serial (lowercase hex) → notAfter (RFC 3339); unreadable annotations count as empty. */
export function serialsOf(pod: Pick<CachedPod, "metadata">): Record<string, string> {
  const raw = pod.metadata.annotations?.[CERTIFICATES_ANNOTATION];
  if (!raw) return {};
  try {
    const doc = JSON.parse(raw);
    const out: Record<string, string> = {};
    if (doc && typeof doc === "object" && !Array.isArray(doc)) {
      for (const [serial, notAfter] of Object.entries(doc)) if (/^[0-9a-f]{1,64}$/i.test(serial) && typeof notAfter === "string") out[serial.toLowerCase()] = notAfter;
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * Adds one serial to the pod's annotation (dropping expired ones), guarded by resourceVersion.
 * Returns the pod's labels as written, so the caller sees a quarantine that raced the request.
 */
export async function recordIssued(kube: Kube, pod: CachedPod, serial: string, notAfter: string, now = new Date()): Promise<Record<string, string>> {
  const path = resourcePath(Resources.pods, pod.metadata.namespace, pod.metadata.name);
  let current: Pick<CachedPod, "metadata"> = pod;
  const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
  return retryOnConflict(async (attempt) => {
    if (attempt > 0) {
      // The pod changed under us: read it again and check it is still the pod we issue to.
      try {
        current = await kube.get(path);
      } catch (err) {
        if (isNotFound(err)) throw new Error(`pod ${ref} was deleted while its certificate was being issued`);
        throw err;
      }
      if (current.metadata.uid !== pod.metadata.uid) throw new Error(`pod ${ref} was replaced while its certificate was being issued`);
    }
    const serials: Record<string, string> = {};
    for (const [s, na] of Object.entries(serialsOf(current))) if (Date.parse(na) > now.getTime()) serials[s] = na;
    serials[serial.toLowerCase()] = notAfter;
    const written = await kube.patch(
      path,
      "merge",
      { metadata: { resourceVersion: current.metadata.resourceVersion, annotations: { [CERTIFICATES_ANNOTATION]: JSON.stringify(serials) } } },
      { fieldManager: FieldManagers.ca },
    );
    return (written?.metadata?.labels ?? {}) as Record<string, string>;
  }, `could not record certificate ${serial} on pod ${ref}: too many concurrent updates`);
}
