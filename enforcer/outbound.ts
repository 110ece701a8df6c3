// Outbound: a plain-HTTP forward proxy for the app on localhost (absolute-form requests,
// "GET http://orders.shop.svc:8080/path"). Each destination must be listed in TENET_PEERS with
// the SPIFFE ID its enforcer must present; the enforcer dials that enforcer over mTLS with its
// own certificate, checks the peer's chain (trust bundle), SPIFFE ID and revocation, and streams
// the exchange. Connections are pooled per destination, and the pools are rebuilt when our
// certificate or the bundle changes (old pools drain and close).
import http from "node:http";
import https from "node:https";
import tls, { type PeerCertificate, type TLSSocket } from "node:tls";
import type { Logger } from "../common/logger.ts";
import { auditPath, type Audit } from "./audit.ts";
import type { EnforcerConfig, PeerTarget } from "./config.ts";
import { forwardHeaders, parseProxyTarget, spiffeFromAltNames } from "./headers.ts";
import { clip } from "../common/bounded.ts";
import type { Metrics } from "./metrics.ts";
import type { TrustStore } from "./trust.ts";
import { checkUpgrade, relayUpgrade, upgradeHeaders, writeRefusal } from "./upgrade.ts";
import type { Duplex } from "node:stream";
import { clientErrorStatus } from "./inbound.ts";

/** Why an upstream TLS connection was refused, carried on the error to pick the 502 reason. */
class PeerRefused extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface OutboundDeps {
  cfg: EnforcerConfig;
  trust: TrustStore;
  audit: Audit;
  metrics: Metrics;
  log: Logger;
  self: () => { spiffeID: string; attributes: Record<string, string> } | undefined;
  /** CONNECT tunnels (connect.ts): carried like a captured connection to that destination. */
  connect?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface Outbound {
  server: http.Server;
  /** New key/cert/bundle: later requests use fresh pools; the old ones close when idle. */
  setTLS(t: { key: string; cert: string; ca: string }): void;
  close(): void;
}

export function createOutbound(deps: OutboundDeps): Outbound {
  const { cfg, trust, audit, metrics, log } = deps;
  let context: tls.SecureContext | undefined;
  let agents = new Map<string, https.Agent>();
  const retired: https.Agent[] = [];

  function agentFor(key: string, peer: PeerTarget): https.Agent {
    let a = agents.get(key);
    if (a) return a;
    a = new https.Agent({
      keepAlive: true,
      maxSockets: 256,
      maxFreeSockets: 64,
      scheduling: "lifo",
      noDelay: true,
      secureContext: context,
      rejectUnauthorized: true,
      // Tenet certificates name workloads by SPIFFE ID, not by host name.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const id = spiffeFromAltNames(cert.subjectaltname);
        if (id !== peer.spiffeID) return new PeerRefused("PeerIdentityMismatch", `the destination presented ${id ?? "no SPIFFE ID"}, expected ${peer.spiffeID}`);
        if (trust.isRevoked(cert.serialNumber)) return new PeerRefused("PeerCertificateRevoked", `the destination's certificate (serial ${cert.serialNumber.toLowerCase()}) is revoked`);
        return undefined;
      },
    } as https.AgentOptions);
    agents.set(key, a);
    return a;
  }

  function lookup(host: string, port: number): { key: string; peer: PeerTarget } | undefined {
    const hp = `${host}:${port}`;
    const p = cfg.peers.get(hp);
    if (p) return { key: hp, peer: p };
    const h = cfg.peers.get(host);
    return h ? { key: host, peer: h } : undefined;
  }

  const server = http.createServer(
    { noDelay: true, maxHeaderSize: cfg.maxHeaderSize, headersTimeout: cfg.headersTimeoutMs, requestTimeout: cfg.requestTimeoutMs, keepAliveTimeout: cfg.keepAliveTimeoutMs },
    (req, res) => {
      const started = performance.now();
      const method = req.method ?? "GET";
      const target = parseProxyTarget(req.url ?? "");
      const me = deps.self();
      // The host comes from the app's request: cut it for the audit record and log lines.
      const destination = target ? clip(`${target.host}:${target.port}`, 256)! : "";
      let reason = "Forwarded";
      let decision: "allow" | "deny" = "allow";
      let status = 0;
      res.on("close", () => {
        const latencyMs = performance.now() - started;
        audit.write({
          direction: "outbound",
          caller: me?.spiffeID,
          posture: me?.attributes.posture,
          tier: me?.attributes.tier,
          image: me?.attributes.image,
          destination,
          method,
          path: target ? auditPath(target.path) : undefined,
          decision,
          reason,
          status: status || res.statusCode,
          latencyMs: Math.round(latencyMs * 1000) / 1000,
        });
        metrics.count("outbound", decision, reason);
        metrics.outboundLatency.observe(latencyMs / 1000);
      });
      const refuse = (code: number, why: string, message: string) => {
        req.resume();
        decision = "deny";
        reason = why;
        status = code;
        const body = JSON.stringify({ error: { reason: why, message } });
        res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
      };

      if (method === "CONNECT") return refuse(405, "TunnelNotSupported", "CONNECT tunnels are not enabled on this enforcer; send absolute-form http:// requests to the proxy");
      if (!target) return refuse(400, "NotAProxyRequest", 'send absolute-form requests: "GET http://host:port/path"');
      const found = lookup(target.host, target.port);
      if (!found) return refuse(502, "UnknownDestination", `no expected identity is configured for ${destination} (TENET_PEERS)`);
      if (!context) return refuse(503, "NoCertificate", "the enforcer has no certificate yet");
      const address = found.peer.address ?? { host: target.host, port: cfg.peerPort };

      const up = https.request({
        host: address.host,
        port: address.port,
        method,
        path: target.path,
        headers: forwardHeaders(req.rawHeaders) as unknown as http.OutgoingHttpHeaders,
        agent: agentFor(found.key, found.peer),
        servername: tlsServername(address.host),
      });
      up.on("socket", (s) => {
        // A pooled connection was verified at its handshake; the list may have changed since.
        const serial = (s as TLSSocket).getPeerCertificate?.()?.serialNumber;
        if (serial && trust.isRevoked(serial)) up.destroy(new PeerRefused("PeerCertificateRevoked", "the destination's certificate is revoked"));
      });
      up.on("response", (ures) => {
        status = ures.statusCode ?? 502;
        res.writeHead(status, ures.statusMessage, forwardHeaders(ures.rawHeaders) as unknown as http.OutgoingHttpHeaders);
        ures.pipe(res);
        ures.on("error", () => res.destroy());
      });
      up.on("error", (err: Error & { code?: string }) => {
        if (res.headersSent) return void res.destroy();
        const why = err instanceof PeerRefused ? err.reason : /CERT|certificate|SSL|TLS|self.signed|issuer/i.test(`${err.code} ${err.message}`) ? "PeerUntrusted" : "DestinationUnavailable";
        log.warn({ destination, reason: why, err: err.message }, "outbound request refused");
        refuse(502, why, err instanceof PeerRefused ? err.message : why === "PeerUntrusted" ? `the destination's certificate is not trusted: ${err.message}` : `the destination did not answer: ${err.message}`);
      });
      res.on("close", () => {
        if (!res.writableFinished) up.destroy();
      });
      req.pipe(up);
    },
  );

  // WebSocket through the proxy ("GET http://host/ws" + Upgrade): to the destination's enforcer
  // like any request (which authorizes it), the 101 relayed, then bytes both ways (upgrade.ts).
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const started = performance.now();
    socket.on("error", () => socket.destroy());
    const target = parseProxyTarget(req.url ?? "");
    const me = deps.self();
    const destination = target ? clip(`${target.host}:${target.port}`, 256)! : "";
    const record = (decision: "allow" | "deny", reason: string, status: number, o?: { latencyMs: number; bytesIn: number; bytesOut: number; durationMs: number }) => {
      audit.write({
        direction: "outbound", caller: me?.spiffeID, posture: me?.attributes.posture, tier: me?.attributes.tier, image: me?.attributes.image, destination, method: req.method,
        path: target ? auditPath(target.path) : undefined, decision, reason, status, protocol: "websocket", latencyMs: o?.latencyMs ?? Math.round((performance.now() - started) * 1000) / 1000,
        ...(o && status === 101 ? { bytesIn: o.bytesIn, bytesOut: o.bytesOut, durationMs: o.durationMs } : {}),
      });
      metrics.count("outbound", decision, reason);
    };
    const refuse = (status: number, reason: string, message: string) => (record("deny", reason, status), writeRefusal(socket, status, reason, message));
    const bad = checkUpgrade(req);
    if (bad) return refuse(bad.status, bad.reason, bad.message);
    if (!target) return refuse(400, "NotAProxyRequest", 'send absolute-form requests: "GET http://host:port/path"');
    const found = lookup(target.host, target.port);
    if (!found) return refuse(502, "UnknownDestination", `no expected identity is configured for ${destination} (TENET_PEERS)`);
    if (!context) return refuse(503, "NoCertificate", "the enforcer has no certificate yet");
    const address = found.peer.address ?? { host: target.host, port: cfg.peerPort };
    const options = { host: address.host, port: address.port, method: "GET", path: target.path, headers: upgradeHeaders(req.rawHeaders) as unknown as http.OutgoingHttpHeaders, agent: agentFor(found.key, found.peer), servername: tlsServername(address.host) };
    relayUpgrade(socket, head, true, options, (o) => {
      if (!o.error) return record("allow", "Forwarded", o.status, o);
      const err = o.error as Error & { code?: string };
      const why = err instanceof PeerRefused ? err.reason : /CERT|certificate|SSL|TLS|self.signed|issuer/i.test(`${err.code} ${err.message}`) ? "PeerUntrusted" : "DestinationUnavailable";
      log.warn({ destination, reason: why, err: err.message }, "outbound WebSocket upgrade refused");
      refuse(502, why, err.message);
    });
  });
  if (deps.connect) server.on("connect", deps.connect);
  // Malformed, oversized or slow requests to the proxy (CONNECT and upgrades included): answered
  // and audited as on the inbound port, one record per connection.
  const answered = new WeakSet<Duplex>();
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === "ECONNRESET" || err.code === "EPIPE" || answered.has(socket)) return void socket.destroy();
    answered.add(socket);
    const [status, reason, text] = clientErrorStatus(err);
    audit.write({ direction: "outbound", caller: deps.self()?.spiffeID, destination: "", decision: "deny", reason, status, latencyMs: 0, detail: err.code });
    metrics.count("outbound", "deny", reason);
    writeRefusal(socket, status, reason, text);
  });

  return {
    server,
    setTLS(t) {
      context = tls.createSecureContext({ key: t.key, cert: t.cert, ca: t.ca, minVersion: "TLSv1.2" });
      for (const a of agents.values()) retired.push(a);
      agents = new Map();
      // In-flight requests on the old pools finish; their idle sockets are closed now and later.
      for (const a of retired.splice(0)) {
        for (const list of Object.values(a.freeSockets)) for (const s of list ?? []) s.destroy();
        a.on("free", (s) => s.destroy());
      }
    },
    close() {
      for (const a of agents.values()) a.destroy();
      server.close();
    },
  };
}

/** SNI must be a host name; for an IP address send none. */
function tlsServername(host: string): string | undefined {
  return /^[0-9.]+$/.test(host) || host.includes(":") ? "" : host;
}
