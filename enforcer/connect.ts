// CONNECT on the explicit proxy (port 15001): what HTTP(S)_PROXY-honouring clients send for
// anything that is not plain http:// — gRPC clients (then h2c inside), WebSocket libraries, database
// drivers. The enforcer does not pass such a tunnel blindly: it becomes a captured connection to the
// CONNECT authority (capture.ts carry): a meshed destination is dialled over mTLS with its expected
// identity checked, and what the app speaks inside is sniffed and carried as HTTP/1.1, HTTP/2 or
// opaque TCP, so the destination's enforcer applies APIPolicy per request, per stream, or as
// `CONNECT /tcp/<port>`. A destination outside the mesh follows the workload's egress setting.
// Refused before the 200: a malformed authority, and targets that would turn the proxy against the
// pod itself: the enforcer's own ports on any local address, and loopback or unspecified addresses
// that are not a meshed destination (a relay into the pod's loopback serves nothing but abuse).
import dns from "node:dns/promises";
import type http from "node:http";
import net from "node:net";
import os from "node:os";
import type { Duplex } from "node:stream";
import { clip } from "../common/bounded.ts";
import type { Logger } from "../common/logger.ts";
import type { MeshDocument } from "../policy/authz-contract.ts";
import type { Audit } from "./audit.ts";
import { route, type CaptureOutbound } from "./capture.ts";
import type { EnforcerConfig } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import { writeRefusal } from "./upgrade.ts";

/** "host:port" or "[v6]:port" with a port; undefined for anything else (userinfo, paths, no port). */
export function parseAuthority(s: string): { host: string; port: number } | undefined {
  if (s.length > 261) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]{2,45})\]|((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)):([0-9]{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  const host = (m[1] ?? m[2]).toLowerCase().replace(/\.$/, "");
  if (port < 1 || port > 65535 || (m[1] !== undefined && net.isIPv6(host) === false)) return undefined;
  return { host, port };
}

/** Loopback or unspecified: the pod itself. IPv4-mapped IPv6 included. */
export function isSelfAddress(ip: string): boolean {
  const v4 = ip.startsWith("::ffff:") ? ip.slice(7) : ip;
  if (net.isIPv4(v4)) return v4.startsWith("127.") || v4 === "0.0.0.0";
  return ip === "::1" || ip === "::";
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

export interface ConnectDeps {
  cfg: EnforcerConfig;
  mesh: () => MeshDocument | undefined;
  audit: Audit;
  metrics: Metrics;
  log: Logger;
  capture: CaptureOutbound;
  self: () => { spiffeID: string; attributes: Record<string, string> } | undefined;
  /** The ports this enforcer listens on (the configured ones may be 0: chosen at listen time). */
  ownPorts: () => Iterable<number>;
  /** Name resolution (the pod's resolver); replaceable for tests of the logic. */
  lookup?: (host: string) => Promise<string>;
}

export function createConnectHandler(deps: ConnectDeps) {
  const { cfg, audit, metrics, log } = deps;
  const lookup = deps.lookup ?? (async (h: string) => (await dns.lookup(h)).address);
  return async (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const started = performance.now();
    socket.on("error", () => socket.destroy());
    const me = deps.self();
    const authority = parseAuthority(req.url ?? "");
    const refuse = (status: number, reason: string, message: string) => {
      audit.write({
        direction: "outbound", caller: me?.spiffeID, posture: me?.attributes.posture, tier: me?.attributes.tier, image: me?.attributes.image,
        destination: authority ? clip(`${authority.host}:${authority.port}`, 256)! : "", method: "CONNECT", decision: "deny", reason, status,
        detail: authority ? undefined : `authority ${JSON.stringify(clip(req.url ?? "", 64))}`, latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      });
      metrics.count("outbound", "deny", reason);
      writeRefusal(socket, status, reason, message);
    };
    if (!authority) return refuse(400, "MalformedAuthority", 'CONNECT needs "host:port" (or "[ipv6]:port") as its target');
    if (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") return refuse(400, "MalformedRequest", "a CONNECT request carries no body");
    const { host, port } = authority;
    const literal = net.isIP(host) !== 0;
    let address = literal ? host : "";
    if (!literal) {
      try {
        address = await lookup(host);
      } catch {
        // An override in TENET_PEERS may still name it; otherwise it is refused below.
      }
    }
    if (socket.destroyed) return;
    const local = localAddresses();
    const own = new Set([cfg.inboundPort, cfg.healthPort, cfg.outboundPort, cfg.captureInboundPort, cfg.captureOutboundPort, ...deps.ownPorts()]);
    if (own.has(port) && (isSelfAddress(address) || local.has(address) || host === "localhost")) return refuse(403, "ForbiddenTarget", `${host}:${port} is one of this enforcer's own ports`);
    const r = route({ address, port }, literal ? undefined : host, deps.mesh(), cfg.peers, cfg.peerPort);
    if (r && !r.host) return refuse(502, "DestinationUnavailable", `${host} does not resolve`);
    if (!r) {
      if (!address) return refuse(502, "DestinationUnavailable", `${host} does not resolve and is not a meshed destination`);
      if (isSelfAddress(address)) return refuse(403, "ForbiddenTarget", `${host}:${port} is this pod's loopback: connect to it directly, not through the enforcer`);
      if ((deps.mesh()?.egress ?? "allow") === "deny") return refuse(403, "EgressDenied", `${host}:${port} is not in the mesh and this workload's egress is deny`);
    }
    log.debug({ destination: `${clip(host, 256)}:${port}`, meshed: !!r }, "CONNECT tunnel opened");
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    // The client speaks first only once our 200 has reached it: a little more time before "opaque TCP".
    deps.capture.carry(socket as net.Socket, { address, port }, { host: literal ? undefined : host, first: head, via: "connect", sniffMs: Math.max(cfg.sniffMs, 1000) });
  };
}
