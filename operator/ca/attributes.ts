// The identity attributes a workload certificate carries, derived from the pod and its
// ServiceIdentity. Pure: the same pod and identity always give the same attributes.
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import type { CachedPod } from "../cache/pods.ts";
import { COMMIT_LABEL, ENFORCER_CONTAINER, POSTURE_LABEL, TIER_LABEL } from "../../common/names.ts";
import { CAPTURE_CONTAINER } from "../../admission/capture.ts";
import { isTenetCapture, isTenetEnforcer, type InjectionConfig } from "../../admission/inject.ts";

//
// Attributes policies select on must come from what Tenet established, never from what the pod's
// creator can write: `image` lists every container (init containers included) except the exact
// enforcer Tenet injects (a look-alike named tenet-* is listed like any other); `posture` is the
// tenet.dev/posture label only while Tenet's posture controller owns it (managedFields), else
// "unscanned" — a label set at create time, or edited since, says nothing Tenet established.
export function identityAttributes(pod: CachedPod, si: ServiceIdentity, injection?: InjectionConfig): Record<string, string> {
  const labels = pod.metadata.labels ?? {};
  const annotations = pod.metadata.annotations ?? {};
  const exact = injection ? isTenetEnforcer(pod.enforcer, pod.metadata.annotations, injection) : false;
  const capture = exact && injection ? isTenetCapture(pod.enforcer, pod.metadata.annotations, injection) : false;
  const app = pod.spec.containers.filter((c) => !(c.name === ENFORCER_CONTAINER && exact) && !(c.name === CAPTURE_CONTAINER && capture));
  const images = [...new Set(app.map((c) => c.image))];
  const digests = images.map((i) => i.split("@")[1]).filter((d): d is string => !!d);
  const derived: Record<string, string | undefined> = {
    image: images.join(","),
    "image.digest": digests.length === images.length && digests.length > 0 ? digests.join(",") : undefined,
    commit: annotations[COMMIT_LABEL] ?? labels[COMMIT_LABEL],
    version: labels["app.kubernetes.io/version"] ?? labels["version"],
    tier: labels[TIER_LABEL] ?? labels["tier"],
    posture: (pod.postureByTenet ? labels[POSTURE_LABEL] : undefined) ?? "unscanned",
    "pod.name": pod.metadata.name,
    "pod.uid": pod.metadata.uid,
    serviceidentity: si.metadata.name,
  };
  // Static attributes from the ServiceIdentity come first; what the pod says about itself
  // (image, posture …) cannot be overridden by them.
  const out: Record<string, string> = { ...(si.spec.attributes ?? {}) };
  for (const [k, v] of Object.entries(derived)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

/** Go-style duration ("24h", "1h30m", "90s") to seconds; the CRD's pattern guarantees the shape. */
export function durationSeconds(d: string | undefined, fallback: number): number {
  if (!d) return fallback;
  let total = 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let m: RegExpExecArray | null;
  while ((m = re.exec(d))) total += Number(m[1]) * unit[m[2]];
  return total > 0 ? Math.round(total) : fallback;
}
