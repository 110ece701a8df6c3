// Enforcer injection: whether a pod gets the Tenet enforcer (shouldInject) and the pod with it
// (injectPod). Pure functions over plain JSON; the webhook diffs injectPod's result against the
// request's pod to build the JSON patch (patch.ts).
//
// The enforcer is a native sidecar: the first init container, with `restartPolicy: Always`.
// The kubelet starts it before every other init container and waits for its startup probe
// (it is ready once it holds a certificate), so no app container runs, or opens a connection,
// without it; and it is stopped once the regular containers have exited, so Jobs complete.
import { createHash } from "node:crypto";
import { APP_PROBES_ENV, CAPTURE_CONTAINER, captureContainer, captureOn, checkUID, exclusionsOf, previousProbes, rewriteProbes, type CaptureConfig } from "./capture.ts";
import { InjectionError } from "./errors.ts";
import { APP_PORT_ANNOTATION, BUNDLE_CONFIGMAP, ENFORCER_CONTAINER, ENFORCER_LABEL, ENFORCER_LABEL_VALUE, INJECT_ANNOTATION, INJECT_NAMESPACE_LABEL, INJECTED_ANNOTATION, NAMESPACE_NAME_LABEL, TOKEN_AUDIENCE } from "../common/names.ts";

/** The port the enforcer forwards to when neither the annotation nor a containerPort says. */
export const DEFAULT_APP_PORT = 8080;
/** Optional pod annotation: the outbound peers, passed to the enforcer as TENET_PEERS (a JSON
 * object {"host[:port]": "spiffe://..." | {"spiffeID", "address"}}; see docs/enforcer.md). The
 * pod's owner only states what its own outbound calls must meet; it grants nothing. */
export const PEERS_ANNOTATION = "tenet.dev/peers";
const MAX_PEERS_BYTES = 16 * 1024;

export const TOKEN_VOLUME = "tenet-token";
export const BUNDLE_VOLUME = "tenet-trust-bundle";
export const TOKEN_DIR = "/var/run/secrets/tenet.dev/token";
export const BUNDLE_DIR = "/var/run/secrets/tenet.dev/bundle";
const TENET_VOLUMES = [TOKEN_VOLUME, BUNDLE_VOLUME];
const TENET_PORT_NAMES = ["tenet-mtls", "tenet-health"];
const TENET_CONTAINERS = [ENFORCER_CONTAINER, CAPTURE_CONTAINER];

/** Never injected, whatever their labels or annotations: a webhook that mutates the control
 * plane's own pods, or the operator's, can keep the cluster from healing itself. */
export const EXEMPT_NAMESPACES: ReadonlySet<string> = new Set(["kube-system", "tenet-system"]);

export interface InjectionConfig {
  image: string; // enforcer image, e.g. "tenet.local/tenet-enforcer:dev"
  args: string[]; // extra arguments for the image's entrypoint; usually none
  caEndpoint: string; // e.g. "https://tenet-operator.tenet-system.svc:443"
  /** Where enforcers send their signals: the leader-only Service (e.g. "https://tenet-signals.tenet-system.svc:443"); unset, the CA endpoint. */
  signalsEndpoint?: string;
  inboundPort: number; // 15443 (mTLS from peers)
  outboundPort: number; // 15001 (plain HTTP proxy for the app, on localhost)
  healthPort: number; // 15021 (/ready, /live)
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  tokenExpirationSeconds: number; // 3600
  version: string; // injector version, recorded in an annotation
  capture: CaptureConfig; // transparent capture (capture.ts, docs/capture.md)
}

/** Why a pod is left alone. */
export type InjectSkipReason =
  /** The pod is annotated tenet.dev/inject: "false"; this wins over the namespace label. */
  | "OptedOut"
  /** Neither the namespace label tenet.dev/inject=enabled nor the pod annotation "true". */
  | "NotOptedIn"
  /** An init container named tenet-enforcer exists: injecting again would duplicate it. */
  | "AlreadyInjected"
  /** hostNetwork pods share the node's network namespace, so the enforcer's fixed ports
   * (inbound, outbound, health) would clash with every other such pod on the node and with
   * node daemons, and its localhost-only outbound proxy would be reachable by the whole node.
   * Injection is refused rather than half-working; such pods get no Tenet identity. */
  | "HostNetwork"
  /** kube-system and tenet-system are never injected (see EXEMPT_NAMESPACES). */
  | "ExemptNamespace";

export type InjectDecision = { inject: true } | { inject: false; reason: InjectSkipReason };

export { InjectionError };

export function isInjected(pod: any): boolean {
  return (pod?.spec?.initContainers ?? []).some((c: any) => c?.name === ENFORCER_CONTAINER);
}

export function shouldInject(pod: any, namespaceLabels: Record<string, string>, namespace: string): InjectDecision {
  const labels = namespaceLabels ?? {};
  const names = [namespace, labels[NAMESPACE_NAME_LABEL], pod?.metadata?.namespace];
  if (names.some((n) => typeof n === "string" && EXEMPT_NAMESPACES.has(n))) return { inject: false, reason: "ExemptNamespace" };
  if (isInjected(pod)) return { inject: false, reason: "AlreadyInjected" };
  const annotation = normalise(pod?.metadata?.annotations?.[INJECT_ANNOTATION]);
  if (annotation === "false") return { inject: false, reason: "OptedOut" };
  if (annotation !== "true" && normalise(labels[INJECT_NAMESPACE_LABEL]) !== "enabled") return { inject: false, reason: "NotOptedIn" };
  if (pod?.spec?.hostNetwork === true) return { inject: false, reason: "HostNetwork" };
  return { inject: true };
}

// " True " and "FALSE" mean what they say; anything else is not an opt-in or an opt-out.
function normalise(value: unknown): string | undefined {
  return typeof value === "string" ? value.trim().toLowerCase() : undefined;
}

/** The pod with the enforcer, as a new object. The input is never modified; the output copies
 * only what it changes (metadata, spec, its arrays) and shares the rest with the input, which
 * keeps the webhook's diff cheap. Level-based: a pod that already has Tenet's parts gets them
 * rewritten in place, so injecting twice equals injecting once. Throws InjectionError when the
 * pod's own items clash with Tenet's names. */
export function injectPod(pod: any, cfg: InjectionConfig): any {
  if (!pod?.spec || !Array.isArray(pod.spec.containers)) throw new InjectionError("the pod has no spec.containers");
  const out = { ...pod, spec: { ...pod.spec } };
  if (pod.metadata) out.metadata = { ...pod.metadata };
  const spec = out.spec;
  const injected = isInjected(out);
  const appPort = resolveAppPort(out);
  checkConflicts(out, injected, appPort, cfg);
  const capture = captureOn(out, cfg.capture);
  const previous = (spec.initContainers ?? []).find((c: any) => c?.name === ENFORCER_CONTAINER);
  let probes: Record<string, any> | undefined;
  if (capture) {
    checkUID(spec, cfg.capture.enforcerUID);
    // Probes come from the node's IP to the app's port: through the enforcer's health port instead.
    const rewritten = rewriteProbes(spec.containers, cfg.healthPort, previousProbes(previous));
    spec.containers = rewritten.containers;
    probes = rewritten.probes;
  }

  // Capture first (it exits once the rules are in), then the sidecar: init containers start in
  // order, and each waits for the previous.
  const others = (spec.initContainers ?? []).filter((c: any) => !TENET_CONTAINERS.includes(c?.name));
  spec.initContainers = [
    ...(capture ? [captureContainer(cfg.capture, { inbound: cfg.inboundPort, health: cfg.healthPort }, exclusionsOf(out))] : []),
    enforcerContainer(cfg, appPort, peersOf(out), capture, probes),
    ...others,
  ];

  // Our volumes replace themselves in place on re-injection and are appended otherwise.
  spec.volumes = Array.isArray(spec.volumes) ? [...spec.volumes] : [];
  for (const volume of tenetVolumes(cfg)) {
    const at = spec.volumes.findIndex((v: any) => v?.name === volume.name);
    if (at >= 0) spec.volumes[at] = volume;
    else spec.volumes.push(volume);
  }

  const meta = (out.metadata ??= {});
  meta.annotations = { ...(meta.annotations ?? {}), [INJECTED_ANNOTATION]: cfg.version };
  meta.labels = { ...(meta.labels ?? {}), [ENFORCER_LABEL]: ENFORCER_LABEL_VALUE };
  return out;
}

/** The pod spec without the enforcer Tenet injected: RuntimeRules judge the workload's
 * containers, not Tenet's own sidecar. Only the exact container injection produces for this pod
 * and configuration is left out (compared on every field that decides what runs and with which
 * privileges: see enforcerFingerprint); a look-alike — same name and image, but privileged, its
 * own command, other mounts … — stays in and is judged like every other container.
 * `annotations` are the pod's (or template's): the enforcer's app port and peers come from them. */
export function withoutEnforcer(podSpec: any, cfg: InjectionConfig, annotations?: Record<string, string>): any {
  const init = podSpec?.initContainers;
  if (!Array.isArray(init)) return podSpec;
  const at = init.findIndex((c: any) => c?.name === ENFORCER_CONTAINER);
  if (at < 0) return podSpec;
  const pod = { metadata: { annotations }, spec: podSpec };
  const expected = expectedEnforcerFingerprint(pod, cfg);
  if (!expected || enforcerFingerprint(init[at], podSpec) !== expected) return podSpec;
  // The capture container (NET_ADMIN) is left out only when it is exactly Tenet's too.
  const captureAt = init.findIndex((c: any) => c?.name === CAPTURE_CONTAINER);
  const dropCapture = captureAt >= 0 && enforcerFingerprint(init[captureAt], podSpec) === expectedCaptureFingerprint(pod, cfg);
  return { ...podSpec, initContainers: init.filter((_: any, i: number) => i !== at && !(dropCapture && i === captureAt)) };
}

/** The fingerprint of the capture container injection would produce for this pod now, or undefined. */
export function expectedCaptureFingerprint(pod: any, cfg: InjectionConfig): string | undefined {
  if (!captureOn(pod, cfg.capture)) return undefined;
  try {
    return enforcerFingerprint(captureContainer(cfg.capture, { inbound: cfg.inboundPort, health: cfg.healthPort }, exclusionsOf(pod)));
  } catch (err) {
    if (err instanceof InjectionError) return undefined;
    throw err;
  }
}

/** Whether a cached pod's tenet-capture container is exactly the one Tenet injects. */
export function isTenetCapture(enforcer: { capture?: string } | undefined, annotations: Record<string, string> | undefined, cfg: InjectionConfig): boolean {
  return !!enforcer?.capture && enforcer.capture === expectedCaptureFingerprint({ metadata: { annotations } }, cfg);
}

/** The fingerprint of the enforcer container injection would produce for this pod now, or
 * undefined when the pod cannot be injected as written. */
export function expectedEnforcerFingerprint(pod: any, cfg: InjectionConfig): string | undefined {
  try {
    return enforcerFingerprint(enforcerContainer(cfg, resolveAppPort(pod), peersOf(pod), captureOn(pod, cfg.capture)));
  } catch (err) {
    if (err instanceof InjectionError) return undefined;
    throw err;
  }
}

/** Whether a cached pod's tenet-enforcer is exactly the one Tenet injects (the cache keeps the
 * fingerprint and app port of the pod's tenet-enforcer, see operator/cache/pods.ts). */
export function isTenetEnforcer(enforcer: { fingerprint: string; appPort: number } | undefined, annotations: Record<string, string> | undefined, cfg: InjectionConfig): boolean {
  if (!enforcer) return false;
  let peers: string | undefined;
  try {
    peers = peersOf({ metadata: { annotations } });
  } catch (err) {
    if (err instanceof InjectionError) return false;
    throw err;
  }
  return enforcer.fingerprint === enforcerFingerprint(enforcerContainer(cfg, enforcer.appPort, peers, captureOn({ metadata: { annotations } }, cfg.capture)));
}

/** A digest of the security-relevant fields of a container: what it runs (image, command, args,
 * working dir, lifecycle hooks and probe handlers — exec probes run commands), with which
 * privileges (securityContext), what it sees (env, envFrom, volumeMounts, volumeDevices), what it
 * exposes (ports) and how it runs (restartPolicy). The API server's defaults (probe timings,
 * imagePullPolicy, terminationMessagePath, resources, fieldRef apiVersion, port protocol, probe
 * scheme) are normalised or left out, so the injected container still matches once stored. */
export function enforcerFingerprint(c: any, podSpec?: any): string {
  const probe = (p: any) =>
    p && {
      exec: p.exec,
      httpGet: p.httpGet && { path: p.httpGet.path, port: p.httpGet.port, host: p.httpGet.host, scheme: p.httpGet.scheme ?? "HTTP", httpHeaders: p.httpGet.httpHeaders },
      tcpSocket: p.tcpSocket,
      grpc: p.grpc,
    };
  const projection = {
    name: c?.name,
    image: c?.image,
    command: c?.command,
    args: c?.args?.length ? c.args : undefined,
    workingDir: c?.workingDir,
    restartPolicy: c?.restartPolicy,
    // The original probes are left out: the enforcer only ever runs them against 127.0.0.1, and
    // after injection they live nowhere else (the app's probes point at the health port).
    env: (c?.env ?? []).map((e: any) => ({
      name: e?.name,
      value: e?.name === APP_PROBES_ENV ? "(probes)" : e?.value,
      valueFrom: e?.valueFrom?.fieldRef ? { fieldRef: { apiVersion: e.valueFrom.fieldRef.apiVersion ?? "v1", fieldPath: e.valueFrom.fieldRef.fieldPath } } : e?.valueFrom,
    })),
    envFrom: c?.envFrom,
    ports: (c?.ports ?? []).map((p: any) => ({ name: p?.name, containerPort: p?.containerPort, protocol: p?.protocol ?? "TCP", hostPort: p?.hostPort, hostIP: p?.hostIP })),
    securityContext: c?.securityContext,
    volumeMounts: (c?.volumeMounts ?? []).filter((m: any) => !isServiceAccountMount(m, podSpec)).map((m: any) => ({ ...m, readOnly: m?.readOnly === true })),
    volumeDevices: c?.volumeDevices,
    lifecycle: c?.lifecycle,
    startupProbe: probe(c?.startupProbe),
    readinessProbe: probe(c?.readinessProbe),
    livenessProbe: probe(c?.livenessProbe),
    stdin: c?.stdin === true,
    tty: c?.tty === true,
  };
  return createHash("sha256").update(canonical(projection)).digest("hex");
}

/** The API server's ServiceAccount admission adds the pod's API token volume (kube-api-access-*,
 * a projected serviceAccountToken volume) to every container, the enforcer included: that mount,
 * read-only at its standard path, is not a difference. */
function isServiceAccountMount(m: any, podSpec: any): boolean {
  if (typeof m?.name !== "string" || !m.name.startsWith("kube-api-access-") || m.mountPath !== "/var/run/secrets/kubernetes.io/serviceaccount" || m.readOnly !== true) return false;
  if (m.subPath || m.subPathExpr || m.mountPropagation) return false;
  const v = (podSpec?.volumes ?? []).find((x: any) => x?.name === m.name);
  const sources = v?.projected?.sources;
  return Array.isArray(sources) && sources.some((s: any) => s?.serviceAccountToken) && sources.every((s: any) => s?.serviceAccountToken || s?.configMap?.name === "kube-root-ca.crt" || s?.downwardAPI);
}

/** JSON with sorted keys and undefined left out: the same object always gives the same text. */
function canonical(v: unknown): string {
  if (v === undefined || v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object") {
    const keys = Object.keys(v as object).filter((k) => (v as any)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as any)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** tenet.dev/app-port if set (it must be a port number), else the first containerPort of the
 * first app container, else 8080. */
export function resolveAppPort(pod: any): number {
  const raw = pod?.metadata?.annotations?.[APP_PORT_ANNOTATION];
  if (raw !== undefined && raw !== null) {
    const text = String(raw).trim();
    const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new InjectionError(`the annotation ${APP_PORT_ANNOTATION} is ${JSON.stringify(raw)}, which is not a port number (1-65535)`);
    }
    return port;
  }
  const first = pod?.spec?.containers?.[0]?.ports?.[0]?.containerPort;
  return Number.isInteger(first) && first > 0 ? first : DEFAULT_APP_PORT;
}

function checkConflicts(pod: any, injected: boolean, appPort: number, cfg: InjectionConfig): void {
  const spec = pod.spec;
  const apps: { kind: string; c: any }[] = [
    ...(spec.containers ?? []).map((c: any) => ({ kind: "container", c })),
    ...(spec.initContainers ?? []).filter((c: any) => !(injected && TENET_CONTAINERS.includes(c?.name)) && c?.name !== ENFORCER_CONTAINER).map((c: any) => ({ kind: "init container", c })),
    ...(spec.ephemeralContainers ?? []).map((c: any) => ({ kind: "ephemeral container", c })),
  ];
  // On an injected pod, volumes with our names are ours; anywhere else they are the user's.
  if (!injected) {
    for (const v of spec.volumes ?? []) {
      if (TENET_VOLUMES.includes(v?.name)) {
        throw new InjectionError(`the pod already has a volume named "${v.name}", a name reserved for the Tenet enforcer`);
      }
    }
  }
  const enforcerPorts = new Map([
    [cfg.inboundPort, "inbound mTLS"],
    [cfg.outboundPort, "outbound proxy"],
    [cfg.healthPort, "health"],
    ...(captureOn(pod, cfg.capture)
      ? ([
          [cfg.capture.inboundPort, "capture inbound"],
          [cfg.capture.outboundPort, "capture outbound"],
        ] as [number, string][])
      : []),
  ]);

  for (const { kind, c } of apps) {
    if (TENET_CONTAINERS.includes(c?.name)) {
      throw new InjectionError(`the ${kind} name "${c.name}" is reserved for the Tenet enforcer`);
    }
    // Mounting Tenet's token would hand the app the credential the CA issues identities for.
    for (const m of c?.volumeMounts ?? []) {
      if (TENET_VOLUMES.includes(m?.name)) {
        throw new InjectionError(`${kind} "${c.name}" has a volumeMount named "${m.name}", a name reserved for the Tenet enforcer`);
      }
    }
    // The enforcer shares the pod's network namespace: a port in use twice fails to bind.
    for (const p of c?.ports ?? []) {
      if (TENET_PORT_NAMES.includes(p?.name)) {
        throw new InjectionError(`${kind} "${c.name}" has a port named "${p.name}", a name reserved for the Tenet enforcer`);
      }
      const use = enforcerPorts.get(p?.containerPort);
      if (use && (p?.protocol ?? "TCP") === "TCP") {
        throw new InjectionError(`${kind} "${c.name}" uses port ${p.containerPort}, which the Tenet enforcer needs for its ${use} listener`);
      }
    }
  }
  const appUse = enforcerPorts.get(appPort);
  if (appUse) throw new InjectionError(`the app port ${appPort} is the Tenet enforcer's ${appUse} port; set ${APP_PORT_ANNOTATION} to the port the app listens on`);

}

function peersOf(pod: any): string | undefined {
  const raw = pod?.metadata?.annotations?.[PEERS_ANNOTATION];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || raw.length > MAX_PEERS_BYTES) throw new InjectionError(`the annotation ${PEERS_ANNOTATION} must be a JSON object of at most ${MAX_PEERS_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new InjectionError(`the annotation ${PEERS_ANNOTATION} is not valid JSON (${(err as Error).message}); write {"host[:port]": "spiffe://<trust-domain>/ns/<ns>/sa/<sa>"}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new InjectionError(`the annotation ${PEERS_ANNOTATION} must be a JSON object {"host[:port]": "spiffe://..."}`);
  return raw;
}

function enforcerContainer(cfg: InjectionConfig, appPort: number, peers: string | undefined, capture: boolean, probes?: Record<string, any>): any {
  const ready = { httpGet: { path: "/ready", port: cfg.healthPort } };
  const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  const caEndpoint = cfg.caEndpoint.replace(/\/+$/, "");
  return {
    name: ENFORCER_CONTAINER,
    image: cfg.image,
    ...(cfg.args.length ? { args: [...cfg.args] } : {}),
    // Native sidecar: runs alongside the app, started first, stopped after the app exits.
    restartPolicy: "Always",
    env: [
      fieldEnv("POD_NAME", "metadata.name"),
      fieldEnv("POD_NAMESPACE", "metadata.namespace"),
      fieldEnv("POD_UID", "metadata.uid"),
      fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
      { name: "TENET_CA_ENDPOINT", value: caEndpoint },
      { name: "TENET_TOKEN_FILE", value: `${TOKEN_DIR}/token` },
      { name: "TENET_BUNDLE_FILE", value: `${BUNDLE_DIR}/ca.crt` },
      { name: "TENET_REVOCATIONS_URL", value: `${caEndpoint}/v1/revocations` },
      ...(cfg.signalsEndpoint ? [{ name: "TENET_SIGNALS_URL", value: `${cfg.signalsEndpoint.replace(/\/+$/, "")}/v1/signals/enforcer` }] : []),
      { name: "TENET_INBOUND_PORT", value: String(cfg.inboundPort) },
      { name: "TENET_OUTBOUND_PORT", value: String(cfg.outboundPort) },
      { name: "TENET_HEALTH_PORT", value: String(cfg.healthPort) },
      { name: "TENET_APP_PORT", value: String(appPort) },
      ...(peers !== undefined ? [{ name: "TENET_PEERS", value: peers }] : []),
      ...(capture
        ? [
            { name: "TENET_CAPTURE", value: "true" },
            { name: "TENET_CAPTURE_INBOUND_PORT", value: String(cfg.capture.inboundPort) },
            { name: "TENET_CAPTURE_OUTBOUND_PORT", value: String(cfg.capture.outboundPort) },
            { name: APP_PROBES_ENV, value: JSON.stringify(probes ?? {}) },
          ]
        : []),
    ],
    // The outbound proxy listens on localhost only, so it is not declared as a port.
    ports: [
      { name: "tenet-mtls", containerPort: cfg.inboundPort, protocol: "TCP" },
      { name: "tenet-health", containerPort: cfg.healthPort, protocol: "TCP" },
    ],
    // The kubelet starts the next init container (and then the app) only after this succeeds:
    // up to two minutes for the first certificate from the CA.
    startupProbe: { ...ready, periodSeconds: 1, failureThreshold: 120 },
    readinessProbe: { ...ready, periodSeconds: 5 },
    livenessProbe: { httpGet: { path: "/live", port: cfg.healthPort }, periodSeconds: 10 },
    resources: { requests: cfg.resources.requests && { ...cfg.resources.requests }, limits: cfg.resources.limits && { ...cfg.resources.limits } },
    securityContext: {
      runAsNonRoot: true,
      // A fixed UID: the capture rules leave this UID's traffic alone (the enforcer's own calls).
      runAsUser: cfg.capture.enforcerUID,
      runAsGroup: cfg.capture.enforcerUID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    terminationMessagePolicy: "FallbackToLogsOnError",
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: BUNDLE_VOLUME, mountPath: BUNDLE_DIR, readOnly: true },
    ],
  };
}

function tenetVolumes(cfg: InjectionConfig): any[] {
  return [
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: cfg.tokenExpirationSeconds, path: "token" } }],
      },
    },
    { name: BUNDLE_VOLUME, configMap: { name: BUNDLE_CONFIGMAP } },
  ];
}
