// Which image the injected enforcer runs. It follows the operator's own image, so one override
// (kustomize `images:`, a Helm value, a registry mirror) moves both: the operator reads its own
// Pod and swaps the repository's last segment tenet-operator → tenet-enforcer, keeping the
// registry, path and tag. TENET_ENFORCER_IMAGE, when set, wins.
import { isNotFound, type Kube } from "../common/kube.ts";

import { DEFAULT_ENFORCER_IMAGE } from "../admission/injection-config.ts";

export { DEFAULT_ENFORCER_IMAGE };
const OPERATOR_REPO = "tenet-operator";
const ENFORCER_REPO = "tenet-enforcer";

export class EnforcerImageError extends Error {
  override name = "EnforcerImageError";
}

/** The enforcer image next to an operator image reference (pure). */
export function enforcerImageFor(operatorImage: string): string {
  // [registry[:port]/]path[:tag][@digest]; a ':' after the last '/' starts the tag.
  const [nameAndTag] = operatorImage.split("@");
  const slash = nameAndTag.lastIndexOf("/");
  const colon = nameAndTag.lastIndexOf(":");
  const name = colon > slash ? nameAndTag.slice(0, colon) : nameAndTag;
  const tag = colon > slash ? nameAndTag.slice(colon + 1) : undefined;
  const last = name.slice(slash + 1);
  const fix = "set TENET_ENFORCER_IMAGE on the operator's Deployment to the enforcer image to inject";
  if (last !== OPERATOR_REPO) throw new EnforcerImageError(`the operator image ${JSON.stringify(operatorImage)} is not named ${OPERATOR_REPO}, so the enforcer image cannot be derived from it: ${fix}`);
  // A digest names exactly one image; the enforcer's digest is a different one.
  if (!tag) throw new EnforcerImageError(`the operator image ${JSON.stringify(operatorImage)} has no tag to give the enforcer image: ${fix}`);
  return `${name.slice(0, slash + 1)}${ENFORCER_REPO}:${tag}`;
}

/** From the environment, else from the operator's own Pod, else (local runs) the dev image. */
export async function resolveEnforcerImage(kube: Kube, env: NodeJS.ProcessEnv = process.env): Promise<{ image: string; source: string }> {
  if (env.TENET_ENFORCER_IMAGE) return { image: env.TENET_ENFORCER_IMAGE, source: "TENET_ENFORCER_IMAGE" };
  const name = env.POD_NAME, namespace = env.POD_NAMESPACE;
  if (!name || !namespace) return { image: DEFAULT_ENFORCER_IMAGE, source: "default (not running in a pod)" };
  // Local runs (tests, the API-server-only quick start) name a pod that does not exist.
  const pod = await kube.request("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`).catch((e) => {
    if (isNotFound(e)) return undefined;
    throw e;
  });
  if (!pod) return { image: DEFAULT_ENFORCER_IMAGE, source: `default (pod ${namespace}/${name} not found)` };
  const containers: any[] = pod?.spec?.containers ?? [];
  const own = containers.find((c) => c?.name === (env.TENET_OPERATOR_CONTAINER ?? "operator")) ?? containers[0];
  if (!own?.image) throw new EnforcerImageError(`pod ${namespace}/${name} has no container image to derive the enforcer image from`);
  return { image: enforcerImageFor(own.image), source: `pod ${namespace}/${name}` };
}

/** The capture init container's image next to the enforcer's: tenet-enforcer → tenet-capture, same registry and tag. */
export function captureImageFor(enforcerImage: string): string {
  const [nameAndTag, digest] = enforcerImage.split("@");
  const slash = nameAndTag.lastIndexOf("/");
  const last = nameAndTag.slice(slash + 1);
  if (digest || !last.startsWith(`${ENFORCER_REPO}:`)) {
    throw new EnforcerImageError(`the enforcer image ${JSON.stringify(enforcerImage)} is not ${ENFORCER_REPO}:<tag>, so the capture image cannot be derived from it: set TENET_CAPTURE_IMAGE on the operator's Deployment`);
  }
  return `${nameAndTag.slice(0, slash + 1)}tenet-capture${last.slice(ENFORCER_REPO.length)}`;
}
