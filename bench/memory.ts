// Operator memory at scale: RSS of the real operator process with empty caches (idle) and with
// N pods and N VulnerabilityReports cached (after its first full rescan), against the JSON size
// of the objects it caches, as the API server returns them. No RuntimeRule: nothing is written,
// only cached and evaluated. Ratio: RSS growth / cached JSON (goal ≤ 2).
//   BENCH_PODS (default 10000), BENCH_CONCURRENCY (default 32)
// Runs its own control plane under .tenet/bench-memory (TENET_TEST_STATE_DIR to override).
import { parallel } from "./_parallel.ts";
import { readFileSync } from "node:fs";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "..");
process.env.TENET_TEST_STATE_DIR ??= path.join(repo, ".tenet/bench-memory");
const { cluster, newNamespace, operatorKubeconfig, removeWebhookConfigurations, stopCluster } = await import("../test/harness/controlplane.ts");
const { OperatorProcess, killAllOperators } = await import("../test/harness/operator.ts");
const { resourcePath, Resources } = await import("../common/kube.ts");

const N = Number(process.env.BENCH_PODS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const VR = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };
const log = (msg: string) => process.stderr.write(`[memory] ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
const MB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

// Real reports repeat findings across images (shared base layers): 40 common, 5 of the image's own.
function report(ns: string, i: number) {
  const finding = (id: string, pkg: string, severity: string) => ({ vulnerabilityID: id, severity, resource: pkg, installedVersion: "1.0", fixedVersion: "1.1", title: `${id} in ${pkg}`, publishedDate: "2025-01-01T00:00:00Z", lastModifiedDate: "2025-01-02T00:00:00Z" });
  const vulns = Array.from({ length: 40 }, (_, k) => finding(`CVE-2023-${3000 + k}`, `libbase${k % 8}`, ["LOW", "MEDIUM", "HIGH"][k % 3]));
  for (let k = 0; k < 5; k++) vulns.push(finding(`CVE-2024-${(i * 5 + k) % 20000}`, `libsvc${i % 100}`, "MEDIUM"));
  return {
    apiVersion: "aquasecurity.github.io/v1alpha1",
    kind: "VulnerabilityReport",
    metadata: { name: `svc-${i}`, namespace: ns },
    report: {
      artifact: { repository: `acme/svc-${i}`, tag: "1.0" },
      registry: { server: "ghcr.io" },
      os: { family: "debian", name: "12.5" },
      scanner: { name: "Trivy", vendor: "Aqua Security", version: "0.50.0" },
      summary: { criticalCount: 0, highCount: 13, mediumCount: 18, lowCount: 14, unknownCount: 0 },
      updateTimestamp: new Date().toISOString(),
      vulnerabilities: vulns,
    },
  };
}

try {
  const { kube } = await cluster();
  const kubeconfig = await operatorKubeconfig();
  const ns = await newNamespace("bench-memory");
  const start = (id: string) => OperatorProcess.start({ kubeconfig, namespace: "tenet-system", identity: `${id}-${ns}`, env: { TENET_LEASE_NAME: `lease-${ns}`, TENET_LEASE_DURATION_MS: "4000", TENET_RENEW_DEADLINE_MS: "3000", TENET_RETRY_PERIOD_MS: "500", TENET_LOG_LEVEL: "info" } });
  const settle = () => new Promise((r) => setTimeout(r, 3000));

  let op = await start("idle");
  await op.waitForLog("rescan", (l) => l.msg === "rescan finished", 60_000);
  await settle();
  const idle = rssOf(op.pid);
  await op.kill("SIGTERM");
  await removeWebhookConfigurations();

  log(`creating ${N} VulnerabilityReports and ${N} pods`);
  await parallel(CONCURRENCY, N, "reports", log, (i) => kube.create(resourcePath(VR, ns), report(ns, i)));
  await parallel(CONCURRENCY, N, "pods", log, (i) => kube.create(resourcePath(Resources.pods, ns), { apiVersion: "v1", kind: "Pod", metadata: { name: `svc-${i}`, labels: { app: `svc-${i}`, tier: "backend" } }, spec: { containers: [{ name: "app", image: `ghcr.io/acme/svc-${i}:1.0` }] } }));
  const pods = (await kube.list(resourcePath(Resources.pods, ns))).items;
  const reports = (await kube.list(resourcePath(VR, ns))).items;
  const jsonBytes = Buffer.byteLength(JSON.stringify(pods)) + Buffer.byteLength(JSON.stringify(reports));

  op = await start("scale");
  const synced = rssOf(op.pid);
  const done = await op.waitForLog("rescan", (l) => l.msg === "rescan finished", 30 * 60_000);
  await settle();
  const atScale = rssOf(op.pid);
  // What of it is live JavaScript data, and what is the heap V8 keeps committed around it.
  const heapUsed = await op.metricSum("tenet_nodejs_heap_size_used_bytes");
  const heapTotal = await op.metricSum("tenet_nodejs_heap_size_total_bytes");
  await op.kill("SIGTERM");

  const ratio = Math.round(((atScale - idle) / jsonBytes) * 100) / 100;
  const details = { pods: N, reports: N, cachedJSONMB: MB(jsonBytes), idleRSSMB: MB(idle), syncedRSSMB: MB(synced), atScaleRSSMB: MB(atScale), growthMB: MB(atScale - idle), heapUsedMB: MB(heapUsed), heapTotalMB: MB(heapTotal), rescanMs: done.ms, evaluated: done.evaluated };
  console.log(`idle ${details.idleRSSMB} MB; caches synced ${details.syncedRSSMB} MB; after a full rescan ${details.atScaleRSSMB} MB; cached JSON ${details.cachedJSONMB} MB`);
  console.log(JSON.stringify({ bench: "memory", ratio, goal: "RSS growth ≤ 2× the JSON of the cached pods and VulnerabilityReports", details }));
} finally {
  await killAllOperators();
  await stopCluster();
}
