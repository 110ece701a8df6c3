// The mesh document every enforcer receives with its policy (GET /v1/policy): which destinations
// are meshed and which SPIFFE ID each must present, so a captured outbound call needs no app
// configuration. Built from Services → EndpointSlices → Pods (those with Tenet's enforcer) →
// their SPIFFE ID (spiffe://<td>/ns/<ns>/sa/<sa>, the only ID the CA issues them), plus the
// workload's own inbound mode and egress setting from its ServiceIdentity.
//
// Trust: Services, EndpointSlices and pod labels are written by namespace editors, but they only
// say which pods back a Service in that namespace; the identity a destination must present is
// always its pod's own namespace and service account, which the pod's creator cannot choose
// outside its namespace. A wrong entry fails closed (the peer's certificate does not match).
import { createHash } from "node:crypto";
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import type { MeshDocument } from "../../policy/authz-contract.ts";
import { spiffeID } from "../../pki/spiffe-id.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { CachedPod } from "../cache/pods.ts";
import { selectsPod } from "../controllers/serviceidentity.ts";
import type { Informer } from "../runtime/informer.ts";

export interface CachedService extends TenetObject {
  metadata: { name: string; namespace: string; resourceVersion: string };
  clusterIPs: string[];
  ports: { name?: string; port: number; protocol: string; targetPort?: number | string }[];
}

export interface CachedEndpointSlice extends TenetObject {
  metadata: { name: string; namespace: string; resourceVersion: string; service?: string };
  ports: { name?: string; port?: number; protocol: string }[];
  endpoints: { addresses: string[]; ready: boolean; pod?: string }[];
}

export function toCachedService(raw: any): CachedService {
  const spec = raw.spec ?? {};
  const ips = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip: unknown) => typeof ip === "string" && ip !== "None");
  return {
    metadata: { name: raw.metadata.name, namespace: raw.metadata.namespace, resourceVersion: raw.metadata.resourceVersion },
    clusterIPs: ips,
    ports: (spec.ports ?? []).map((p: any) => ({ name: p.name, port: p.port, protocol: p.protocol ?? "TCP", targetPort: p.targetPort })),
  } as CachedService;
}

export function toCachedEndpointSlice(raw: any): CachedEndpointSlice {
  return {
    metadata: { name: raw.metadata.name, namespace: raw.metadata.namespace, resourceVersion: raw.metadata.resourceVersion, service: raw.metadata.labels?.["kubernetes.io/service-name"] },
    ports: (raw.ports ?? []).map((p: any) => ({ name: p.name || undefined, port: p.port, protocol: p.protocol ?? "TCP" })),
    endpoints: (raw.endpoints ?? []).map((e: any) => ({ addresses: e.addresses ?? [], ready: e.conditions?.ready !== false, pod: e.targetRef?.kind === "Pod" ? e.targetRef.name : undefined })),
  } as CachedEndpointSlice;
}

type Global = Omit<MeshDocument, "inbound" | "egress">;

/** The cluster-wide part, pure: the same objects always give the same document and version. */
export function buildMesh(trustDomain: string, pods: CachedPod[], services: CachedService[], slices: CachedEndpointSlice[]): Global {
  const ids: string[] = [];
  const index = new Map<string, number>();
  const idOf = (pod: CachedPod) => {
    const id = spiffeID(trustDomain, pod.metadata.namespace, pod.spec.serviceAccountName);
    let i = index.get(id);
    if (i === undefined) index.set(id, (i = ids.push(id) - 1));
    return i;
  };
  const meshed = new Map<string, CachedPod>(); // ns/name → pod
  const podIPs: Record<string, number> = {};
  for (const p of [...pods].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))) {
    if (!p.enforcer || !p.podIP || p.metadata.deletionTimestamp || p.status.phase !== "Running") continue;
    meshed.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    podIPs[p.podIP] = idOf(p);
  }
  const byService = new Map<string, CachedEndpointSlice[]>();
  for (const s of slices) {
    if (!s.metadata.service) continue;
    const k = `${s.metadata.namespace}/${s.metadata.service}`;
    byService.set(k, [...(byService.get(k) ?? []), s]);
  }
  const out: Record<string, [string, number, number][]> = {};
  for (const svc of services) {
    const sl = byService.get(`${svc.metadata.namespace}/${svc.metadata.name}`) ?? [];
    for (const sp of svc.ports) {
      if (sp.protocol !== "TCP") continue;
      const eps: [string, number, number][] = [];
      for (const s of sl) {
        const port = s.ports.find((p) => (p.name ?? "") === (sp.name ?? "") && p.protocol === "TCP")?.port;
        if (!port) continue;
        for (const e of s.endpoints) {
          const pod = e.pod && meshed.get(`${svc.metadata.namespace}/${e.pod}`);
          if (!pod || !e.ready) continue;
          for (const ip of e.addresses) eps.push([ip, port, idOf(pod)]);
        }
      }
      if (!eps.length) continue;
      eps.sort((a, b) => `${a[0]}:${a[1]}`.localeCompare(`${b[0]}:${b[1]}`));
      for (const ip of svc.clusterIPs) out[ip.includes(":") ? `[${ip}]:${sp.port}` : `${ip}:${sp.port}`] = eps;
    }
  }
  const body = { ids, services: out, pods: podIPs };
  return { version: hash(JSON.stringify(body)), ...body };
}

/** The workload's own settings: from the one ServiceIdentity that selects it, else the defaults. */
export function meshSettings(pod: CachedPod, identities: (ServiceIdentity & TenetObject)[]): Pick<MeshDocument, "inbound" | "egress"> {
  const matches = identities.filter((si) => selectsPod(si, pod));
  const spec: any = matches.length === 1 ? matches[0].spec : {};
  return { inbound: spec.inbound?.mode === "permissive" ? "permissive" : "strict", egress: spec.egress?.outsideMesh === "deny" ? "deny" : "allow" };
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** The cluster-wide part, rebuilt on demand after any pod, Service or EndpointSlice change. */
export class MeshDirectory {
  private cached?: Global;
  constructor(
    private readonly trustDomain: string,
    private readonly pods: Informer<CachedPod>,
    private readonly services: Informer<CachedService>,
    private readonly slices: Informer<CachedEndpointSlice>,
    private readonly identities: Informer<ServiceIdentity & TenetObject>,
  ) {
    const dirty = () => (this.cached = undefined);
    pods.onChange(dirty);
    services.onChange(dirty);
    slices.onChange(dirty);
  }

  forPod(pod: CachedPod): MeshDocument {
    this.cached ??= buildMesh(this.trustDomain, this.pods.list(), this.services.list(), this.slices.list());
    const own = meshSettings(pod, this.identities.listNamespace(pod.metadata.namespace));
    return { ...this.cached, ...own, version: hash(`${this.cached.version} ${own.inbound} ${own.egress}`) };
  }
}
