// Transparent capture (docs/capture.md): the short-lived init container tenet-capture installs
// iptables REDIRECT rules in the pod's network namespace, so inbound TCP reaches the enforcer's
// capture listener and the app's outbound TCP its outbound capture listener, with no change to
// the app. Pure functions over plain JSON: the rules (iptables-restore text), the per-pod
// exclusions from annotations, and the kubelet probes rewritten through the enforcer's health
// port (probes come from the node's IP to the app's port, which strict mode would refuse).
import { InjectionError } from "./errors.ts";

export const CAPTURE_CONTAINER = "tenet-capture";
/** Pod annotation "false": no capture for this pod (the enforcer serves its explicit ports only). */
export const CAPTURE_ANNOTATION = "tenet.dev/capture";
/** Pod annotations: comma-separated ports / CIDRs left out of capture (the creator's own holes). */
export const EXCLUDE_INBOUND_PORTS_ANNOTATION = "tenet.dev/capture-exclude-inbound-ports";
export const EXCLUDE_OUTBOUND_PORTS_ANNOTATION = "tenet.dev/capture-exclude-outbound-ports";
export const EXCLUDE_OUTBOUND_CIDRS_ANNOTATION = "tenet.dev/capture-exclude-outbound-cidrs";
/** Health-port path prefix the rewritten probes use: /app-health/<container>/<startup|readiness|liveness>. */
export const APP_HEALTH_PREFIX = "/app-health/";
/** The enforcer's env var holding the original probes, keyed "<container>/<kind>". */
export const APP_PROBES_ENV = "TENET_APP_PROBES";

export interface CaptureConfig {
  enabled: boolean;
  image: string; // e.g. "tenet.local/tenet-capture:dev"
  inboundPort: number; // 15006: plaintext arriving at any app port (strict: refused)
  outboundPort: number; // 15002: the app's outbound TCP
  /** The enforcer runs as this UID; its own traffic is not captured. No app container may use it. */
  enforcerUID: number;
}

export interface Exclusions {
  inboundPorts: number[];
  outboundPorts: number[];
  outboundCIDRs: string[];
}

/** Whether this pod is captured (on by default where capture is enabled). */
export function captureOn(pod: any, cfg: CaptureConfig): boolean {
  const v = pod?.metadata?.annotations?.[CAPTURE_ANNOTATION];
  return cfg.enabled && !(typeof v === "string" && v.trim().toLowerCase() === "false");
}

const MAX_ITEMS = 64;

/** The exclusion annotations, validated; a bad value names the annotation and the fix. */
export function exclusionsOf(pod: any): Exclusions {
  const a = pod?.metadata?.annotations ?? {};
  const list = (key: string): string[] => {
    const raw = a[key];
    if (raw === undefined) return [];
    if (typeof raw !== "string" || raw.length > 4096) throw new InjectionError(`the annotation ${key} must be a comma-separated list of at most 4096 characters`);
    const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
    if (items.length > MAX_ITEMS) throw new InjectionError(`the annotation ${key} lists ${items.length} items; at most ${MAX_ITEMS}`);
    return items;
  };
  const ports = (key: string) =>
    [...new Set(list(key).map((p) => {
      const n = /^[0-9]{1,5}$/.test(p) ? Number(p) : NaN;
      if (!(n >= 1 && n <= 65535)) throw new InjectionError(`the annotation ${key} has ${JSON.stringify(p)}, which is not a port number (1-65535); write e.g. "9090,9091"`);
      return n;
    }))].sort((x, y) => x - y);
  const cidrs = [...new Set(list(EXCLUDE_OUTBOUND_CIDRS_ANNOTATION).map(normaliseCIDR))].sort();
  return { inboundPorts: ports(EXCLUDE_INBOUND_PORTS_ANNOTATION), outboundPorts: ports(EXCLUDE_OUTBOUND_PORTS_ANNOTATION), outboundCIDRs: cidrs };
}

function normaliseCIDR(s: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s);
  const bad = () => new InjectionError(`the annotation ${EXCLUDE_OUTBOUND_CIDRS_ANNOTATION} has ${JSON.stringify(s)}, which is not an IPv4 CIDR; write e.g. "169.254.169.254/32,10.0.0.0/8"`);
  if (!m) throw bad();
  const octets = m.slice(1, 5).map(Number);
  const bits = m[5] === undefined ? 32 : Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 32) throw bad();
  return `${octets.join(".")}/${bits}`;
}

/**
 * The nat-table rules (iptables-restore input) for one pod. Inbound: every TCP port except the
 * enforcer's own (mTLS, health) and the excluded ones goes to the capture inbound listener.
 * Outbound: everything the app sends, except the enforcer's UID, loopback, excluded ports and
 * CIDRs, goes to the outbound capture listener. Chains of our own, so they read in iptables-save.
 */
export function captureRules(cfg: CaptureConfig, enforcerPorts: { inbound: number; health: number }, ex: Exclusions, family: 4 | 6 = 4): string {
  const lo = family === 4 ? "127.0.0.0/8" : "::1/128";
  const lines = [
    "*nat",
    ":TENET_INBOUND - [0:0]",
    ":TENET_OUTBOUND - [0:0]",
    "-A PREROUTING -p tcp -j TENET_INBOUND",
    `-A TENET_INBOUND -p tcp --dport ${enforcerPorts.inbound} -j RETURN`,
    `-A TENET_INBOUND -p tcp --dport ${enforcerPorts.health} -j RETURN`,
    ...ex.inboundPorts.map((p) => `-A TENET_INBOUND -p tcp --dport ${p} -j RETURN`),
    `-A TENET_INBOUND -p tcp -j REDIRECT --to-ports ${cfg.inboundPort}`,
    "-A OUTPUT -p tcp -j TENET_OUTBOUND",
    `-A TENET_OUTBOUND -m owner --uid-owner ${cfg.enforcerUID} -j RETURN`,
    "-A TENET_OUTBOUND -o lo -j RETURN",
    `-A TENET_OUTBOUND -d ${lo} -j RETURN`,
    ...ex.outboundPorts.map((p) => `-A TENET_OUTBOUND -p tcp --dport ${p} -j RETURN`),
    ...(family === 4 ? ex.outboundCIDRs.map((c) => `-A TENET_OUTBOUND -d ${c} -j RETURN`) : []),
    `-A TENET_OUTBOUND -p tcp -j REDIRECT --to-ports ${cfg.outboundPort}`,
    "COMMIT",
  ];
  return lines.join("\n") + "\n";
}

/** The init container that installs the rules: root with NET_ADMIN and NET_RAW, nothing else, and gone before the app starts. */
export function captureContainer(cfg: CaptureConfig, enforcerPorts: { inbound: number; health: number }, ex: Exclusions): any {
  return {
    name: CAPTURE_CONTAINER,
    image: cfg.image,
    env: [
      { name: "TENET_CAPTURE_RULES", value: captureRules(cfg, enforcerPorts, ex, 4) },
      { name: "TENET_CAPTURE_RULES6", value: captureRules(cfg, enforcerPorts, ex, 6) },
    ],
    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

type ProbeKind = "startupProbe" | "readinessProbe" | "livenessProbe";
const PROBE_KINDS: ProbeKind[] = ["startupProbe", "readinessProbe", "livenessProbe"];
const kindName = (k: ProbeKind) => k.replace("Probe", "");

/**
 * The app containers with their httpGet and tcpSocket probes pointed at the enforcer's health
 * port (GET /app-health/<container>/<kind>), and the original probes for the enforcer to run
 * against 127.0.0.1. A probe already rewritten keeps its original from `previous` (re-injection).
 * exec and grpc probes are left alone (see docs/capture.md).
 */
export function rewriteProbes(containers: any[], healthPort: number, previous: Record<string, any>): { containers: any[]; probes: Record<string, any> } {
  const probes: Record<string, any> = {};
  const out = containers.map((c) => {
    if (!c || typeof c !== "object") return c;
    let copy: any;
    for (const kind of PROBE_KINDS) {
      const p = c[kind];
      if (!p || typeof p !== "object") continue;
      const key = `${c.name}/${kindName(kind)}`;
      const path = `${APP_HEALTH_PREFIX}${key}`;
      if (p.httpGet?.path === path && p.httpGet?.port === healthPort) {
        if (previous[key]) probes[key] = previous[key];
        continue;
      }
      let original: any;
      if (p.httpGet && !p.httpGet.host) {
        const port = resolvePort(c, p.httpGet.port, key);
        original = { httpGet: { port, path: typeof p.httpGet.path === "string" ? p.httpGet.path : "/", scheme: p.httpGet.scheme === "HTTPS" ? "HTTPS" : "HTTP", ...(Array.isArray(p.httpGet.httpHeaders) ? { httpHeaders: p.httpGet.httpHeaders } : {}) } };
      } else if (p.tcpSocket && !p.tcpSocket.host) {
        original = { tcpSocket: { port: resolvePort(c, p.tcpSocket.port, key) } };
      } else continue;
      probes[key] = original;
      const { httpGet: _h, tcpSocket: _t, ...timing } = p;
      copy ??= { ...c };
      copy[kind] = { ...timing, httpGet: { path, port: healthPort, scheme: "HTTP" } };
    }
    return copy ?? c;
  });
  return { containers: out, probes };
}

function resolvePort(c: any, port: unknown, key: string): number {
  if (typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535) return port;
  if (typeof port === "string") {
    if (/^[0-9]{1,5}$/.test(port)) return resolvePort(c, Number(port), key);
    const named = (c.ports ?? []).find((p: any) => p?.name === port);
    if (named && Number.isInteger(named.containerPort)) return named.containerPort;
  }
  throw new InjectionError(`the probe ${key} names port ${JSON.stringify(port)}, which is not a port number or a named port of the container`);
}

/** The originals recorded in an existing enforcer's env (re-injection), or {}. */
export function previousProbes(enforcer: any): Record<string, any> {
  const v = (enforcer?.env ?? []).find((e: any) => e?.name === APP_PROBES_ENV)?.value;
  if (typeof v !== "string") return {};
  try {
    const o = JSON.parse(v);
    return o && typeof o === "object" && !Array.isArray(o) ? o : {};
  } catch {
    return {};
  }
}

/** App containers (or the pod) that run as the enforcer's UID would have their traffic skip capture. */
export function checkUID(spec: any, uid: number): void {
  if (spec?.securityContext?.runAsUser === uid) throw new InjectionError(`the pod runs as UID ${uid} (spec.securityContext.runAsUser), which the Tenet enforcer uses: its traffic would not be captured; pick another UID`);
  for (const kind of ["containers", "initContainers"]) {
    for (const c of spec?.[kind] ?? []) {
      if (c?.name === "tenet-enforcer") continue; // ours (re-injection replaces it)
      if (c?.securityContext?.runAsUser === uid) throw new InjectionError(`container "${c.name}" runs as UID ${uid}, which the Tenet enforcer uses: its traffic would not be captured; pick another UID`);
    }
  }
}
