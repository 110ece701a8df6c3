// Issuance end to end: certificates per second through POST /v1/certificates of the real
// operator process, with real pod-bound projected tokens (TokenRequest, audience "tenet") that
// the operator checks with real TokenReviews against the real API server, the serial recorded
// on the pod (a pod write, through the validating webhook) before the certificate is returned.
//   cold: every pod's first request (its TokenReview not cached: a new operator, new tokens)
//   warm: the same pods again (re-certification within the tokens' lifetime: reviews cached)
// Baseline, same run: TokenReviews of the same tokens sent straight to the API server at the same
// concurrency, the least a CA that checks tokens must wait for. ratio = cold rate / that rate.
// A sample of BENCH_PODS (default 1,000) distinct pods and tokens; the time to re-certify 10,000
// pods with one replica is extrapolated from the sample's rates (goal ≤ 60 s).
//   BENCH_PODS (default 1000), BENCH_CONCURRENCY (default 16)
// Runs its own control plane under .tenet/bench-issuance (TENET_TEST_STATE_DIR to override).
import os from "node:os";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "..");
process.env.TENET_TEST_STATE_DIR ??= path.join(repo, ".tenet/bench-issuance");
const { cluster, newNamespace, operatorKubeconfig, stopCluster } = await import("../test/harness/controlplane.ts");
const { OperatorProcess, killAllOperators } = await import("../test/harness/operator.ts");
const { waitFor } = await import("../test/harness/exec.ts");
const { httpsRequest, makeCSR } = await import("../test/harness/pki.ts");
const { resourcePath, Resources } = await import("../common/kube.ts");

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

try {
  const { kube } = await cluster();
  const ns = await newNamespace("bench-issuance", ["svc"]);
  const spiffe = `spiffe://cluster.local/ns/${ns}/sa/svc`;
  await kube.create(resourcePath({ group: "tenet.dev", version: "v1alpha1", plural: "serviceidentities" }, ns), { apiVersion: "tenet.dev/v1alpha1", kind: "ServiceIdentity", metadata: { name: "svc", namespace: ns }, spec: { selector: { matchLabels: { app: "svc" } }, certificate: { ttl: "1h", renewBefore: "20m" } } });
  const op = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `op-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LOG_LEVEL: "info" } });
  await op.waitForHTTPS();
  const trust: string = await waitFor("the trust bundle", async () => (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data?.["ca.crt"]);

  log(`creating ${N} pods and a pod-bound token for each (concurrency ${C})`);
  const tokens: string[] = new Array(N);
  await parallel(N, async (i) => {
    const p = await kube.create(resourcePath(Resources.pods, ns), { apiVersion: "v1", kind: "Pod", metadata: { name: `svc-${i}`, labels: { app: "svc" } }, spec: { serviceAccountName: "svc", containers: [{ name: "app", image: "ghcr.io/acme/svc:1.0" }] } });
    const tr = await kube.create(resourcePath(Resources.serviceAccounts, ns, "svc", "token"), { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["tenet"], expirationSeconds: 3600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: `svc-${i}`, uid: p.metadata.uid } } });
    tokens[i] = tr.status.token;
  });
  // The enforcer makes one key per certificate; 32 distinct CSRs, cycled, keep key generation out of the measurement.
  const csrs = await Promise.all(Array.from({ length: 32 }, () => makeCSR({ uris: [spiffe] }).then((c) => JSON.stringify({ csr: c.pem }))));

  const certify = async (i: number) => {
    const res = await httpsRequest(`https://127.0.0.1:${op.securePort}/v1/certificates`, { method: "POST", ca: trust, headers: { "content-type": "application/json", authorization: `Bearer ${tokens[i]}` }, body: csrs[i % csrs.length] });
    if (res.status !== 200) throw new Error(`pod svc-${i}: ${res.status} ${res.body.slice(0, 300)}`);
  };
  // The baseline first: it reviews the same tokens (the operator's cache is its own, so the cold phase is still cold).
  const reviewMs = await parallel(N, async (i) => {
    const r = await kube.create("/apis/authentication.k8s.io/v1/tokenreviews", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: tokens[i], audiences: ["tenet"] } });
    if (!r.status?.authenticated) throw new Error(`TokenReview of svc-${i} failed: ${JSON.stringify(r.status)}`);
  });
  log(`TokenReviews: ${Math.round(N / (reviewMs / 1000))}/s`);
  const coldMs = await parallel(N, certify);
  log(`cold issuance: ${Math.round(N / (coldMs / 1000))}/s`);
  const warmMs = await parallel(N, certify);
  log(`warm issuance: ${Math.round(N / (warmMs / 1000))}/s`);
  const issued = await op.metricSum("tenet_ca_certificates_issued_total");
  await op.kill("SIGTERM");

  const perSec = (ms: number) => Math.round(N / (ms / 1000));
  const fleetSeconds = (ms: number) => Math.round(((ms / N) * FLEET) / 100) / 10;
  const details = {
    sample: N,
    concurrency: C,
    tokenReviewsPerSec: perSec(reviewMs),
    coldPerSec: perSec(coldMs),
    warmPerSec: perSec(warmMs),
    issuedMetric: issued,
    extrapolated10kColdSeconds: fleetSeconds(coldMs),
    extrapolated10kWarmSeconds: fleetSeconds(warmMs),
    cpus: os.cpus().length,
    node: process.version,
  };
  console.log(`${N} pods, concurrency ${C}: TokenReviews ${details.tokenReviewsPerSec}/s; issuance cold ${details.coldPerSec}/s, warm (reviews cached) ${details.warmPerSec}/s`);
  console.log(`re-certifying ${FLEET} pods with one replica (extrapolated from ${N}): cold ${details.extrapolated10kColdSeconds} s, warm ${details.extrapolated10kWarmSeconds} s`);
  console.log(JSON.stringify({ bench: "issuance", ratio: Math.round((reviewMs / coldMs) * 1000) / 1000, goal: `re-certify ${FLEET} pods with one replica in ≤ 60 s (extrapolated); ratio = cold issuance rate / TokenReview rate`, details }));
} finally {
  await killAllOperators();
  await stopCluster();
}
