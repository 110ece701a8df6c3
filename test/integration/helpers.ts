// Shared helpers for integration tests: Tenet objects as plain JSON, and status reads.
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { waitFor } from "../harness/exec.ts";
import { fixtureText } from "../harness/fixtures.ts";
import { createLogger } from "../../common/logger.ts";
import { decodeShard, REVOCATION_SHARDS, RevocationList, shardName, type RevocationEntry } from "../../operator/ca/revocations.ts";

type Res = (typeof Resources)["serviceIdentities" | "apiPolicies" | "runtimeRules"];
const kinds: Record<string, Res> = {
  ServiceIdentity: Resources.serviceIdentities,
  APIPolicy: Resources.apiPolicies,
  RuntimeRule: Resources.runtimeRules,
};

export function tenet(kind: keyof typeof kinds, namespace: string, name: string, spec: unknown) {
  return { apiVersion: "tenet.dev/v1alpha1", kind, metadata: { name, namespace }, spec };
}

export async function createObject(kube: Kube, obj: { kind: string; metadata: { namespace: string; name: string } }) {
  return kube.create(resourcePath(kinds[obj.kind], obj.metadata.namespace), obj);
}

export async function getObject(kube: Kube, kind: keyof typeof kinds, namespace: string, name: string) {
  return kube.get(resourcePath(kinds[kind], namespace, name));
}

export async function patchSpec(kube: Kube, kind: keyof typeof kinds, namespace: string, name: string, spec: unknown) {
  return kube.patch(resourcePath(kinds[kind], namespace, name), "merge", { spec });
}

export const ready = (obj: any) => obj?.status?.conditions?.find((c: any) => c.type === "Ready");

/** Waits until the object's Ready condition satisfies `pred` for the current generation. */
export async function waitReady(kube: Kube, kind: keyof typeof kinds, namespace: string, name: string, pred: (ready: any, obj: any) => boolean, timeoutMs = 20_000) {
  return waitFor(
    `${kind} ${namespace}/${name} Ready condition`,
    async () => {
      const obj = await getObject(kube, kind, namespace, name);
      const r = ready(obj);
      return r && obj.status.observedGeneration === obj.metadata.generation && pred(r, obj) ? obj : undefined;
    },
    timeoutMs,
  );
}

export async function eventsFor(kube: Kube, namespace: string, name: string) {
  const list = await kube.get(resourcePath(Resources.events, namespace), { fieldSelector: `involvedObject.name=${name}` });
  return list.items as any[];
}

export function pod(name: string, labels: Record<string, string>, serviceAccountName = "default", image = "ghcr.io/acme/app:1.0") {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, labels }, spec: { serviceAccountName, containers: [{ name: "app", image }] } };
}

/** A projected service-account token bound to the pod (TokenRequest), as the kubelet mounts for the enforcer. */
export async function podToken(kube: Kube, ns: string, sa: string, podName: string, audience = "tenet", expirationSeconds = 3600) {
  const p = await kube.get(resourcePath(Resources.pods, ns, podName));
  const tr = await kube.create(resourcePath(Resources.serviceAccounts, ns, sa, "token"), {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { audiences: [audience], expirationSeconds, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: podName, uid: p.metadata.uid } },
  });
  return tr.status.token as string;
}

/** A VulnerabilityReport as Trivy Operator writes it, for ghcr.io/<repository>:<tag>. */
export function vulnerabilityReport(name: string, repository: string, tag: string, vulns: { id: string; severity: string; fixed?: string }[]) {
  const count = (s: string) => vulns.filter((v) => v.severity === s).length;
  return {
    apiVersion: "aquasecurity.github.io/v1alpha1",
    kind: "VulnerabilityReport",
    metadata: { name, labels: { "trivy-operator.resource.kind": "ReplicaSet", "trivy-operator.container.name": "app" } },
    report: {
      artifact: { repository, tag },
      registry: { server: "ghcr.io" },
      os: { family: "debian", name: "12.5" },
      scanner: { name: "Trivy", vendor: "Aqua Security", version: "0.50.0" },
      summary: { criticalCount: count("CRITICAL"), highCount: count("HIGH"), mediumCount: count("MEDIUM"), lowCount: count("LOW"), unknownCount: count("UNKNOWN") },
      updateTimestamp: new Date().toISOString(),
      vulnerabilities: vulns.map((v) => ({
        vulnerabilityID: v.id,
        severity: v.severity,
        resource: "libexample",
        installedVersion: "1.0",
        fixedVersion: v.fixed ?? "1.1",
        title: `${v.id} in libexample`,
        publishedDate: "2025-01-01T00:00:00Z",
        lastModifiedDate: "2025-01-02T00:00:00Z",
      })),
    },
  };
}

/** The revocation list as stored: every shard ConfigMap in tenet-system, decoded (serial → entry). */
export async function storedRevocations(kube: Kube) {
  const out = new Map<string, { notAfter: number; reason: string; shard: number }>();
  for (let i = 0; i < REVOCATION_SHARDS; i++) {
    const cm = await kube.get(resourcePath(Resources.configMaps, "tenet-system", shardName(i)));
    for (const e of decodeShard(cm.data).entries) out.set(e.serial, { notAfter: e.notAfter, reason: e.reason, shard: i });
  }
  return out;
}

/** Revokes (or, with prune, drops what expired by `pruneAt`) as a writer of the list would, from the test process. */
export async function revokeSerials(kube: Kube, entries: RevocationEntry[]) {
  await new RevocationList(kube, createLogger("test", { level: "silent" }), "tenet-system").revoke(entries);
}
export async function pruneRevocations(kube: Kube, pruneAt: Date) {
  await new RevocationList(kube, createLogger("test", { level: "silent" }), "tenet-system").prune(pruneAt);
}

/** A fixture with its namespace and pod replaced, and (fresh) its times set to now. */
export function falcoFixture(name: string, ns: string, podName: string, fresh = true): string {
  let text = fixtureText(`falco/${name}`).replaceAll('"shop"', `"${ns}"`).replaceAll("orders-6d8f7c9b5-x2k4p", podName).replaceAll("k8s.ns=shop", `k8s.ns=${ns}`);
  if (fresh) {
    const ms = Date.now();
    const ns9 = `${BigInt(ms) * 1_000_000n + 123n}`;
    text = text.replace(/"time":"[^"]+"/g, `"time":"${new Date(ms).toISOString().replace("Z", "123456Z").replace(/\.(\d{3})123456Z/, ".$1000123Z")}"`).replace(/"evt\.time":\d+/g, `"evt.time":${ns9}`);
  }
  return text;
}
