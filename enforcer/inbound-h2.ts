// HTTP/2 over mTLS (ALPN h2): what a caller's enforcer carries when the captured app spoke h2c,
// gRPC included. The TLS socket was verified by inbound.ts; here each stream is one request,
// checked like an HTTP/1.1 one (caller from the certificate, revocation and expiry per stream,
// APIPolicy on :method and :path, the JWT from `authorization`, hostile headers dropped), audited
// once, and forwarded to the app over h2c on a pooled session per app port. A refused gRPC call
// is answered the gRPC way (HTTP 200, trailers-only, grpc-status 7/16/...), anything else with
// the JSON error HTTP/1.1 callers get.
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import type { Decision } from "../policy/authz-contract.ts";
import { auditPath, type AuditRecord } from "./audit.ts";
import { CALLER_HEADER, REQUEST_OVERRIDE_HEADERS } from "./headers.ts";
import { forwardPath, type InboundCore, type Peer } from "./inbound.ts";

export const ALPN_H2 = "h2";

// Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2) and Tenet's own caller header;
// `te` passes only as "trailers" (gRPC servers need it).
const DROP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "proxy-authorization", "proxy-authenticate", "host", CALLER_HEADER]);

/** Request headers for the app: no pseudo-headers, hop-by-hop, override or caller headers; ours added. */
export function h2ForwardHeaders(h: IncomingHttpHeaders, caller: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(":") || DROP.has(k) || REQUEST_OVERRIDE_HEADERS.has(k)) continue;
    if (k === "te" && String(v).trim().toLowerCase() !== "trailers") continue;
    out[k] = v;
  }
  out[CALLER_HEADER] = caller;
  return out;
}

/** Response headers or trailers from the app, pseudo-headers and connection headers removed. */
export function h2ResponseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !k.startsWith(":") && !DROP.has(k)) out[k] = v;
  return out;
}

/** RFC 9113 §6.5.2: name + value + 32 bytes per field. Advertised in SETTINGS, checked here too (nghttp2 does not). */
export function headerListSize(h: IncomingHttpHeaders): number {
  let n = 0;
  for (const [k, v] of Object.entries(h)) for (const x of Array.isArray(v) ? v : [v]) n += k.length + String(x ?? "").length + 32;
  return n;
}

export const isGRPC = (h: IncomingHttpHeaders) => /^application\/grpc([+;]|$)/i.test(String(h["content-type"] ?? ""));

/** The gRPC status for a refusal Tenet would answer with this HTTP status (codes from grpc/status.proto). */
export function grpcStatusFor(status: number): number {
  switch (status) {
    case 400:
      return 3; // INVALID_ARGUMENT: an unusable path
    case 401:
      return 16; // UNAUTHENTICATED: no or bad JWT, no identity, expired certificate
    case 403:
      return 7; // PERMISSION_DENIED
    case 408:
      return 4; // DEADLINE_EXCEEDED
    case 429:
    case 431:
      return 8; // RESOURCE_EXHAUSTED
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return status >= 500 ? 13 : 2; // INTERNAL, UNKNOWN
  }
}

/** grpc-message is percent-encoded: everything outside printable ASCII, and '%' itself. */
export function grpcMessage(text: string): string {
  return Array.from(Buffer.from(text, "utf8"))
    .map((b) => (b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`))
    .join("");
}

export interface H2Deps extends InboundCore {
  peerOf: (s: TLSSocket) => Peer;
  appPortOf: (s: TLSSocket) => number;
}

export function createH2Inbound(deps: H2Deps) {
  const { cfg, policy, trust, audit, metrics, log } = deps;
  const server = http2.createServer({
    maxSessionMemory: 10,
    // Bounded per connection: streams in flight, header list bytes and pairs (oversized → refused).
    settings: { maxConcurrentStreams: cfg.h2MaxStreams, maxHeaderListSize: cfg.maxHeaderSize, enablePush: false },
    maxHeaderListPairs: 128,
    maxSettings: 32,
  });
  const sockets = new WeakMap<object, TLSSocket>();
  let accepting: TLSSocket | undefined;
  server.on("session", (session) => {
    if (accepting) {
      sockets.set(session, accepting);
      // A revoked caller's session ends at once: GOAWAY INADEQUATE_SECURITY, open streams reset.
      deps.live?.update(accepting, { protocol: "h2", close: () => session.destroy(new Error("the caller's certificate is no longer valid"), http2.constants.NGHTTP2_INADEQUATE_SECURITY) });
    }
    // Idle sessions end with a GOAWAY, as idle HTTP/1.1 keep-alive connections are closed.
    session.setTimeout(cfg.keepAliveTimeoutMs, () => session.close());
    session.on("error", () => session.destroy());
  });
  server.on("stream", (stream, headers) => void handle(stream, headers));

  // One h2c session per app port, reopened when the app closes it.
  const pool = new Map<number, ClientHttp2Session>();
  function appSession(port: number): ClientHttp2Session {
    const have = pool.get(port);
    if (have && !have.closed && !have.destroyed) return have;
    const s = http2.connect(`http://${cfg.appHost}:${port}`, { maxSessionMemory: 10 });
    const drop = () => pool.get(port) === s && pool.delete(port);
    s.on("error", (err) => {
      log.warn({ err: err.message, port }, "the app's HTTP/2 session failed");
      drop();
    });
    s.on("close", drop).on("goaway", drop);
    s.setTimeout(cfg.keepAliveTimeoutMs, () => s.close());
    s.unref();
    pool.set(port, s);
    return s;
  }

  async function handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
    const started = performance.now();
    const socket = sockets.get(stream.session!)!;
    const peer = deps.peerOf(socket);
    const appPort = deps.appPortOf(socket);
    const method = String(headers[":method"] ?? "");
    const rawPath = String(headers[":path"] ?? "");
    const grpc = isGRPC(headers);
    const a = peer.caller?.attributes ?? {};
    const who = { caller: peer.caller?.spiffeID, posture: a.posture, tier: a.tier, image: a.image };
    let status = 0;
    let grpcStatus: number | undefined;
    let d: Decision | undefined;
    let reason = "";
    stream.on("error", () => stream.destroy());
    stream.setTimeout(cfg.requestTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.once("close", () => {
      const rec: AuditRecord = {
        direction: "inbound", destination: `${cfg.appHost}:${appPort}`, ...who, method, path: d?.path ?? auditPath(rawPath), api: d?.api, scope: d?.scope,
        decision: d?.decision ?? "deny", mode: d?.mode, policy: d?.policy, rule: d?.rule, reason: reason || d?.reason || "StreamReset", status, protocol: grpc ? "grpc" : "h2",
        grpcStatus, latencyMs: Math.round((performance.now() - started) * 1000) / 1000, policyVersion: policy.version,
      };
      audit.write(rec);
      metrics.count("inbound", rec.decision, rec.reason);
      metrics.inboundLatency.observe((performance.now() - started) / 1000);
    });
    const refuse = (st: number, why: string, message: string) => {
      reason = why;
      status = st;
      stream.resume();
      if (stream.destroyed || stream.headersSent) return void stream.destroy();
      if (grpc) {
        grpcStatus = grpcStatusFor(st);
        status = 200;
        return void stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": String(grpcStatus), "grpc-message": grpcMessage(`${why}: ${message}`) }, { endStream: true });
      }
      const body = JSON.stringify({ error: { reason: why, message } });
      stream.respond({ ":status": st, "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
      stream.end(body);
    };

    if (headerListSize(headers) > cfg.maxHeaderSize) return refuse(431, "HeadersTooLarge", "the request headers are too large");
    if (method === "CONNECT" || !rawPath.startsWith("/")) return refuse(400, "MalformedRequest", "the request needs a method and an origin-form :path (CONNECT is not carried)");
    // Per stream, not per connection: a session outlives a revocation.
    if (!peer.caller) return refuse(401, "NoIdentity", peer.problem ?? "no caller identity");
    if (trust.isRevoked(peer.serial)) {
      refuse(403, "CertificateRevoked", "the caller's certificate is revoked");
      return void stream.session?.close();
    }
    if (peer.notAfterMs < Date.now()) return refuse(401, "CertificateExpired", "the caller's certificate has expired");

    const current = policy.current();
    try {
      d = "authorize" in current ? await current.authorize({ method, rawPath, caller: peer.caller, authorization: headers.authorization as string | undefined }) : current;
    } catch (err) {
      log.error({ err: (err as Error).message, method, path: auditPath(rawPath) }, "the policy evaluator failed; refusing the stream");
      d = { forward: false, decision: "deny", status: 500, mode: "enforce", reason: "EvaluatorError", message: "the policy could not be evaluated" };
    }
    if (stream.destroyed) return;
    if (!d.forward) return refuse(d.status, d.reason, d.message);

    let up: http2.ClientHttp2Stream;
    try {
      const out = h2ForwardHeaders(headers, peer.caller.spiffeID);
      up = appSession(appPort).request({ ...out, ":method": method, ":path": forwardPath(rawPath, d.path), ":scheme": "http", ":authority": String(headers[":authority"] ?? `${cfg.appHost}:${appPort}`) });
    } catch (err) {
      log.warn({ err: (err as Error).message, port: appPort }, "the app did not answer over HTTP/2");
      return refuse(502, "AppUnavailable", "the application did not answer");
    }
    let trailers: OutgoingHttpHeaders | undefined;
    up.on("response", (h, flags) => {
      status = Number(h[":status"] ?? 502);
      if (h["grpc-status"] !== undefined) grpcStatus = Number(h["grpc-status"]);
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (stream.destroyed) return void up.close(http2.constants.NGHTTP2_CANCEL);
      stream.respond({ ...h2ResponseHeaders(h), ":status": status }, endStream ? { endStream: true } : { waitForTrailers: true });
      if (!endStream) up.pipe(stream);
    });
    up.on("trailers", (t) => {
      if (t["grpc-status"] !== undefined) grpcStatus = Number(t["grpc-status"]);
      trailers = h2ResponseHeaders(t);
    });
    stream.on("wantTrailers", () => (trailers && Object.keys(trailers).length ? stream.sendTrailers(trailers) : stream.close()));
    up.on("error", (err) => {
      if (stream.headersSent) return void stream.destroy();
      log.warn({ err: err.message, port: appPort }, "the app did not answer over HTTP/2");
      refuse(502, "AppUnavailable", "the application did not answer");
    });
    stream.on("close", () => {
      if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.pipe(up);
  }

  return {
    /** Serve one verified TLS socket (ALPN h2). */
    accept(socket: TLSSocket) {
      accepting = socket;
      try {
        server.emit("connection", socket);
      } finally {
        accepting = undefined;
      }
    },
    close() {
      for (const s of pool.values()) s.close();
      pool.clear();
    },
  };
}
