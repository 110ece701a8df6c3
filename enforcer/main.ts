// The enforcer sidecar's entrypoint: wiring only. Reads its configuration, obtains a certificate
// (or, in test/bench static mode, reads one), loads trust and policy, and serves the inbound
// mTLS listener, the outbound proxy and the health/metrics listener. See docs/enforcer.md.
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Server } from "node:net";
import { BoundedLabel } from "../common/bounded.ts";
import { createLogger } from "../common/logger.ts";
import { readCertIdentity } from "../pki/certificate.ts";
import { createAudit, type AuditRecord } from "./audit.ts";
import { SignalReporter } from "./signals.ts";
import { ConfigError, enforcerConfigFromEnv, type EnforcerConfig } from "./config.ts";
import { IdentityManager, type Credentials } from "./identity.ts";
import { createInbound, tlsOptions } from "./inbound.ts";
import { createMetrics, healthServer } from "./metrics.ts";
import { OperatorClient, OperatorTrust } from "./operator-client.ts";
import { createOutbound } from "./outbound.ts";
import { createCaptureInbound, createCaptureOutbound } from "./capture.ts";
import { createConnectHandler } from "./connect.ts";
import { loadOrigDst, type OrigDstFn } from "./origdst.ts";
import { appHealthHandler } from "./probes.ts";
import { PolicySource } from "./policy.ts";
import { TrustStore } from "./trust.ts";
import { LiveConnections } from "./live-connections.ts";

const log = createLogger("tenet-enforcer");

let cfg: EnforcerConfig;
try {
  cfg = enforcerConfigFromEnv();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  log.fatal({ err: err.message }, "invalid configuration");
  process.exit(2);
}

const metrics = createMetrics();
const auditLog = createAudit(cfg.auditFile);
// Every audit record also feeds the signal reporter (denials and anomalies, batched).
let reporter: SignalReporter | undefined;
const audit = { write: (rec: AuditRecord) => (auditLog.write(rec), reporter?.observe(rec)), flush: () => auditLog.flush() };
let trust: TrustStore;
// The operator is verified with the serving CA only; peers with the workload CA only (issue 11 item 2).
const operatorTrust = new OperatorTrust(cfg.operatorBundleFile);
const client = new OperatorClient(() => operatorTrust.bundle, cfg.tokenFile, undefined, cfg.operatorSpiffeID);
const refreshOperatorTrust = () => operatorTrust.refresh().catch((err) => log.warn({ err: (err as Error).message }, "serving CA bundle refresh failed; keeping the last good one"));
const staticFile = (name: string) => (cfg.staticDir ? path.join(cfg.staticDir, name) : undefined);
trust = new TrustStore(
  { bundleFile: cfg.bundleFile, bundleURL: cfg.staticDir ? undefined : cfg.bundleURL, revocationsURL: cfg.staticDir ? undefined : cfg.revocationsURL, revocationsFile: staticFile("revocations.json") },
  cfg.staticDir ? undefined : client,
  log.child({ component: "trust" }),
);
const policy = new PolicySource({ url: cfg.staticDir ? undefined : cfg.policyURL, file: staticFile("policy.json") }, cfg.staticDir ? undefined : client, log.child({ component: "policy" }));
let creds: Credentials | undefined;

// Capture needs the original destination of every redirected connection: no addon, no start.
let origDst: OrigDstFn | undefined;
if (cfg.capture) {
  try {
    origDst = loadOrigDst(cfg.origDstAddon);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, "capture is on but the original-destination addon cannot be loaded");
    process.exit(2);
  }
}
const health = healthServer(
  metrics,
  () => {
    if (!creds) return { ready: false, why: "no certificate yet" };
    if (!policy.ready) return { ready: false, why: "no policy yet" };
    return { ready: true };
  },
  cfg.appProbes.size ? appHealthHandler(cfg.appProbes, cfg.appHost) : undefined,
);
const listen = (s: Server, port: number, host: string) =>
  new Promise<number>((resolve, reject) => {
    s.once("error", reject);
    s.listen(port, host, () => resolve((s.address() as AddressInfo).port));
  });
const healthPort = await listen(health, cfg.healthPort, cfg.healthHost);

// Trust first: it is what verifies the operator.
for (let attempt = 0; ; attempt++) {
  await refreshOperatorTrust();
  await trust.refresh();
  if (trust.bundle && (cfg.staticDir || operatorTrust.bundle)) break;
  if (attempt % 10 === 0) log.warn({ bundleFile: cfg.bundleFile, operatorBundleFile: cfg.operatorBundleFile }, "no trust bundle yet; waiting for the files");
  await new Promise((r) => setTimeout(r, 1000));
}

if (cfg.staticDir) {
  const certPem = await readFile(path.join(cfg.staticDir, "cert.pem"), "utf8");
  const id = readCertIdentity(certPem);
  creds = { keyPem: await readFile(path.join(cfg.staticDir, "key.pem"), "utf8"), certPem, spiffeID: id.spiffeID ?? "", serial: id.serial, notAfter: id.notAfter, renewAfter: id.notAfter, attributes: id.attributes };
  log.warn({ dir: cfg.staticDir, spiffeID: creds.spiffeID }, "static mode (tests and benchmarks only): certificate, trust bundle and policy come from files");
}
// Reasons come from the operator's answers: capped so the label set stays finite.
const certReasons = new BoundedLabel(32);
const identity = cfg.staticDir
  ? undefined
  : new IdentityManager(client, `${cfg.caEndpoint}/v1/certificates`, cfg.podName, log.child({ component: "identity" }), (result, reason) =>
      metrics.certificateRequests.inc({ result, reason: reason === undefined ? "" : certReasons.value(reason) }),
    );
if (identity) creds = await identity.start();
metrics.certificateExpiry.set(creds!.notAfter.getTime() / 1000);
await policy.refresh();

const tlsNow = () => ({ key: creds!.keyPem, cert: creds!.certPem, ca: trust.bundle! });
const live = new LiveConnections(audit, metrics, { perCaller: cfg.maxConnectionsPerCaller, total: cfg.maxInboundConnections });
const inbound = createInbound({ cfg, policy, trust, audit, metrics, log: log.child({ component: "inbound" }), tls: tlsNow(), live });
// Callers revoked (or expired) while connected: their open connections are closed, not only refused at the next request.
const sweepLive = () => {
  const closed = live.sweep((s) => trust.isRevoked(s));
  if (closed) log.info({ closed, open: live.size }, "closed open connections of revoked or expired callers");
};
const self = () => creds && { spiffeID: creds.spiffeID, attributes: creds.attributes };
const captureDeps = { cfg, mesh: () => policy.mesh, trust, audit, metrics, log: log.child({ component: "capture" }), origDst, self };
const captureIn = origDst && createCaptureInbound(captureDeps);
// Also without capture: the explicit proxy's CONNECT tunnels are carried as captured connections.
const captureOut = createCaptureOutbound(captureDeps);
captureOut.setTLS(tlsNow());
const listening = () => [inbound, outbound.server, health, captureIn, captureOut.server].map((s) => (s?.address() as AddressInfo | null)?.port ?? 0);
const connect = createConnectHandler({ cfg, mesh: () => policy.mesh, audit, metrics, log: log.child({ component: "connect" }), capture: captureOut, self, ownPorts: listening });
const outbound = createOutbound({ cfg, trust, audit, metrics, log: log.child({ component: "outbound" }), self, connect: (req, socket, head) => void connect(req, socket, head) });
outbound.setTLS(tlsNow());

// A new certificate or bundle replaces the TLS context; open connections are not dropped.
const retls = (why: string) => {
  inbound.setSecureContext(tlsOptions(tlsNow()));
  outbound.setTLS(tlsNow());
  captureOut.setTLS(tlsNow());
  log.info({ why, spiffeID: creds!.spiffeID, serial: creds!.serial }, "TLS context replaced");
};
identity?.onChange((c) => {
  creds = c;
  metrics.certificateExpiry.set(c.notAfter.getTime() / 1000);
  retls("certificate renewed");
});
trust.onBundleChange(() => retls("trust bundle changed"));
// A pooled upstream connection was verified at its handshake: once a serial is revoked, new
// pools re-verify every destination; inbound checks the caller on every request and stream, and
// closes the revoked callers' open connections (tunnels, sessions, keep-alive, WebSockets).
trust.onRevocationsChange(() => {
  outbound.setTLS(tlsNow());
  captureOut.recheck();
  sweepLive();
  log.info({ revoked: trust.revokedCount }, "revocation list changed: outbound connections re-verify their peers");
  // Our own certificate revoked (quarantine): ask for a new one, which the CA refuses until
  // the pod is released; peers refuse the revoked one meanwhile.
  if (identity && creds && trust.isRevoked(creds.serial)) {
    log.warn({ serial: creds.serial }, "this pod's certificate is revoked; requesting a new one");
    identity.renewNow();
  }
});

if (cfg.signalsURL && !cfg.staticDir) {
  reporter = new SignalReporter({ url: cfg.signalsURL, namespace: cfg.podNamespace, podName: cfg.podName, flushMs: cfg.signalFlushMs, burstThreshold: cfg.signalBurstThreshold, client, log: log.child({ component: "signals" }) });
  reporter.start();
}

const inboundPort = await listen(inbound, cfg.inboundPort, cfg.listenHost);
const outboundPort = await listen(outbound.server, cfg.outboundPort, cfg.outboundHost);
// Inbound capture on every address (PREROUTING REDIRECT keeps the pod IP); outbound on
// 127.0.0.1, where OUTPUT REDIRECT sends the app's connections.
const captureInboundPort = captureIn && (await listen(captureIn, cfg.captureInboundPort, "0.0.0.0"));
const captureOutboundPort = origDst && (await listen(captureOut.server, cfg.captureOutboundPort, "127.0.0.1"));
log.info({ spiffeID: creds!.spiffeID, inboundPort, outboundPort, healthPort, capture: cfg.capture ? { inbound: captureInboundPort, outbound: captureOutboundPort, probes: [...cfg.appProbes.keys()] } : false, app: `${cfg.appHost}:${cfg.appPort}`, peers: [...cfg.peers.keys()], policyVersion: policy.version }, "enforcer listening");

const trustRefresher = setInterval(() => void refreshOperatorTrust().then(() => trust.refresh()).then(() => metrics.revoked.set(trust.revokedCount)).then(sweepLive), cfg.trustRefreshMs);
trustRefresher.unref();
const refresher = setInterval(() => void policy.refresh(), cfg.refreshMs);
refresher.unref();

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down: refusing new connections, finishing open requests");
  clearInterval(refresher);
  clearInterval(trustRefresher);
  identity?.stop();
  reporter?.stop();
  void reporter?.flush();
  inbound.close();
  inbound.closeIdleConnections();
  outbound.close();
  captureIn?.close();
  if (origDst) captureOut.server.close();
  health.close();
  const done = () => {
    audit.flush();
    process.exit(0);
  };
  setTimeout(done, 5000).unref();
  inbound.once("close", done);
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
