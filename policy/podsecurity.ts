// The pod-security constraints of a RuntimeRule, checked on a pod spec for every kind of container
// (containers, init containers incl. native sidecars, ephemeral containers). Each violation names
// the field and says how to fix it, in the pod or in the rule.

import { posix } from "node:path";
import type { RuntimeRulePodSecurity } from "../crds/types.gen.ts";
import { hasPathPrefix, ImageRefError, normalizeRegistryEntry, parseImage, repositoryOf, type ImageRef } from "../common/images.ts";

export interface PodSecurityViolation {
  /** e.g. "spec.initContainers[0].securityContext.privileged" */
  field: string;
  message: string;
}

export const CONTAINER_KINDS = ["containers", "initContainers", "ephemeralContainers"] as const;

const KIND_NOUN: Record<(typeof CONTAINER_KINDS)[number], string> = {
  containers: "container",
  initContainers: "init container",
  ephemeralContainers: "ephemeral container",
};

/** Every container of a pod spec with its field path, in the order containers, initContainers, ephemeralContainers. */
export function containersOf(podSpec: any): { path: string; noun: string; container: any }[] {
  const out: { path: string; noun: string; container: any }[] = [];
  if (!podSpec || typeof podSpec !== "object") return out;
  for (const kind of CONTAINER_KINDS) {
    const list = podSpec[kind];
    if (!Array.isArray(list)) continue;
    for (let i = 0; i < list.length; i++) {
      const container = list[i];
      if (container && typeof container === "object") out.push({ path: `spec.${kind}[${i}]`, noun: KIND_NOUN[kind], container });
    }
  }
  return out;
}

/** What a violation is about, kept beside it so messages can group alike violations. */
type Kind = "privileged" | "hostNamespace" | "hostPath" | "capability" | "privilegeEscalation" | "runAsUser" | "runAsNonRoot" | "registry" | "digest" | "image";
interface Detail {
  kind: Kind;
  /** the container, as `spec.initContainers[0] ("nginx")` */
  where?: string;
  /** the offending value: a host path, a capability, an image */
  value?: string;
}
const details = new WeakMap<PodSecurityViolation, Detail>();

const normalizeCapability = (c: string) => {
  const u = String(c).toUpperCase();
  return u.startsWith("CAP_") ? u.slice(4) : u;
};

/** A hostPath as the kubelet resolves it: "/var/log/../../etc" is /etc. */
const normalizeHostPath = (p: string) => {
  const n = posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
};

interface Compiled {
  allowPrivileged: boolean;
  allowHostNamespaces: boolean;
  hostPaths: string[];
  capabilities: Set<string>;
  requireRunAsNonRoot: boolean;
  allowPrivilegeEscalation: boolean;
  registries: string[];
  /** allowedRegistries normalized once (host lowercased, Docker Hub's legacy name folded) */
  registryPrefixes: string[];
  requireDigest: boolean;
}

// Keyed by the podSecurity object: informers replace a changed RuntimeRule rather than edit it.
const cache = new WeakMap<RuntimeRulePodSecurity, Compiled>();

/** The rule with the CRD's defaults filled in (allowPrivileged false, requireRunAsNonRoot true, …). */
function compile(ps: RuntimeRulePodSecurity): Compiled {
  let c = cache.get(ps);
  if (c) return c;
  c = {
    allowPrivileged: ps.allowPrivileged ?? false,
    allowHostNamespaces: ps.allowHostNamespaces ?? false,
    hostPaths: (ps.allowedHostPaths ?? []).map(normalizeHostPath),
    capabilities: new Set((ps.allowedCapabilities ?? []).map(normalizeCapability)),
    requireRunAsNonRoot: ps.requireRunAsNonRoot ?? true,
    allowPrivilegeEscalation: ps.allowPrivilegeEscalation ?? false,
    registries: ps.allowedRegistries ?? [],
    registryPrefixes: (ps.allowedRegistries ?? []).map(normalizeRegistryEntry),
    requireDigest: ps.requireDigest ?? false,
  };
  cache.set(ps, c);
  return c;
}

/**
 * Every way the pod spec breaks the rule's podSecurity; empty when it complies or the rule has no
 * podSecurity. `images` may carry already-parsed images (matched to containers by their `raw`).
 */
export function podSecurityViolations(podSpec: any, ps: RuntimeRulePodSecurity | undefined, images?: ImageRef[]): PodSecurityViolation[] {
  if (!ps) return [];
  const rule = compile(ps);
  const out: PodSecurityViolation[] = [];
  const spec = podSpec && typeof podSpec === "object" ? podSpec : {};
  const podSC = spec.securityContext && typeof spec.securityContext === "object" ? spec.securityContext : {};

  if (!rule.allowHostNamespaces) {
    for (const ns of ["hostNetwork", "hostPID", "hostIPC"]) {
      if (spec[ns] !== true) continue;
      addViolation(out, `spec.${ns}`, `spec.${ns} is true but the rule forbids host namespaces (set spec.podSecurity.allowHostNamespaces: true to allow)`, { kind: "hostNamespace", value: ns });
    }
  }

  if (Array.isArray(spec.volumes)) {
    for (let i = 0; i < spec.volumes.length; i++) {
      const vol = spec.volumes[i];
      if (!vol?.hostPath) continue;
      const raw = typeof vol.hostPath.path === "string" ? vol.hostPath.path : "";
      if (allowedBy(normalizeHostPath(raw), rule.hostPaths)) continue;
      const allowed = rule.hostPaths.length ? `outside spec.podSecurity.allowedHostPaths (${rule.hostPaths.join(", ")})` : "but the rule allows no hostPath volumes";
      addViolation(out, `spec.volumes[${i}].hostPath.path`, `spec.volumes[${i}].hostPath.path is ${JSON.stringify(raw)} (volume "${vol.name}"), ${allowed} (list it in spec.podSecurity.allowedHostPaths to allow)`, { kind: "hostPath", value: raw });
    }
  }

  // Containers that inherit a root or unset user from the pod: one violation on the pod's field, where the fix goes.
  const podRoot: string[] = [];
  const podUnset: string[] = [];
  for (const { path, noun, container } of containersOf(spec)) {
    const sc = container.securityContext && typeof container.securityContext === "object" ? container.securityContext : {};
    // Strings built per container are cheap (V8 concatenates lazily); this runs per rule per admission.
    const who = `${noun} "${container.name}"`;
    const where = `${path} ("${container.name}")`;

    if (!rule.allowPrivileged && sc.privileged === true) {
      addViolation(out, `${path}.securityContext.privileged`, `${path}.securityContext.privileged is true (${who}) but the rule forbids privileged containers (set spec.podSecurity.allowPrivileged: true to allow)`, { kind: "privileged", where });
    }

    // Kubernetes semantics: an absent allowPrivilegeEscalation means true.
    if (!rule.allowPrivilegeEscalation && sc.allowPrivilegeEscalation !== false) {
      const state = sc.allowPrivilegeEscalation === true ? "is true" : "is not set (which means true)";
      addViolation(out, `${path}.securityContext.allowPrivilegeEscalation`, `${path}.securityContext.allowPrivilegeEscalation ${state} for ${who} but the rule forbids privilege escalation (set it to false, or spec.podSecurity.allowPrivilegeEscalation: true)`, { kind: "privilegeEscalation", where });
    }

    const added = sc.capabilities?.add;
    if (Array.isArray(added)) {
      for (let j = 0; j < added.length; j++) {
        const name = normalizeCapability(String(added[j]));
        if (rule.capabilities.has(name)) continue;
        const allowed = rule.capabilities.size ? `allows only ${[...rule.capabilities].join(", ")}` : "allows none";
        addViolation(out, `${path}.securityContext.capabilities.add[${j}]`, `${path}.securityContext.capabilities.add[${j}] adds ${name} (${who}) but the rule ${allowed} (add it to spec.podSecurity.allowedCapabilities to allow)`, { kind: "capability", where, value: name });
      }
    }

    if (rule.requireRunAsNonRoot) {
      // The container's securityContext overrides the pod's, field by field.
      const ownUser = typeof sc.runAsUser === "number";
      const user = ownUser ? sc.runAsUser : typeof podSC.runAsUser === "number" ? podSC.runAsUser : undefined;
      const nonRoot = typeof sc.runAsNonRoot === "boolean" ? sc.runAsNonRoot : podSC.runAsNonRoot === true;
      if (user === 0) {
        if (ownUser) {
          addViolation(out, `${path}.securityContext.runAsUser`, `${path}.securityContext.runAsUser is 0 (${who} runs as root) but the rule requires non-root containers (use a non-zero runAsUser, or spec.podSecurity.requireRunAsNonRoot: false)`, { kind: "runAsUser", where });
        } else {
          podRoot.push(who);
        }
      } else if (!nonRoot && !(typeof user === "number" && user > 0)) {
        if (sc.runAsNonRoot === false) {
          addViolation(out, `${path}.securityContext.runAsNonRoot`, `${path}.securityContext.runAsNonRoot is false (${who}) but the rule requires non-root containers (set it to true or a non-zero runAsUser, or spec.podSecurity.requireRunAsNonRoot: false)`, { kind: "runAsNonRoot", where });
        } else {
          podUnset.push(who);
        }
      }
    }

    if (rule.registryPrefixes.length || rule.requireDigest) {
      const raw = container.image;
      let img = typeof raw === "string" && images ? findImage(images, raw) : undefined;
      let invalid: string | undefined;
      if (!img) {
        try {
          img = parseImage(raw);
        } catch (e) {
          if (!(e instanceof ImageRefError)) throw e;
          invalid = e.message;
        }
      }
      if (!img) {
        addViolation(out, `${path}.image`, `${path}.image (${who}) cannot be checked: ${invalid}`, { kind: "image", where, value: String(raw) });
        continue;
      }
      // Both checks report on the image field: a user must fix both, so both are said.
      if (rule.registryPrefixes.length && !allowedBy(repositoryOf(img), rule.registryPrefixes)) {
        addViolation(out, `${path}.image`, `${path}.image ${img.raw} (${who}) is not from an allowed registry (${rule.registries.join(", ")}): push it there, or add its registry to spec.podSecurity.allowedRegistries`, { kind: "registry", where, value: img.raw });
      }
      if (rule.requireDigest && !img.digest) {
        addViolation(out, `${path}.image`, `${path}.image ${img.raw} (${who}) is not pinned by digest (image@sha256:…) as the rule requires (or set spec.podSecurity.requireDigest: false)`, { kind: "digest", where, value: img.raw });
      }
    }
  }
  if (podRoot.length) {
    addViolation(out, "spec.securityContext.runAsUser", `spec.securityContext.runAsUser is 0, so ${list(podRoot)} ${podRoot.length === 1 ? "runs" : "run"} as root, but the rule requires non-root containers (use a non-zero runAsUser, or spec.podSecurity.requireRunAsNonRoot: false)`, { kind: "runAsUser", where: "spec.securityContext" });
  }
  if (podUnset.length) {
    addViolation(out, "spec.securityContext.runAsNonRoot", `spec.securityContext.runAsNonRoot is not true and ${list(podUnset)} ${podUnset.length === 1 ? "sets" : "set"} no runAsNonRoot: true or non-zero runAsUser, but the rule requires non-root containers (set spec.securityContext.runAsNonRoot: true, or spec.podSecurity.requireRunAsNonRoot: false)`, { kind: "runAsNonRoot", where: "spec.securityContext" });
  }
  return out;
}

function addViolation(out: PodSecurityViolation[], field: string, message: string, detail: Detail): void {
  const v = { field, message };
  details.set(v, detail);
  out.push(v);
}

function findImage(images: ImageRef[], raw: string): ImageRef | undefined {
  for (const i of images) if (i.raw === raw) return i;
  return undefined;
}

function allowedBy(name: string, prefixes: string[]): boolean {
  for (const p of prefixes) if (hasPathPrefix(name, p)) return true;
  return false;
}

function list(items: string[]): string {
  const shown = items.length > 4 ? [...items.slice(0, 3), `${items.length - 3} more`] : items;
  return shown.length === 1 ? shown[0] : `${shown.slice(0, -1).join(", ")} and ${shown[shown.length - 1]}`;
}

// Most dangerous first, so a summarized message still shows what matters.
const ORDER: Kind[] = ["privileged", "hostNamespace", "hostPath", "capability", "privilegeEscalation", "runAsUser", "runAsNonRoot", "registry", "digest", "image"];

const uniq = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => x !== undefined))];

const GROUPED: Partial<Record<Kind, (d: Detail[]) => string>> = {
  privileged: (d) => `securityContext.privileged is true in ${list(uniq(d.map((x) => x.where)))} but the rule forbids privileged containers (set spec.podSecurity.allowPrivileged: true to allow)`,
  hostNamespace: (d) => `${list(uniq(d.map((x) => `spec.${x.value}`)))} are true but the rule forbids host namespaces (set spec.podSecurity.allowHostNamespaces: true to allow)`,
  hostPath: (d) => `${d.length} hostPath volumes mount paths the rule does not allow: ${list(uniq(d.map((x) => JSON.stringify(x.value))))} (list them in spec.podSecurity.allowedHostPaths to allow)`,
  capability: (d) => `${list(uniq(d.map((x) => x.where)))} add capabilities the rule does not allow: ${uniq(d.map((x) => x.value)).join(", ")} (add them to spec.podSecurity.allowedCapabilities to allow)`,
  privilegeEscalation: (d) => `securityContext.allowPrivilegeEscalation is not false (absent means true) in ${list(uniq(d.map((x) => x.where)))} but the rule forbids privilege escalation (set it to false, or spec.podSecurity.allowPrivilegeEscalation: true in the rule)`,
  registry: (d) => `images ${list(uniq(d.map((x) => x.value)))} are not from an allowed registry (push them there, or add their registries to spec.podSecurity.allowedRegistries)`,
  digest: (d) => `images ${list(uniq(d.map((x) => x.value)))} are not pinned by digest but the rule requires image@sha256:… (pin the digests, or set spec.podSecurity.requireDigest: false)`,
};

const BRIEF: Record<Kind, [string, (d: Detail) => string | undefined]> = {
  privileged: ["privileged", (d) => d.where],
  hostNamespace: ["host namespaces", (d) => d.value],
  hostPath: ["hostPath", (d) => JSON.stringify(d.value)],
  capability: ["added capabilities", (d) => d.value],
  privilegeEscalation: ["allowPrivilegeEscalation not false", (d) => d.where],
  runAsUser: ["runAsUser 0", (d) => d.where],
  runAsNonRoot: ["runAsNonRoot not true", (d) => d.where],
  registry: ["registry not allowed", (d) => d.value],
  digest: ["not pinned by digest", (d) => d.value],
  image: ["invalid image", (d) => d.value],
};

/** Alike violations together: the full explanation, and a few words naming them all. */
export interface ViolationGroup {
  /** one sentence for the group (or the violations' own, joined), with the fix */
  text: string;
  /** e.g. `hostPath: "/boot", "/dev" and 2 more` */
  brief: string;
}

/**
 * The violations grouped by what they are about (the same setting in several containers, several
 * hostPath volumes), most dangerous first. For admission messages, which must stay short.
 */
export function groupViolations(vs: PodSecurityViolation[]): ViolationGroup[] {
  const groups = new Map<Kind | undefined, PodSecurityViolation[]>();
  for (const v of vs) {
    const k = details.get(v)?.kind;
    const g = groups.get(k);
    if (g) g.push(v);
    else groups.set(k, [v]);
  }
  const out: ViolationGroup[] = [];
  for (const k of [...ORDER, undefined]) {
    const g = groups.get(k);
    if (!g) continue;
    if (!k) {
      for (const v of g) out.push({ text: v.message, brief: v.field });
      continue;
    }
    const ds = g.map((v) => details.get(v)!);
    const fmt = GROUPED[k];
    const [label, name] = BRIEF[k];
    out.push({
      text: g.length > 1 && fmt ? fmt(ds) : g.map((v) => v.message).join("; "),
      brief: `${label}: ${list(uniq(ds.map((d, i) => name(d) ?? g[i].field)))}`,
    });
  }
  return out;
}

/** The violations as few sentences, grouped and ordered as groupViolations does. */
export function summarizeViolations(vs: PodSecurityViolation[]): string[] {
  return groupViolations(vs).map((g) => g.text);
}
