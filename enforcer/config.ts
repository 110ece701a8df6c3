// Enforcer settings from the environment. The names are the ones admission/inject.ts sets on the
// sidecar (TENET_CA_ENDPOINT, TENET_TOKEN_FILE, TENET_BUNDLE_FILE, TENET_OPERATOR_BUNDLE_FILE, TENET_REVOCATIONS_URL,
// TENET_*_PORT, POD_*); the rest have defaults that suit a pod. Every bad value is refused at
// start with a message naming the variable.
import path from "node:path";

export interface PeerTarget {
  /** The SPIFFE ID the destination's enforcer must present. */
  spiffeID: string;
  /** host:port of the destination's enforcer; default: the requested host on the peer port. */
  address?: { host: string; port: number };
}

export interface EnforcerConfig {
  /** Operator base URL (CSR endpoint, bundle, revocations, policy); undefined in static mode. */
  caEndpoint?: string;
  tokenFile: string;
  bundleFile?: string;
  /**
   * The serving CA bundle: the only CAs trusted for the operator's HTTPS (never the workload CA,
   * which signs names tenants choose). Default: operator-ca.crt next to TENET_BUNDLE_FILE (the
   * same ConfigMap volume). Undefined in static mode.
   */
  operatorBundleFile?: string;
  /** The SPIFFE ID the operator's serving certificate must carry; default: any spiffe://…/ns/<ns>/sa/tenet-operator. */
  operatorSpiffeID?: string;
  bundleURL?: string;
  revocationsURL?: string;
  policyURL?: string;
  /** Test/bench only: key.pem, cert.pem, bundle.pem, policy.json, revocations.json from a directory. */
  staticDir?: string;
  podName: string;
  listenHost: string;
  inboundPort: number;
  outboundHost: string;
  outboundPort: number;
  healthHost: string;
  healthPort: number;
  appHost: string;
  appPort: number;
  /** Default port of a destination's enforcer (its inbound port) when a peer names no address. */
  peerPort: number;
  /** Destination (host:port or host, as the app writes it in the URL) → expected identity. */
  peers: Map<string, PeerTarget>;
  refreshMs: number;
  /** Trust bundle and revocation list: often, so a quarantine takes effect within seconds (ETag: mostly 304s). */
  trustRefreshMs: number;
  auditFile?: string;
  /** Where denials are reported as signals (operator/signals/); undefined: not reported. */
  signalsURL?: string;
  podNamespace?: string;
  signalFlushMs: number;
  signalBurstThreshold: number;
  maxHeaderSize: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** HTTP/2 streams in flight per inbound connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  h2MaxStreams: number;
  /** Bounds on open connections from meshed callers (live-connections.ts). */
  maxConnectionsPerCaller: number;
  maxInboundConnections: number;
  /** Transparent capture (docs/capture.md): the pod's traffic is redirected to the two listeners below. */
  capture: boolean;
  captureInboundPort: number;
  captureOutboundPort: number;
  /** The app's original probes, run against 127.0.0.1 for GET /app-health/<container>/<kind>. */
  appProbes: Map<string, AppProbe>;
  /** How long outbound capture waits for the app's first bytes before it treats a connection as opaque TCP. */
  sniffMs: number;
  /** The SO_ORIGINAL_DST addon (default: origdst.node next to the bundle). */
  origDstAddon?: string;
}

export type AppProbe = { httpGet: { port: number; path: string; scheme: "HTTP" | "HTTPS"; httpHeaders?: { name: string; value: string }[] } } | { tcpSocket: { port: number } };

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function enforcerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EnforcerConfig {
  const int = (name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER) => {
    const v = env[name];
    if (v === undefined || v === "") return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}=${JSON.stringify(v)} must be an integer between ${min} and ${max}`);
    return n;
  };
  const port = (name: string, dflt: number) => int(name, dflt, 0, 65535);
  const staticDir = env.TENET_ENFORCER_STATIC_DIR || undefined;
  const caEndpoint = env.TENET_CA_ENDPOINT?.replace(/\/+$/, "") || undefined;
  if (!staticDir && !caEndpoint) throw new ConfigError("TENET_CA_ENDPOINT is not set: the enforcer needs the operator's URL (e.g. https://tenet-operator.tenet-system.svc:443)");
  if (caEndpoint && !/^https:\/\//.test(caEndpoint)) throw new ConfigError(`TENET_CA_ENDPOINT=${JSON.stringify(caEndpoint)} must be an https:// URL`);
  const inboundPort = port("TENET_INBOUND_PORT", 15443);
  const bundleFile = env.TENET_BUNDLE_FILE || (staticDir ? path.join(staticDir, "bundle.pem") : undefined);
  if (!staticDir && !bundleFile) throw new ConfigError("TENET_BUNDLE_FILE is not set: the enforcer needs the trust bundle to reach the operator over TLS");
  return {
    caEndpoint,
    tokenFile: env.TENET_TOKEN_FILE ?? "/var/run/secrets/tenet.dev/token/token",
    bundleFile,
    operatorBundleFile: env.TENET_OPERATOR_BUNDLE_FILE || (bundleFile && !staticDir ? path.join(path.dirname(bundleFile), "operator-ca.crt") : undefined),
    operatorSpiffeID: env.TENET_OPERATOR_SPIFFE_ID || undefined,
    bundleURL: caEndpoint && `${caEndpoint}/v1/bundle`,
    revocationsURL: env.TENET_REVOCATIONS_URL || (caEndpoint && `${caEndpoint}/v1/revocations`),
    policyURL: env.TENET_POLICY_URL || (caEndpoint && `${caEndpoint}/v1/policy`),
    staticDir,
    podName: env.POD_NAME ?? "tenet-enforcer",
    listenHost: env.TENET_LISTEN_HOST || "0.0.0.0",
    inboundPort,
    outboundHost: env.TENET_OUTBOUND_HOST || "127.0.0.1",
    outboundPort: port("TENET_OUTBOUND_PORT", 15001),
    healthHost: env.TENET_HEALTH_HOST || "0.0.0.0",
    healthPort: port("TENET_HEALTH_PORT", 15021),
    appHost: env.TENET_APP_HOST || "127.0.0.1",
    appPort: port("TENET_APP_PORT", 8080),
    peerPort: port("TENET_PEER_PORT", 15443),
    peers: parsePeers(env.TENET_PEERS),
    // Policy and mesh: often enough that a new pod behind a Service is reached within seconds (ETag: mostly 304s).
    refreshMs: int("TENET_REFRESH_SECONDS", 5, 1, 86_400) * 1000,
    trustRefreshMs: int("TENET_TRUST_REFRESH_SECONDS", 5, 1, 86_400) * 1000,
    auditFile: env.TENET_AUDIT_FILE || undefined,
    signalsURL: env.TENET_SIGNALS === "off" ? undefined : env.TENET_SIGNALS_URL || (caEndpoint && `${caEndpoint}/v1/signals/enforcer`),
    podNamespace: env.POD_NAMESPACE || undefined,
    signalFlushMs: int("TENET_SIGNAL_FLUSH_MS", 5000, 100, 3_600_000),
    signalBurstThreshold: int("TENET_SIGNAL_BURST", 50, 1),
    maxHeaderSize: int("TENET_MAX_HEADER_BYTES", 16 * 1024, 1024, 1024 * 1024),
    headersTimeoutMs: int("TENET_HEADERS_TIMEOUT_MS", 10_000, 100),
    requestTimeoutMs: int("TENET_REQUEST_TIMEOUT_MS", 60_000, 100),
    keepAliveTimeoutMs: int("TENET_KEEPALIVE_TIMEOUT_MS", 30_000, 100),
    h2MaxStreams: int("TENET_H2_MAX_STREAMS", 100, 1, 10_000),
    maxConnectionsPerCaller: int("TENET_MAX_CONNECTIONS_PER_CALLER", 1024, 1, 1_000_000),
    maxInboundConnections: int("TENET_MAX_INBOUND_CONNECTIONS", 8192, 1, 1_000_000),
    capture: (env.TENET_CAPTURE ?? "").trim().toLowerCase() === "true",
    captureInboundPort: port("TENET_CAPTURE_INBOUND_PORT", 15006),
    captureOutboundPort: port("TENET_CAPTURE_OUTBOUND_PORT", 15002),
    appProbes: parseProbes(env.TENET_APP_PROBES),
    sniffMs: int("TENET_SNIFF_MS", 100, 1, 10_000),
    origDstAddon: env.TENET_ORIGDST_ADDON || undefined,
  };
}

/**
 * TENET_PEERS: a JSON object whose keys are destinations as the app names them ("orders.shop.svc"
 * or "orders.shop.svc:8080") and whose values are the expected SPIFFE ID, or
 * {"spiffeID": "...", "address": "host:port"} to dial a different address than the URL's host.
 */
export function parsePeers(text: string | undefined): Map<string, PeerTarget> {
  const out = new Map<string, PeerTarget>();
  if (!text || !text.trim()) return out;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`TENET_PEERS is not valid JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError('TENET_PEERS must be a JSON object {"host[:port]": "spiffe://..." | {"spiffeID": "...", "address": "host:port"}}');
  for (const [dest, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = dest.trim().toLowerCase();
    if (!key || /[\s/@]/.test(key)) throw new ConfigError(`TENET_PEERS: ${JSON.stringify(dest)} is not a host or host:port`);
    const entry = typeof v === "string" ? { spiffeID: v } : (v as { spiffeID?: unknown; address?: unknown } | null);
    if (!entry || typeof entry.spiffeID !== "string" || !/^spiffe:\/\/[^/]+\/.+/.test(entry.spiffeID)) {
      throw new ConfigError(`TENET_PEERS[${JSON.stringify(dest)}] needs a SPIFFE ID (spiffe://<trust-domain>/<path>)`);
    }
    let address: PeerTarget["address"];
    if (entry.address !== undefined) {
      const a = typeof entry.address === "string" ? splitHostPort(entry.address) : undefined;
      if (!a || a.port === undefined) throw new ConfigError(`TENET_PEERS[${JSON.stringify(dest)}].address must be "host:port"`);
      address = { host: a.host, port: a.port };
    }
    out.set(key, { spiffeID: entry.spiffeID, address });
  }
  return out;
}

/** "host:port", "[v6]:port" or "host" → parts; undefined when malformed. */
export function splitHostPort(s: string): { host: string; port?: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]+))(?::([0-9]{1,5}))?$/.exec(s);
  if (!m) return undefined;
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: (m[1] ?? m[2]).toLowerCase(), port };
}

/** TENET_APP_PROBES (set by injection): {"<container>/<kind>": {"httpGet": {port, path, scheme}} | {"tcpSocket": {port}}}. */
export function parseProbes(text: string | undefined): Map<string, AppProbe> {
  const out = new Map<string, AppProbe>();
  if (!text || !text.trim()) return out;
  let raw: any;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`TENET_APP_PROBES is not valid JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError("TENET_APP_PROBES must be a JSON object");
  const okPort = (p: unknown) => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;
  for (const [key, v] of Object.entries<any>(raw)) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/(startup|readiness|liveness)$/.test(key)) throw new ConfigError(`TENET_APP_PROBES: ${JSON.stringify(key)} is not "<container>/<startup|readiness|liveness>"`);
    if (v?.httpGet && okPort(v.httpGet.port) && typeof v.httpGet.path === "string" && v.httpGet.path.startsWith("/")) {
      const headers = Array.isArray(v.httpGet.httpHeaders) ? v.httpGet.httpHeaders.filter((h: any) => typeof h?.name === "string" && typeof h?.value === "string") : undefined;
      out.set(key, { httpGet: { port: v.httpGet.port, path: v.httpGet.path, scheme: v.httpGet.scheme === "HTTPS" ? "HTTPS" : "HTTP", ...(headers?.length ? { httpHeaders: headers } : {}) } });
    } else if (v?.tcpSocket && okPort(v.tcpSocket.port)) {
      out.set(key, { tcpSocket: { port: v.tcpSocket.port } });
    } else {
      throw new ConfigError(`TENET_APP_PROBES[${JSON.stringify(key)}] must be {"httpGet": {"port", "path"}} or {"tcpSocket": {"port"}}`);
    }
  }
  return out;
}
