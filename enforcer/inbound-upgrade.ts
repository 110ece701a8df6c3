// WebSocket upgrades at the destination (the mTLS inbound port, HTTP/1.1): the upgrade request is
// decided like any request — the caller from its certificate, revocation and expiry, APIPolicy on
// GET + path (normalized), the JWT from Authorization — before anything reaches the app. Allowed:
// sent to the app's port with x-tenet-caller, and the app's 101 relayed (upgrade.ts). One audit
// record per upgrade attempt, written when it ends, with the bytes each way and how long it lasted.
import type http from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Decision } from "../policy/authz-contract.ts";
import { auditPath } from "./audit.ts";
import { CALLER_HEADER, REQUEST_OVERRIDE_HEADERS } from "./headers.ts";
import { appPortOf, forwardPath, peerOf, type InboundCore } from "./inbound.ts";
import { checkUpgrade, relayUpgrade, upgradeHeaders, writeRefusal, type UpgradeOutcome } from "./upgrade.ts";

export type InboundUpgradeDeps = InboundCore;

export async function inboundUpgrade(req: http.IncomingMessage, sock: Duplex, head: Buffer, deps: InboundUpgradeDeps) {
  const { cfg, policy, trust, audit, metrics, log } = deps;
  const started = performance.now();
  const socket = sock as TLSSocket;
  socket.on("error", () => socket.destroy());
  if (!socket.authorized) return void socket.destroy(); // refused at secureConnection already
  const method = req.method ?? "GET";
  const rawPath = req.url ?? "/";
  const appPort = appPortOf(socket, cfg);
  const destination = `${cfg.appHost}:${appPort}`;
  const peer = peerOf(socket);
  const a = peer.caller?.attributes ?? {};
  let d: Decision | undefined;
  const record = (decision: "allow" | "deny", reason: string, status: number, o?: UpgradeOutcome) => {
    audit.write({
      direction: "inbound", destination, caller: peer.caller?.spiffeID, posture: a.posture, tier: a.tier, image: a.image, method, path: d?.path ?? auditPath(rawPath),
      api: d?.api, scope: d?.scope, decision, mode: d?.mode, policy: d?.policy, rule: d?.rule, reason, status, protocol: "websocket",
      latencyMs: o ? o.latencyMs : Math.round((performance.now() - started) * 1000) / 1000, policyVersion: policy.version,
      ...(o && o.status === 101 ? { bytesIn: o.bytesIn, bytesOut: o.bytesOut, durationMs: o.durationMs } : {}),
    });
    metrics.count("inbound", decision, reason);
  };
  const refuse = (status: number, reason: string, message: string) => {
    record("deny", reason, status);
    writeRefusal(socket, status, reason, message);
  };

  const bad = checkUpgrade(req);
  if (bad) return refuse(bad.status, bad.reason, bad.message);
  if (!peer.caller) return refuse(401, "NoIdentity", peer.problem ?? "no caller identity");
  if (trust.isRevoked(peer.serial)) return refuse(403, "CertificateRevoked", "the caller's certificate is revoked");
  if (peer.notAfterMs < Date.now()) return refuse(401, "CertificateExpired", "the caller's certificate has expired");
  const current = policy.current();
  try {
    d = "authorize" in current ? await current.authorize({ method, rawPath, caller: peer.caller, authorization: req.headers.authorization }) : current;
  } catch (err) {
    log.error({ err: (err as Error).message, method, path: auditPath(rawPath) }, "the policy evaluator failed; refusing the upgrade");
    d = { forward: false, decision: "deny", status: 500, mode: "enforce", reason: "EvaluatorError", message: "the policy could not be evaluated" };
  }
  if (socket.destroyed) return record("deny", "ClientGone", 0);
  if (!d.forward) return refuse(d.status, d.reason, d.message);

  deps.live?.update(socket, { protocol: "websocket" });
  const headers = upgradeHeaders(req.rawHeaders, [CALLER_HEADER, peer.caller.spiffeID], REQUEST_OVERRIDE_HEADERS);
  relayUpgrade(socket, head, false, { host: cfg.appHost, port: appPort, method, path: forwardPath(rawPath, d.path), headers: headers as unknown as http.OutgoingHttpHeaders, agent: false }, (o) => {
    if (o.error && socket.destroyed) return record("deny", "ClientGone", 0, o);
    if (o.error) {
      log.warn({ err: o.error.message, app: destination }, "the app did not answer a WebSocket upgrade");
      record("deny", "AppUnavailable", 502, o);
      return writeRefusal(socket, 502, "AppUnavailable", "the application did not answer");
    }
    record(d!.decision, d!.reason, o.status, o);
  });
}
