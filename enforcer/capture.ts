// Transparent capture (docs/capture.md): the two listeners the pod's iptables rules redirect to.
//
// Inbound (TENET_CAPTURE_INBOUND_PORT, 15006) receives what reached an app port without going
// through a peer's enforcer: meshed callers dial the inbound mTLS port (15443) directly, so
// anything here is plaintext. Strict (the default): refused and audited; permissive (the
// workload's ServiceIdentity spec.inbound.mode): passed to the app's port and audited as plaintext.
//
// Outbound (TENET_CAPTURE_OUTBOUND_PORT, 15002) receives every TCP connection the app opens. The
// original destination (SO_ORIGINAL_DST) and, for HTTP, the Host decide: a meshed destination
// (the operator's mesh document, or TENET_PEERS) is dialled over mTLS on its enforcer's port,
// its SPIFFE ID checked, and the bytes carried as they are (the destination's enforcer parses
// and authorizes them); anything else passes through or is refused, per the workload's egress.
import net from "node:net";
import tls, { type PeerCertificate } from "node:tls";
import type { Logger } from "../common/logger.ts";
import { clip } from "../common/bounded.ts";
import type { MeshDocument } from "../policy/authz-contract.ts";
import type { Audit, AuditRecord } from "./audit.ts";
import type { EnforcerConfig, PeerTarget } from "./config.ts";
import { spiffeFromAltNames } from "./headers.ts";
import type { Metrics } from "./metrics.ts";
import type { OrigDstFn } from "./origdst.ts";
import type { TrustStore } from "./trust.ts";

/** ALPN the caller's enforcer offers: what the app's first bytes were (the destination dispatches on it). */
export const ALPN_TCP = "tenet-tcp";

/** The app port a meshed caller wants, carried in SNI (the destination's mTLS port is shared by every app port). */
export const portServername = (port: number) => `${port}.port.tenet`;
export function portFromServername(name: string | false | undefined | null): number | undefined {
  const m = typeof name === "string" ? /^([0-9]{1,5})\.port\.tenet$/.exec(name) : null;
  const n = m ? Number(m[1]) : NaN;
  return n >= 1 && n <= 65535 ? n : undefined;
}

export type Protocol = "http/1.1" | "h2" | typeof ALPN_TCP;

/** What the first bytes an app sent say about its protocol. */
export function sniff(first: Buffer): { protocol: Protocol; method?: string; path?: string; host?: string } {
  if (first.length >= 16 && first.subarray(0, 16).toString("latin1") === "PRI * HTTP/2.0\r\n") return { protocol: "h2" };
  const head = first.subarray(0, 4096).toString("latin1");
  const m = /^([A-Z]{3,10}) (\S{1,2048}) HTTP\/1\.[01]\r\n/.exec(head);
  if (!m) return { protocol: ALPN_TCP };
  const h = /\r\nhost:[ \t]*([^\r\n]{1,256})/i.exec(head);
  return { protocol: "http/1.1", method: m[1], path: m[2].split("?")[0], host: h?.[1].trim().toLowerCase() };
}

const looksHTTP = (b: Buffer) => /^[A-Z]{3,10} \S+ HTTP\/1\.[01]\r\n/.test(b.subarray(0, 512).toString("latin1"));

function httpError(status: number, reason: string, message: string): string {
  const body = JSON.stringify({ error: { reason, message } });
  const text = status === 403 ? "Forbidden" : status === 502 ? "Bad Gateway" : "Error";
  return `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

export interface CaptureDeps {
  cfg: EnforcerConfig;
  mesh: () => MeshDocument | undefined;
  trust: TrustStore;
  audit: Audit;
  metrics: Metrics;
  log: Logger;
  /** The kernel's answer for a redirected connection; undefined when capture is off (CONNECT tunnels only). */
  origDst?: OrigDstFn;
  self: () => { spiffeID: string; attributes: Record<string, string> } | undefined;
}

/** Ports that are the enforcer's own: a connection "originally" to one of them was not captured. */
function ownPorts(cfg: EnforcerConfig) {
  return new Set([cfg.inboundPort, cfg.healthPort, cfg.outboundPort, cfg.captureInboundPort, cfg.captureOutboundPort]);
}

export function createCaptureInbound(deps: CaptureDeps): net.Server {
  const { cfg, audit, metrics, log } = deps;
  const own = ownPorts(cfg);
  return net.createServer({ noDelay: true }, (sock) => {
    const started = performance.now();
    sock.on("error", () => sock.destroy());
    const dst = deps.origDst?.(sock);
    const source = sock.remoteAddress;
    const mode = deps.mesh()?.inbound ?? "strict";
    const record = (rec: Partial<AuditRecord> & Pick<AuditRecord, "decision" | "reason">) => {
      audit.write({ direction: "inbound", destination: dst ? `${cfg.appHost}:${dst.port}` : "", source, protocol: "plaintext", status: 0, latencyMs: Math.round((performance.now() - started) * 1000) / 1000, ...rec });
      metrics.count("inbound", rec.decision, rec.reason);
    };
    if (!dst || own.has(dst.port)) {
      record({ decision: "deny", reason: "NotCaptured", detail: dst ? `port ${dst.port}` : "no original destination" });
      return void sock.destroy();
    }
    if (mode === "strict") {
      // Read what the caller sent only to answer an HTTP caller in its own terms.
      const timer = setTimeout(() => sock.destroy(), 2000);
      sock.once("data", (first) => {
        clearTimeout(timer);
        const http = looksHTTP(first);
        record({ decision: "deny", reason: "PlaintextRefused", status: http ? 403 : 0, ...(http ? sniffed(first) : {}) });
        if (http) sock.end(httpError(403, "PlaintextRefused", "this workload accepts only mutual-TLS callers through the Tenet mesh (strict mode)"));
        else sock.destroy();
      });
      sock.once("end", () => {
        clearTimeout(timer);
        if (!sock.destroyed) record({ decision: "deny", reason: "PlaintextRefused" });
        sock.destroy();
      });
      return;
    }
    // Permissive (migration): the plaintext caller reaches the app's port, and the audit says so.
    const up = net.connect({ host: cfg.appHost, port: dst.port, noDelay: true });
    record({ decision: "allow", reason: "PlaintextPermitted", mode: "audit" });
    pipeBoth(sock, up, () => log.debug({ port: dst.port }, "plaintext connection ended"));
  });
}

function sniffed(first: Buffer): Partial<AuditRecord> {
  const s = sniff(first);
  return { method: s.method, path: s.path === undefined ? undefined : clip(s.path, 512) };
}

function pipeBoth(a: net.Socket, b: net.Socket, done?: () => void) {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    a.destroy();
    b.destroy();
    done?.();
  };
  a.on("error", end).on("close", end);
  b.on("error", end).on("close", end);
  a.pipe(b);
  b.pipe(a);
}

interface Route {
  kind: "mesh";
  host: string;
  port: number;
  /** The app port at the destination (SNI), when dialling a pod's enforcer for a port of its. */
  appPort?: number;
  spiffeID: string;
  via: "mesh" | "peers";
}

/** Where a captured connection goes: a meshed destination's enforcer, or (undefined) outside the mesh. */
export function route(dst: { address: string; port: number }, host: string | undefined, mesh: MeshDocument | undefined, peers: Map<string, PeerTarget>, peerPort: number, pick = Math.random): Route | undefined {
  const meshed = meshRoute(dst, mesh, peerPort, pick);
  const keys = [`${dst.address}:${dst.port}`, dst.address];
  if (host) {
    const bare = host.replace(/:[0-9]+$/, "");
    keys.unshift(host.includes(":") ? host : `${host}:${dst.port}`, bare);
  }
  for (const [i, k] of keys.entries()) {
    const p = peers.get(k);
    if (!p) continue;
    // TENET_PEERS overrides the identity (and the address, when it names one).
    if (p.address) return { kind: "mesh", host: p.address.host, port: p.address.port, spiffeID: p.spiffeID, via: "peers" };
    if (meshed) return { ...meshed, spiffeID: p.spiffeID, via: "peers" };
    // Not (yet) in the mesh document. Matched by a Service name, dst.port is the Service's port,
    // not the app's: leave the app port to the destination's default, as the explicit proxy does.
    const byName = host !== undefined && i < keys.length - 2 && net.isIP(host.replace(/:[0-9]+$/, "").replace(/^\[|\]$/g, "")) === 0;
    return { kind: "mesh", host: dst.address, port: peerPort, ...(byName ? {} : { appPort: dst.port }), spiffeID: p.spiffeID, via: "peers" };
  }
  return meshed;
}

function meshRoute(dst: { address: string; port: number }, mesh: MeshDocument | undefined, peerPort: number, pick: () => number): Route | undefined {
  if (!mesh) return undefined;
  const eps = mesh.services[`${dst.address}:${dst.port}`];
  if (eps?.length) {
    const [ip, port, idx] = eps[Math.floor(pick() * eps.length) % eps.length];
    const id = mesh.ids[idx];
    if (id) return { kind: "mesh", host: ip, port: peerPort, appPort: port, spiffeID: id, via: "mesh" };
  }
  const idx = mesh.pods[dst.address];
  if (idx !== undefined && mesh.ids[idx]) return { kind: "mesh", host: dst.address, port: peerPort, appPort: dst.port, spiffeID: mesh.ids[idx], via: "mesh" };
  return undefined;
}

export interface CaptureOutbound {
  server: net.Server;
  setTLS(t: { key: string; cert: string; ca: string }): void;
  /** Close tunnels whose destination's certificate is now revoked. */
  recheck(): void;
  /**
   * Carry one connection to `dst` as if it had been captured: an explicit proxy's CONNECT tunnel
   * (connect.ts). `host` (the CONNECT authority's name) picks the route instead of a sniffed Host.
   */
  carry(app: net.Socket, dst: { address: string; port: number }, opts: { host?: string; first?: Buffer; via: string; sniffMs?: number }): void;
}

export function createCaptureOutbound(deps: CaptureDeps): CaptureOutbound {
  const { cfg, trust, audit, metrics, log } = deps;
  const own = ownPorts(cfg);
  let context: tls.SecureContext | undefined;
  const tunnels = new Map<tls.TLSSocket, string>();

  const server = net.createServer({ noDelay: true }, (app) => {
    app.on("error", () => app.destroy());
    const dst = deps.origDst?.(app);
    if (!dst || (own.has(dst.port) && (dst.address === app.localAddress || dst.address.startsWith("127.")))) {
      const me = deps.self();
      audit.write({ direction: "outbound", caller: me?.spiffeID, latencyMs: 0, destination: dst ? `${dst.address}:${dst.port}` : "", decision: "deny", reason: "NotCaptured", status: 0, detail: "a direct connection to the capture port" });
      metrics.count("outbound", "deny", "NotCaptured");
      return void app.destroy();
    }
    carry(app, dst, { via: "capture" });
  });

  function carry(app: net.Socket, dst: { address: string; port: number }, opts: { host?: string; first?: Buffer; via: string; sniffMs?: number }) {
    const started = performance.now();
    const me = deps.self();
    const base = () => ({ direction: "outbound" as const, caller: me?.spiffeID, posture: me?.attributes.posture, tier: me?.attributes.tier, image: me?.attributes.image, latencyMs: Math.round((performance.now() - started) * 1000) / 1000 });
    const destination = clip(opts.host ? `${opts.host}:${dst.port}` : `${dst.address}:${dst.port}`, 256)!;
    let first: Buffer | undefined = opts.first?.length ? opts.first : undefined;
    const go = () => {
      app.pause();
      app.removeListener("data", onData);
      clearTimeout(timer);
      handle(first ?? Buffer.alloc(0));
    };
    const onData = (chunk: Buffer) => {
      first = first ? Buffer.concat([first, chunk]) : chunk;
      // One read is usually the whole request head; wait a little for the rest of a line.
      if (first.length >= 16 || first.includes(0x0a)) go();
    };
    // Server-first protocols (MySQL, SMTP) send nothing: after sniffMs they are opaque TCP.
    const timer = setTimeout(go, opts.sniffMs ?? cfg.sniffMs);
    app.on("data", onData);
    app.once("end", () => clearTimeout(timer));
    if (first && (first.length >= 16 || first.includes(0x0a))) go();

    function handle(bytes: Buffer) {
      const s = sniff(bytes);
      // A CONNECT tunnel is to its authority: a Host header inside it does not pick the route.
      const host = opts.host ?? (s.host ? clip(s.host, 256) : undefined);
      const mesh = deps.mesh();
      const r = route(dst, host, mesh, cfg.peers, cfg.peerPort);
      const detail = opts.via === "connect" ? `CONNECT ${destination}` : host ? `host ${host}` : undefined;
      const rec = { destination, method: s.method, path: s.path === undefined ? undefined : clip(s.path, 512), protocol: s.protocol, ...(detail ? { detail } : {}) };
      const refuse = (reason: string, message: string, status = 502) => {
        audit.write({ ...base(), ...rec, decision: "deny", reason, status: s.protocol === "http/1.1" ? status : 0 });
        metrics.count("outbound", "deny", reason);
        if (s.protocol === "http/1.1" && app.writable) app.end(httpError(status, reason, message));
        else app.destroy();
      };
      if (!r) {
        if ((mesh?.egress ?? "allow") === "deny") return refuse("EgressDenied", `${destination} is not in the mesh and this workload's egress is deny`, 403);
        const up = net.connect({ host: dst.address, port: dst.port, noDelay: true });
        up.once("connect", () => {
          audit.write({ ...base(), ...rec, decision: "allow", reason: "PassThrough", status: 0 });
          metrics.count("outbound", "allow", "PassThrough");
          if (bytes.length) up.write(bytes);
          pipeBoth(app, up);
          app.resume();
        });
        up.once("error", (err) => refuse("DestinationUnavailable", `${destination} did not answer: ${err.message}`));
        return;
      }
      const up = tls.connect({
        host: r.host,
        port: r.port,
        secureContext: context,
        servername: r.appPort ? portServername(r.appPort) : undefined,
        ALPNProtocols: [s.protocol],
        noDelay: true,
        rejectUnauthorized: true,
        checkServerIdentity: (_h: string, cert: PeerCertificate) => {
          const id = spiffeFromAltNames(cert.subjectaltname);
          if (id !== r.spiffeID) return Object.assign(new Error(`the destination presented ${id ?? "no SPIFFE ID"}, expected ${r.spiffeID}`), { reason: "PeerIdentityMismatch" });
          if (trust.isRevoked(cert.serialNumber)) return Object.assign(new Error(`the destination's certificate (serial ${cert.serialNumber.toLowerCase()}) is revoked`), { reason: "PeerCertificateRevoked" });
          return undefined;
        },
      } as tls.ConnectionOptions);
      up.once("secureConnect", () => {
        up.removeAllListeners("error");
        const serial = up.getPeerCertificate()?.serialNumber ?? "";
        tunnels.set(up, serial);
        up.once("close", () => tunnels.delete(up));
        audit.write({ ...base(), ...rec, decision: "allow", reason: r.via === "peers" ? "MeshedByPeers" : "Meshed", peer: r.spiffeID, status: 0 });
        metrics.count("outbound", "allow", "Meshed");
        if (bytes.length) up.write(bytes);
        pipeBoth(app, up as unknown as net.Socket);
        app.resume();
      });
      up.once("error", (err: Error & { reason?: string; code?: string }) => {
        const reason = err.reason ?? (/CERT|certificate|SSL|TLS|self.signed|issuer/i.test(`${err.code} ${err.message}`) ? "PeerUntrusted" : "DestinationUnavailable");
        log.warn({ destination, via: `${r.host}:${r.port}`, reason, err: err.message }, "captured outbound connection refused");
        refuse(reason, reason === "DestinationUnavailable" ? `the destination's enforcer did not answer: ${err.message}` : err.message);
      });
    }
  }

  return {
    server,
    setTLS(t) {
      context = tls.createSecureContext({ key: t.key, cert: t.cert, ca: t.ca, minVersion: "TLSv1.2" });
    },
    recheck() {
      for (const [s, serial] of tunnels) if (serial && trust.isRevoked(serial)) s.destroy();
    },
    carry,
  };
}
