// What the operator keeps of a Namespace: its name and labels (injection opt-in, exemptions).
import type { KubeObject } from "../../common/objects.ts";

export interface CachedNamespace extends KubeObject {}

export const toCachedNamespace = (raw: any): CachedNamespace => ({
  metadata: { name: raw.metadata.name, resourceVersion: raw.metadata.resourceVersion, labels: raw.metadata.labels },
});
