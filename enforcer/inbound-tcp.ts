// Opaque TCP over mTLS (ALPN tenet-tcp): a database or cache protocol the enforcer does not parse.
// The caller is identified by its certificate like any other; authorization is identity-only:
// the connection is asked of the APIPolicy as `CONNECT /tcp/<port>` (an API with paths
// ["/tcp/5432"] and methods {CONNECT: connect}; docs/capture.md), then the bytes are piped to
// the app's port on 127.0.0.1. One audit record per connection.
import net from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "../common/logger.ts";
import type { Decision } from "../policy/authz-contract.ts";
import type { Audit } from "./audit.ts";
import type { EnforcerConfig } from "./config.ts";
import type { Peer } from "./inbound.ts";
import type { Metrics } from "./metrics.ts";
import type { PolicySource } from "./policy.ts";
import type { TrustStore } from "./trust.ts";

export async function handleTCP(socket: TLSSocket, d: { cfg: EnforcerConfig; policy: PolicySource; trust: TrustStore; audit: Audit; metrics: Metrics; log: Logger; port: number; peer: Peer }) {
  const started = performance.now();
  socket.pause();
  socket.on("error", () => socket.destroy());
  const { peer } = d;
  const path = `/tcp/${d.port}`;
  let dec: Decision;
  if (!peer.caller) dec = { forward: false, decision: "deny", status: 401, mode: "enforce", reason: "NoIdentity", message: peer.problem ?? "no caller identity" };
  else if (d.trust.isRevoked(peer.serial)) dec = { forward: false, decision: "deny", status: 403, mode: "enforce", reason: "CertificateRevoked", message: "the caller's certificate is revoked" };
  else if (peer.notAfterMs < Date.now()) dec = { forward: false, decision: "deny", status: 401, mode: "enforce", reason: "CertificateExpired", message: "the caller's certificate has expired" };
  else {
    const current = d.policy.current();
    try {
      dec = "authorize" in current ? await current.authorize({ method: "CONNECT", rawPath: path, caller: peer.caller }) : current;
    } catch {
      dec = { forward: false, decision: "deny", status: 500, mode: "enforce", reason: "EvaluatorError", message: "the policy could not be evaluated" };
    }
  }
  const a = peer.caller?.attributes ?? {};
  d.audit.write({
    direction: "inbound", destination: `${d.cfg.appHost}:${d.port}`, caller: peer.caller?.spiffeID, posture: a.posture, tier: a.tier, image: a.image,
    method: "CONNECT", path, api: dec.api, decision: dec.decision, mode: dec.mode, policy: dec.policy, rule: dec.rule, reason: dec.reason,
    status: dec.forward ? 0 : dec.status, protocol: "tcp", latencyMs: Math.round((performance.now() - started) * 1000) / 1000, policyVersion: d.policy.version,
  });
  d.metrics.count("inbound", dec.decision, dec.reason);
  if (!dec.forward) return void socket.destroy();
  const up = net.connect({ host: d.cfg.appHost, port: d.port, noDelay: true });
  const end = () => {
    socket.destroy();
    up.destroy();
  };
  up.on("error", (err) => {
    d.log.warn({ err: err.message, port: d.port }, "the app did not answer an opaque TCP connection");
    end();
  });
  socket.on("close", end);
  up.on("close", end);
  up.once("connect", () => {
    socket.pipe(up);
    up.pipe(socket);
    socket.resume();
  });
}
