// Issuance end to end: certificates per second through POST /v1/certificates of the real
// operator process, with real pod-bound projected tokens (TokenRequest, audience "tenet") that
// the operator checks with real TokenReviews against the real API server, the serial recorded
// on the pod (a pod write) before the certificate is returned. Requests are made by the
// enforcer's own client (enforcer/operator-client.ts), one client per pod, each reading its pod's
// token file, as the enforcers of a fleet do.
//   cold: every pod's first contact (a new operator, new tokens, no TLS session to resume)
//   warm: the same pods again, the re-certification of a running fleet (e.g. after a CA
//         rotation): their tokens already reviewed by their policy polls, their clients holding
//         the TLS session of their last request
// Baseline, same run: TokenReviews of the same tokens sent straight to the API server at the same
// concurrency, the least a CA that checks tokens must wait for. ratio = cold rate / that rate.
// CPU per certificate is read from /proc for the operator, the API server, etcd and this load
// generator, so a run on a loaded machine still shows where the time goes.
//   BENCH_PODS (default 1000; 10000 measures the fleet for real), BENCH_CONCURRENCY (default 16)
// Runs its own control plane under .tenet/bench-issuance (TENET_TEST_STATE_DIR to override).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "..");
const stateDir = (process.env.TENET_TEST_STATE_DIR ??= path.join(repo, ".tenet/bench-issuance"));
const { cluster, newNamespace, operatorKubeconfig, stopCluster } = await import("../test/harness/controlplane.ts");
const { OperatorProcess, killAllOperators } = await import("../test/harness/operator.ts");
const { waitFor } = await import("../test/harness/exec.ts");
const { makeCSR } = await import("../test/harness/pki.ts");
const { resourcePath, Resources } = await import("../common/kube.ts");
const { OPERATOR_BUNDLE_KEY } = await import("../common/names.ts");
const { OperatorClient } = await import("../enforcer/operator-client.ts");
const { parallel: create } = await import("./_parallel.ts");

const N = Number(process.env.BENCH_PODS ?? 1000);
const C = Number(process.env.BENCH_CONCURRENCY ?? 16);
const FLEET = 10_000;
const log = (msg: string) => process.stderr.write(`[issuance] ${new Date().toISOString().slice(11, 19)} ${msg}\n`);

async function parallel(total: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < total) await fn(next++);
  }));
  return performance.now() - t0;
}

/** Processes of this run's control plane (their command lines name its state directory). */
function controlPlanePids(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (!cmd.some((a) => a.includes(stateDir))) continue;
      const exe = path.basename(cmd[0]);
      if (exe === "etcd" || exe === "kube-apiserver") out[exe] = Number(d);
    } catch {
      // gone
    }
  }
  return out;
}
const TICK_MS = 10; // USER_HZ = 100
function cpuMs(pid: number): number {
  if (pid === process.pid) { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
}
function loadavg() {
  return os.loadavg().map((l) => Math.round(l * 10) / 10).join(" ");
}

try {
  const { kube, kubectl } = await cluster();
  /** apiserver_request_total by verb, resource (and subresource) and code. */
  const apiRequests = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    for (const line of (await kubectl(["get", "--raw", "/metrics"])).stdout.split("\n")) {
      if (!line.startsWith("apiserver_request_total{")) continue;
      const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      const key = `${labels.verb} ${labels.resource}${labels.subresource ? "/" + labels.subresource : ""} ${labels.code}`;
      out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
    }
    return out;
  };
  const ns = await newNamespace("bench-issuance", ["svc"]);
  const spiffe = `spiffe://cluster.local/ns/${ns}/sa/svc`;
  await kube.create(resourcePath({ group: "tenet.dev", version: "v1alpha1", plural: "serviceidentities" }, ns), { apiVersion: "tenet.dev/v1alpha1", kind: "ServiceIdentity", metadata: { name: "svc", namespace: ns }, spec: { selector: { matchLabels: { app: "svc" } }, certificate: { ttl: "1h", renewBefore: "20m" } } });
  const op = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `op-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LOG_LEVEL: "info" } });
  await op.waitForHTTPS();
  // Enforcers trust the serving CA (operator-ca.crt) for the operator, never the workload CA.
  const trust: string = await waitFor("the serving CA bundle", async () => (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data?.[OPERATOR_BUNDLE_KEY]);

  log(`creating ${N} pods and a pod-bound token file for each (concurrency ${C}; load average ${loadavg()})`);
  const tokenDir = path.join(stateDir, "tokens");
  rmSync(tokenDir, { recursive: true, force: true });
  mkdirSync(tokenDir, { recursive: true });
  const tokens: string[] = new Array(N);
  await create(C, N, "pods + tokens", log, async (i) => {
    const p = await kube.create(resourcePath(Resources.pods, ns), { apiVersion: "v1", kind: "Pod", metadata: { name: `svc-${i}`, labels: { app: "svc" } }, spec: { serviceAccountName: "svc", containers: [{ name: "app", image: "ghcr.io/acme/svc:1.0" }] } }).catch(async (err) => {
      if (err.status !== 409) throw err;
      return kube.get(resourcePath(Resources.pods, ns, `svc-${i}`));
    });
    const tr = await kube.create(resourcePath(Resources.serviceAccounts, ns, "svc", "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["tenet"], expirationSeconds: 3600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: `svc-${i}`, uid: p.metadata.uid } } });
    tokens[i] = tr.status.token;
    writeFileSync(path.join(tokenDir, `svc-${i}`), tokens[i]);
  });
  // The enforcer makes one key per certificate; 32 distinct CSRs, cycled, keep key generation out of the measurement.
  const csrs = await Promise.all(Array.from({ length: 32 }, () => makeCSR({ uris: [spiffe] }).then((c) => c.pem)));
  const url = `https://127.0.0.1:${op.securePort}/v1/certificates`;
  const clients = Array.from({ length: N }, (_, i) => new OperatorClient(() => trust, path.join(tokenDir, `svc-${i}`)));
  const certify = async (i: number) => {
    const res = await clients[i].post(url, { csr: csrs[i % csrs.length] });
    if (res.status !== 200) throw new Error(`pod svc-${i}: ${res.status} ${res.body.slice(0, 300)}`);
  };

  const pids = { operator: op.pid, ...controlPlanePids(), loadGenerator: process.pid } as Record<string, number>;
  type Phase = { ms: number; cpuMsPerCert: Record<string, number>; apiCallsPerCert: Record<string, number>; load: string };
  const measure = async (what: string, fn: (i: number) => Promise<unknown>): Promise<Phase> => {
    const calls0 = await apiRequests();
    const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
    const ms = await parallel(N, fn);
    const cpuMsPerCert = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, Math.round(((cpuMs(pid) - before[k]) / N) * 100) / 100]));
    // API requests per certificate (the metrics scrape itself excluded; watches counted when they end).
    const apiCallsPerCert: Record<string, number> = {};
    for (const [k, v] of await apiRequests()) {
      const d = v - (calls0.get(k) ?? 0) - (k.startsWith("GET  ") ? 1 : 0);
      if (d / N >= 0.005) apiCallsPerCert[k] = Math.round((d / N) * 100) / 100;
    }
    const phase = { ms, cpuMsPerCert, apiCallsPerCert, load: loadavg() };
    log(`${what}: ${Math.round(N / (ms / 1000))}/s; CPU ms per request ${JSON.stringify(cpuMsPerCert)}; API calls per request ${JSON.stringify(apiCallsPerCert)}; load average ${phase.load}`);
    return phase;
  };
  // The baseline first: it reviews the same tokens (the operator's cache is its own, so the cold phase is still cold).
  const review = await measure("TokenReviews", async (i) => {
    const r = await kube.create("/apis/authentication.k8s.io/v1/tokenreviews", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: tokens[i], audiences: ["tenet"] } });
    if (!r.status?.authenticated) throw new Error(`TokenReview of svc-${i} failed: ${JSON.stringify(r.status)}`);
  });
  const cold = await measure("cold issuance", certify);
  const warm = await measure("warm issuance", certify);
  const issued = await op.metricSum("tenet_ca_certificates_issued_total");
  if (issued !== 2 * N) throw new Error(`the operator counted ${issued} certificates, expected ${2 * N}`);
  await op.kill("SIGTERM");

  const perSec = (ms: number) => Math.round(N / (ms / 1000));
  const fleetSeconds = (ms: number) => Math.round(((ms / N) * FLEET) / 100) / 10;
  const details = {
    sample: N,
    concurrency: C,
    tokenReviewsPerSec: perSec(review.ms),
    coldPerSec: perSec(cold.ms),
    warmPerSec: perSec(warm.ms),
    issuedMetric: issued,
    [N >= FLEET ? "measured10kColdSeconds" : "extrapolated10kColdSeconds"]: fleetSeconds(cold.ms),
    [N >= FLEET ? "measured10kWarmSeconds" : "extrapolated10kWarmSeconds"]: fleetSeconds(warm.ms),
    cpuMsPerCert: { review: review.cpuMsPerCert, cold: cold.cpuMsPerCert, warm: warm.cpuMsPerCert },
    apiCallsPerCert: { cold: cold.apiCallsPerCert, warm: warm.apiCallsPerCert },
    loadAverage: { start: review.load, end: warm.load },
    cpus: os.cpus().length,
    node: process.version,
  };
  const how = N >= FLEET ? `measured, ${N} pods` : `extrapolated from ${N}`;
  console.log(`${N} pods, concurrency ${C}: TokenReviews ${details.tokenReviewsPerSec}/s; issuance cold ${details.coldPerSec}/s, warm ${details.warmPerSec}/s`);
  console.log(`re-certifying ${FLEET} pods with one replica (${how}): cold ${fleetSeconds(cold.ms)} s, warm ${fleetSeconds(warm.ms)} s`);
  console.log(JSON.stringify({ bench: "issuance", ratio: Math.round((review.ms / cold.ms) * 1000) / 1000, goal: `re-certify ${FLEET} pods with one replica in ≤ 60 s; ratio = cold issuance rate / TokenReview rate`, details }));
} finally {
  await killAllOperators();
  await stopCluster();
  // The token files are credentials of a cluster that is gone: leave none behind.
  rmSync(path.join(stateDir, "tokens"), { recursive: true, force: true });
}
