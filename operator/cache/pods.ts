// What the operator keeps of a Pod. Everything else is dropped on arrival, so the cache
// stays a small multiple of the fields it uses.
import type { KubeObject } from "../../common/objects.ts";
import { FieldManagers, POSTURE_LABEL, ENFORCER_CONTAINER } from "../../common/names.ts";
import { CAPTURE_CONTAINER } from "../../admission/capture.ts";
import { enforcerFingerprint, InjectionError, resolveAppPort } from "../../admission/inject.ts";

export interface CachedPod extends KubeObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: { serviceAccountName: string; containers: { name: string; image: string }[] };
  status: { phase?: string; ready?: boolean; containerIDs?: string[] };
  /** The pod's controller (ownerReferences, controller: true), for the workload a signal names and the quarantine share. */
  owner?: { kind: string; name: string };
  /** The pod-spec fields the pod-security checks read (policy/podsecurity.ts), for rescans. */
  security: SecuritySpec;
  /** The init container named tenet-enforcer, if any: its fingerprint (security-relevant fields,
   * admission/inject.ts) and the app port injection would give it. Only when it equals
   * what Tenet injects is it left out of judgement and of the identity's image attribute. */
  enforcer?: { fingerprint: string; appPort: number; capture?: string };
  /** status.podIP: the mesh's destinations (operator/apipolicy/mesh.ts). */
  podIP?: string;
  /** The tenet.dev/posture label was last written by Tenet's posture controller (managedFields,
   * manager tenet-posture), not by whoever created or edited the pod. */
  postureByTenet?: boolean;
}

/** A pod spec cut down to what podSecurityViolations reads; same field paths, so messages match admission's. */
export interface SecuritySpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean };
  volumes?: { name: string; hostPath?: { path: string } }[];
  containers?: SecurityContainer[];
  initContainers?: SecurityContainer[];
  ephemeralContainers?: SecurityContainer[];
}
interface SecurityContainer {
  name: string;
  image: string;
  securityContext?: { privileged?: boolean; allowPrivilegeEscalation?: boolean; runAsUser?: number; runAsNonRoot?: boolean; capabilities?: { add?: string[] } };
}

/** The pods of one template have the same security fields: they share one frozen object, so the
 * cache holds it once and rescans judge it once (operator/posture/judgements.ts). Bounded: the
 * table starts over past SHARED_SPECS entries and keeps no spec whose JSON is over SHARED_SPEC_CHARS
 * (such a pod simply keeps its own copy). Pods arrive in name order, so a template's pods mostly
 * arrive together. */
const SHARED_SPECS = 2000;
const SHARED_SPEC_CHARS = 4096;
const sharedSpecs = new Map<string, SecuritySpec>();

function shared(spec: SecuritySpec): SecuritySpec {
  const key = JSON.stringify(spec);
  if (key.length > SHARED_SPEC_CHARS) return deepFreeze(spec);
  let s = sharedSpecs.get(key);
  if (!s) {
    if (sharedSpecs.size >= SHARED_SPECS) sharedSpecs.clear();
    sharedSpecs.set(key, (s = deepFreeze(spec)));
  }
  return s;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function securitySpec(spec: any): SecuritySpec {
  const out: SecuritySpec = {};
  for (const k of ["hostNetwork", "hostPID", "hostIPC"] as const) if (spec[k] === true) out[k] = true;
  const psc = spec.securityContext;
  if (psc && (psc.runAsUser !== undefined || psc.runAsNonRoot !== undefined)) out.securityContext = { runAsUser: psc.runAsUser, runAsNonRoot: psc.runAsNonRoot };
  // Every volume keeps its place (messages name spec.volumes[i]); only hostPath ones keep more than a name.
  if (Array.isArray(spec.volumes) && spec.volumes.some((v: any) => v?.hostPath)) {
    out.volumes = spec.volumes.map((v: any) => (v?.hostPath ? { name: String(v.name ?? ""), hostPath: { path: v.hostPath.path } } : { name: String(v?.name ?? "") }));
  }
  for (const kind of ["containers", "initContainers", "ephemeralContainers"] as const) {
    if (!Array.isArray(spec[kind])) continue;
    out[kind] = spec[kind].map((c: any) => {
      const sc = c?.securityContext;
      const kept: SecurityContainer = { name: String(c?.name ?? ""), image: String(c?.image ?? "") };
      if (sc && typeof sc === "object") {
        const s: NonNullable<SecurityContainer["securityContext"]> = {};
        if (sc.privileged !== undefined) s.privileged = sc.privileged;
        if (sc.allowPrivilegeEscalation !== undefined) s.allowPrivilegeEscalation = sc.allowPrivilegeEscalation;
        if (sc.runAsUser !== undefined) s.runAsUser = sc.runAsUser;
        if (sc.runAsNonRoot !== undefined) s.runAsNonRoot = sc.runAsNonRoot;
        if (Array.isArray(sc.capabilities?.add) && sc.capabilities.add.length) s.capabilities = { add: sc.capabilities.add };
        kept.securityContext = s;
      }
      return kept;
    });
  }
  return out;
}

export function toCachedPod(raw: any): CachedPod {
  const m = raw.metadata ?? {};
  const spec = raw.spec ?? {};
  const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].map((c: any) => ({ name: String(c.name ?? ""), image: String(c.image ?? "") }));
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      annotations: pick(m.annotations, (k) => k.startsWith("tenet.dev/")),
      deletionTimestamp: m.deletionTimestamp,
    },
    spec: { serviceAccountName: spec.serviceAccountName ?? "default", containers },
    status: statusOf(raw.status),
    ...ownerOf(m.ownerReferences),
    ...(typeof raw.status?.podIP === "string" && raw.status.podIP ? { podIP: raw.status.podIP } : {}),
    security: shared(securitySpec(spec)),
    ...enforcerOf(raw),
    ...(m.labels?.[POSTURE_LABEL] !== undefined && postureOwnedByTenet(m.managedFields) ? { postureByTenet: true } : {}),
  };
}

/** Phase, readiness and the short (12-character) container IDs Falco names containers by. */
function statusOf(st: any): CachedPod["status"] {
  const out: CachedPod["status"] = { phase: st?.phase };
  if (Array.isArray(st?.conditions) && st.conditions.some((c: any) => c?.type === "Ready" && c?.status === "True")) out.ready = true;
  const ids: string[] = [];
  for (const list of [st?.initContainerStatuses, st?.containerStatuses, st?.ephemeralContainerStatuses]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      const m = /^[a-z0-9.+-]+:\/\/([0-9a-f]{12,64})$/.exec(String(c?.containerID ?? ""));
      if (m && ids.length < 32) ids.push(m[1].slice(0, 12));
    }
  }
  if (ids.length) out.containerIDs = ids;
  return out;
}

function ownerOf(refs: any): { owner?: CachedPod["owner"] } {
  const c = Array.isArray(refs) ? refs.find((r: any) => r?.controller === true) : undefined;
  return c && typeof c.kind === "string" && typeof c.name === "string" ? { owner: { kind: c.kind, name: c.name } } : {};
}

function enforcerOf(raw: any): { enforcer?: CachedPod["enforcer"] } {
  const c = (raw.spec?.initContainers ?? []).find((x: any) => x?.name === ENFORCER_CONTAINER);
  if (!c) return {};
  let appPort: number;
  try {
    appPort = resolveAppPort(raw);
  } catch (err) {
    if (err instanceof InjectionError) return {};
    throw err;
  }
  const capture = (raw.spec?.initContainers ?? []).find((x: any) => x?.name === CAPTURE_CONTAINER);
  return { enforcer: { fingerprint: enforcerFingerprint(c, raw.spec), appPort, ...(capture ? { capture: enforcerFingerprint(capture, raw.spec) } : {}) } };
}

/** Whether the posture label is owned by Tenet's posture field manager, and by no other: a
 * label the pod's creator set is owned by the creator's manager (kubectl, …) until Tenet's
 * apply takes it over; an Update by anyone else afterwards shares or takes the ownership. */
function postureOwnedByTenet(managedFields: any): boolean {
  if (!Array.isArray(managedFields)) return false;
  let ours = false;
  for (const mf of managedFields) {
    const owns = mf?.fieldsV1?.["f:metadata"]?.["f:labels"]?.[`f:${POSTURE_LABEL}`] !== undefined;
    if (!owns) continue;
    if (mf.manager === FieldManagers.posture && mf.operation === "Apply") ours = true;
    else return false;
  }
  return ours;
}

function pick(o: Record<string, string> | undefined, keep: (k: string) => boolean) {
  if (!o) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of Object.entries(o))
    if (keep(k)) {
      out[k] = v;
      any = true;
    }
  return any ? out : undefined;
}
