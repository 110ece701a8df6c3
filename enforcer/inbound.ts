// Inbound: terminates mTLS from peers (client certificate required and verified against the
// trust bundle), identifies the caller from its certificate (SPIFFE ID + attributes, read once
// per connection), refuses revoked or expired peers, asks the policy, and forwards allowed
// requests to the app on localhost over a keep-alive pool, streaming both ways. Every attempt —
// including refused handshakes and malformed requests — leaves one audit record.
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Logger } from "../common/logger.ts";
import { readCertIdentity } from "../pki/certificate.ts";
import type { Caller, Decision } from "../policy/authz-contract.ts";
import { auditPath, type Audit, type AuditRecord } from "./audit.ts";
import type { EnforcerConfig } from "./config.ts";
import { CALLER_HEADER, forwardHeaders, REQUEST_OVERRIDE_HEADERS, spiffeNamespace } from "./headers.ts";
import type { Metrics } from "./metrics.ts";
import type { PolicySource } from "./policy.ts";
import type { TrustStore } from "./trust.ts";
import { ALPN_TCP, portFromServername } from "./capture.ts";
import { handleTCP } from "./inbound-tcp.ts";
import { ALPN_H2, createH2Inbound } from "./inbound-h2.ts";
import { inboundUpgrade } from "./inbound-upgrade.ts";
import type { LiveConnections } from "./live-connections.ts";

export interface Peer {
  caller?: Caller;
  serial: string;
  notAfterMs: number;
  problem?: string;
}

interface Conn {
  appPort: number;
  destination: string;
  peer: Peer;
  who: { caller?: string; posture?: string; tier?: string; image?: string };
  callerHeader?: [string, string];
}

/** What every inbound handler (HTTP/1.1, HTTP/2, upgrades) works with. */
export interface InboundCore {
  cfg: EnforcerConfig;
  policy: PolicySource;
  trust: TrustStore;
  audit: Audit;
  metrics: Metrics;
  log: Logger;
  /** Open connections by caller, closed when the caller is revoked (live-connections.ts). */
  live?: LiveConnections;
}

export interface InboundDeps extends InboundCore {
  tls: { key: string; cert: string; ca: string };
}

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };

export function tlsOptions(t: { key: string; cert: string; ca: string }) {
  return { key: t.key, cert: t.cert, ca: t.ca, minVersion: "TLSv1.2" as const };
}

/** The caller of a connection, from the verified peer certificate; cached on the socket. */
const peers = new WeakMap<object, Peer>();
export function peerOf(socket: TLSSocket): Peer {
  let p = peers.get(socket);
  if (p) return p;
  const cert = socket.getPeerCertificate();
  if (!cert?.raw) {
    p = { serial: "", notAfterMs: 0, problem: "no client certificate" };
  } else {
    try {
      const id = readCertIdentity(cert.raw);
      p = id.spiffeID
        ? { caller: { spiffeID: id.spiffeID, namespace: spiffeNamespace(id.spiffeID), attributes: id.attributes }, serial: id.serial, notAfterMs: id.notAfter.getTime() }
        : { serial: id.serial, notAfterMs: id.notAfter.getTime(), problem: "the client certificate carries no SPIFFE ID" };
    } catch (err) {
      p = { serial: "", notAfterMs: 0, problem: `the client certificate cannot be read: ${(err as Error).message}` };
    }
  }
  peers.set(socket, p);
  return p;
}

/**
 * The app port a connection is for: a captured caller names it in SNI ("8080.port.tenet", see
 * capture.ts); anything else (explicit proxy, TENET_PEERS) gets TENET_APP_PORT. Never one of
 * the enforcer's own ports.
 */
export function appPortOf(socket: TLSSocket, cfg: EnforcerConfig): number {
  const p = portFromServername((socket as TLSSocket & { servername?: string }).servername);
  const own = [cfg.inboundPort, cfg.healthPort, cfg.outboundPort, cfg.captureInboundPort, cfg.captureOutboundPort];
  return p !== undefined && !own.includes(p) ? p : cfg.appPort;
}

export function createInbound(deps: InboundDeps): https.Server {
  const { cfg, policy, trust, audit, metrics, log } = deps;
  const appAgent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: "lifo", noDelay: true } as http.AgentOptions);
  const destinationOf = (socket: TLSSocket) => `${cfg.appHost}:${appPortOf(socket, cfg)}`;

  const server = https.createServer(
    {
      ...tlsOptions(deps.tls),
      // The chain is verified by OpenSSL against the bundle during the handshake either way; with
      // rejectUnauthorized the socket would be destroyed without telling us why, so the refusal
      // happens in our secureConnection listener below (before any byte reaches the HTTP parser),
      // where the audit record can say "expired" or "unknown CA".
      requestCert: true,
      rejectUnauthorized: false,
      // What the caller's enforcer saw the app speak (capture.ts): HTTP/1.1, HTTP/2 (inbound-h2.ts), or opaque TCP.
      ALPNProtocols: ["http/1.1", ALPN_H2, ALPN_TCP],
      noDelay: true,
      maxHeaderSize: cfg.maxHeaderSize,
      headersTimeout: cfg.headersTimeoutMs,
      requestTimeout: cfg.requestTimeoutMs,
      keepAliveTimeout: cfg.keepAliveTimeoutMs,
      // Node checks the two timeouts above on this interval (30 s by default).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(cfg.headersTimeoutMs / 2))),
    },
    (req, res) => void handle(req, res),
  );

  function record(rec: Omit<AuditRecord, "direction" | "destination" | "latencyMs" | "policyVersion">, started: number, destination: string) {
    const latencyMs = performance.now() - started;
    audit.write({ direction: "inbound", destination, latencyMs: Math.round(latencyMs * 1000) / 1000, policyVersion: policy.version, ...rec });
    metrics.count("inbound", rec.decision, rec.reason);
    metrics.inboundLatency.observe(latencyMs / 1000);
  }

  function refuse(res: http.ServerResponse, status: number, reason: string, message: string, close = false) {
    const body = JSON.stringify({ error: { reason, message } });
    res.writeHead(status, close ? { ...JSON_HEADERS, connection: "close", "content-length": Buffer.byteLength(body) } : { ...JSON_HEADERS, "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  // What a request needs from its connection, worked out once per connection (keep-alive
  // connections carry many requests): the app port and destination, the caller and its audit fields.
  const conns = new WeakMap<object, Conn>();
  const connOf = (socket: TLSSocket): Conn => {
    let c = conns.get(socket);
    if (!c) {
      const appPort = appPortOf(socket, cfg);
      const peer = peerOf(socket);
      const a = peer.caller?.attributes;
      c = { appPort, destination: `${cfg.appHost}:${appPort}`, peer, who: peer.caller ? { caller: peer.caller.spiffeID, posture: a!.posture, tier: a!.tier, image: a!.image } : {}, callerHeader: peer.caller && [CALLER_HEADER, peer.caller.spiffeID] };
      conns.set(socket, c);
    }
    return c;
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const started = performance.now();
    const method = req.method ?? "GET";
    const rawPath = req.url ?? "/";
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) return void socket.destroy(); // refused at secureConnection already; never reached
    const { appPort, destination, peer, who, callerHeader } = connOf(socket);

    // Checked per request, not only at the handshake: a keep-alive connection outlives both.
    let early: [number, string, string] | undefined;
    if (!peer.caller) early = [401, "NoIdentity", peer.problem ?? "no caller identity"];
    else if (trust.isRevoked(peer.serial)) early = [403, "CertificateRevoked", "the caller's certificate is revoked"];
    else if (peer.notAfterMs < Date.now()) early = [401, "CertificateExpired", "the caller's certificate has expired"];
    if (early) {
      req.resume();
      res.on("close", () => record({ ...who, method, path: auditPath(rawPath), decision: "deny", reason: early[1], status: early[0] }, started, destination));
      return refuse(res, early[0], early[1], early[2], true);
    }

    let d: Decision;
    const current = policy.current();
    if ("authorize" in current) {
      try {
        const auth = req.headers.authorization;
        d = await current.authorize({ method, rawPath, caller: peer.caller, authorization: auth });
      } catch (err) {
        log.error({ err: (err as Error).message, method, path: auditPath(rawPath) }, "the policy evaluator failed; refusing the request");
        d = { forward: false, decision: "deny", status: 500, mode: "enforce", reason: "EvaluatorError", message: "the policy could not be evaluated" };
      }
    } else {
      d = current;
    }

    let status = 0;
    let appFailed = false;
    let up: http.ClientRequest | undefined;
    res.on("close", () => {
      if (up && !res.writableFinished) up.destroy();
      record(
        { caller: who.caller, posture: who.posture, tier: who.tier, image: who.image, method, path: d.path ?? auditPath(rawPath), api: d.api, scope: d.scope, decision: d.decision, mode: d.mode, policy: d.policy, rule: d.rule, reason: appFailed ? "AppUnavailable" : d.reason, status: status || res.statusCode },
        started,
        destination,
      );
    });
    if (!d.forward) {
      req.resume();
      status = d.status;
      return refuse(res, d.status, d.reason, d.message);
    }

    const headers = forwardHeaders(req.rawHeaders, callerHeader, REQUEST_OVERRIDE_HEADERS);
    up = http.request({ host: cfg.appHost, port: appPort, method, path: forwardPath(rawPath, d.path), headers: headers as unknown as http.OutgoingHttpHeaders, agent: appAgent });
    up.on("response", (ures) => {
      status = ures.statusCode ?? 502;
      res.writeHead(status, ures.statusMessage, forwardHeaders(ures.rawHeaders) as unknown as http.OutgoingHttpHeaders);
      ures.pipe(res);
      ures.on("error", () => res.destroy());
    });
    up.on("error", (err) => {
      if (res.headersSent) return void res.destroy();
      appFailed = true;
      status = 502;
      log.warn({ err: err.message, app: destination }, "the app did not answer");
      refuse(res, 502, "AppUnavailable", "the application did not answer");
    });
    // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3):
    // end the upstream request at once instead of piping an empty stream.
    if (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined) {
      req.resume();
      up.end();
    } else {
      req.pipe(up);
    }
  }

  const refusedTLS = (reason: string, detail: string | undefined, remote: string | undefined) => {
    metrics.tlsFailures.inc({ reason });
    metrics.count("inbound", "deny", reason);
    audit.write({ direction: "inbound", destination: `${cfg.appHost}:${cfg.appPort}`, decision: "deny", reason, status: 0, latencyMs: 0, detail, source: remote });
    log.debug({ reason, detail, remote }, "TLS connection refused");
  };
  // The HTTP server's own listener is taken out and called here, after verification, for
  // HTTP/1.1 only (h2 goes to inbound-h2.ts): an unverified peer is cut off before its first byte is parsed, and opaque TCP
  // (ALPN tenet-tcp) never reaches the HTTP parser. Verification errors: no certificate, unknown
  // CA, expired, not yet valid.
  const { live } = deps;
  const h2 = createH2Inbound({ cfg, policy, trust, audit, metrics, log, peerOf, appPortOf: (s) => appPortOf(s, cfg), live });
  server.on("close", () => h2.close());
  const httpListener = server.listeners("secureConnection")[0] as (s: TLSSocket) => void;
  server.removeListener("secureConnection", httpListener);
  server.on("secureConnection", (socket: TLSSocket) => {
    if (!socket.authorized) {
      const code = String(socket.authorizationError ?? "UNKNOWN");
      const sent = !!socket.getPeerCertificate()?.raw;
      refusedTLS(sent ? handshakeReason({ code, message: code }) : "NoClientCertificate", sent ? code : "NO_CLIENT_CERTIFICATE", socket.remoteAddress);
      return void socket.destroy();
    }
    const peer = peerOf(socket);
    const over = live?.overLimit(peer.serial);
    if (over) {
      audit.write({ direction: "inbound", destination: destinationOf(socket), caller: peer.caller?.spiffeID, decision: "deny", reason: "TooManyConnections", status: 0, latencyMs: 0, detail: over });
      metrics.count("inbound", "deny", "TooManyConnections");
      return void socket.destroy();
    }
    live?.add(socket, { serial: peer.serial, notAfterMs: peer.notAfterMs, caller: peer.caller?.spiffeID, destination: destinationOf(socket), protocol: socket.alpnProtocol === ALPN_TCP ? "tcp" : socket.alpnProtocol || "http/1.1", close: () => socket.destroy() });
    if (socket.alpnProtocol === ALPN_H2) return h2.accept(socket);
    if (socket.alpnProtocol === ALPN_TCP) return handleTCP(socket, { cfg, policy, trust, audit, metrics, log, port: appPortOf(socket, cfg), peer: peerOf(socket) });
    httpListener.call(server, socket);
  });
  // WebSocket (and refused h2c) upgrades: decided like a request before anything reaches the app.
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void inboundUpgrade(req, socket, head, { cfg, policy, trust, audit, metrics, log, live }));
  // Handshakes that fail earlier (a client that sends no certificate at all under TLS 1.3 ends
  // here, as do clients that abort the handshake).
  server.on("tlsClientError", (err: Error & { code?: string }, socket: TLSSocket) => {
    refusedTLS(handshakeReason(err), err.code ?? err.message.slice(0, 120), socket.remoteAddress);
  });

  // Malformed requests, oversized headers and slow clients: answer, audit, close. Node can report
  // one attempt twice (an oversized header that arrives in several reads): one record per socket.
  const answered = new WeakSet<Duplex>();
  server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
    const tlsSocket = socket as TLSSocket;
    // TLS-level failures were audited by tlsClientError; a reset between requests is no attempt.
    if (!tlsSocket.authorized || err.code === "ECONNRESET" || err.code === "EPIPE" || answered.has(socket)) return void socket.destroy();
    answered.add(socket);
    const [status, reason, text] = clientErrorStatus(err);
    const peer = peerOf(tlsSocket);
    audit.write({ direction: "inbound", destination: destinationOf(tlsSocket), caller: peer?.caller?.spiffeID, decision: "deny", reason, status, latencyMs: 0, detail: err.code });
    metrics.count("inbound", "deny", reason);
    if (socket.writable && status) {
      const body = JSON.stringify({ error: { reason, message: text } });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    } else {
      socket.destroy();
    }
  });

  return server;
}

/**
 * The target the app receives: the path the decision was made on (normalized by the evaluator),
 * re-encoded, plus the original query — so the app never sees a path other than the one that was
 * authorized ("/a/../admin" reaches it as "/admin"). The raw target when it is already that.
 */
export function forwardPath(rawPath: string, decided: string | undefined): string {
  if (decided === undefined) return rawPath;
  const q = rawPath.indexOf("?");
  const raw = q >= 0 ? rawPath.slice(0, q) : rawPath;
  if (raw === decided) return rawPath;
  const encoded = decided === "/" ? "/" : decided.split("/").map((s) => encodeURIComponent(s)).join("/");
  return q >= 0 ? encoded + rawPath.slice(q) : encoded;
}

export function handshakeReason(err: { code?: string; message: string }): string {
  const s = `${err.code ?? ""} ${err.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|did not return a certificate/i.test(s)) return "NoClientCertificate";
  if (/EXPIRED/i.test(s)) return "ClientCertificateExpired";
  if (/NOT_YET_VALID/i.test(s)) return "ClientCertificateNotYetValid";
  if (/ECONNRESET|EPIPE/.test(s)) return "HandshakeAborted";
  if (/UNKNOWN_CA|UNABLE_TO_GET_ISSUER|unable to get local issuer|VERIFY_LEAF_SIGNATURE|CERTIFICATE_VERIFY_FAILED|certificate verify failed|SELF_SIGNED/i.test(s)) return "ClientCertificateUntrusted";
  return "TLSHandshakeFailed";
}

export function clientErrorStatus(err: { code?: string }): [number, string, string] {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return [431, "HeadersTooLarge", "the request headers are too large"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [408, "RequestTimeout", "the request was not received in time"];
    default:
      return [400, "MalformedRequest", "the request is not valid HTTP/1.1"];
  }
}
