// The enforcer on the real node (hack/node.sh), with transparent capture: the same load generator
// (hack/node/images/app/load.js) in a pod calls the same app in another pod by Service name,
//   direct: a namespace without injection (kube-proxy to the app's port), against
//   mesh:   a namespace with injection: the caller's enforcer (capture outbound, mTLS), the
//           destination's enforcer (APIPolicy, audit), then the app,
// interleaved by round in the same run. Fixed rate (BENCH_RATE, default 1,000 req/s): added p50
// and p99, and each enforcer's CPU (utime + stime from /proc on the node, per 1,000 requests);
// full speed (BENCH_CONNECTIONS keep-alive connections): throughput ratio; enforcer RSS (VmRSS)
// after the load. Needs the node up with Tenet installed from this worktree:
// `hack/node.sh up && hack/node.sh install`. Knobs: BENCH_SECONDS (per phase, default 5),
// BENCH_ROUNDS (default 3; medians reported), BENCH_RATE, BENCH_CONNECTIONS (default 10).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { waitFor } from "../test/harness/exec.ts";
import { apply, exec, kube, kubeconfig, namespace, readyPod } from "../test/harness/node.ts";
import { median, r3 } from "./_stats.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const APP = "ghcr.io/acme/e2e-app:1.0";

if (!existsSync(kubeconfig)) {
  console.error(`enforcer-node needs the real node (${kubeconfig} is missing): run hack/node.sh up && hack/node.sh install, then npm run bench -- enforcer-node`);
  process.exit(1);
}
const ready = await kube().get("/apis/apps/v1/namespaces/tenet-system/deployments/tenet-operator").catch((e) => ({ error: String(e) }));
if (!ready?.status?.readyReplicas) {
  console.error(`enforcer-node needs Tenet installed on the node (deployment tenet-system/tenet-operator: ${ready?.error ?? "no ready replica"}): run hack/node.sh install`);
  process.exit(1);
}

// Two pods per namespace: server (the demo HTTP server) and load (the load generator's pod).
const pods = (ns: string, meshed: boolean) => `
${meshed ? ["server", "load"].map((sa) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ${sa}, namespace: ${ns}}\n---\napiVersion: tenet.dev/v1alpha1\nkind: ServiceIdentity\nmetadata: {name: ${sa}, namespace: ${ns}}\nspec: {selector: {matchLabels: {app: ${sa}}}, serviceAccountName: ${sa}}\n---\n`).join("") : ""}
${meshed ? `apiVersion: tenet.dev/v1alpha1
kind: APIPolicy
metadata: {name: server, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: server}}
  apis: [{name: bench, paths: ["/bench/**"], methods: {GET: read}}]
  rules: [{name: load-reads, from: [{spiffeIDs: ["spiffe://cluster.local/ns/${ns}/sa/load"]}], to: [{api: bench, scopes: [read]}]}]
---` : ""}
${["server", "load"].map((app) => `apiVersion: v1
kind: Pod
metadata: {name: ${app}, namespace: ${ns}, labels: {app: ${app}}}
spec:
  ${meshed ? `serviceAccountName: ${app}` : ""}
  terminationGracePeriodSeconds: 1
  containers: [{name: ${app}, image: ${APP}, imagePullPolicy: Never, command: [node, /app/server.js], env: [{name: NAME, value: ${app}}], ports: [{containerPort: 8080}]}]
---`).join("\n")}
apiVersion: v1
kind: Service
metadata: {name: server, namespace: ${ns}}
spec: {selector: {app: server}, ports: [{name: http, port: 80, targetPort: 8080}]}
`;

type Target = "direct" | "mesh";
const ns = { direct: await namespace("bench-direct", { inject: false }), mesh: await namespace("bench-mesh") };
const cleanup = async () => {
  if (!process.env.BENCH_KEEP) await Promise.all(Object.values(ns).map((n) => n.remove()));
};
try {
  for (const t of ["direct", "mesh"] as Target[]) await apply(pods(ns[t].name, t === "mesh"));
  const podUID: Record<string, string> = {};
  for (const t of ["direct", "mesh"] as Target[]) for (const app of ["server", "load"]) podUID[`${t}/${app}`] = (await readyPod(ns[t].name, `app=${app}`, 120_000)).metadata.uid;
  const url = (t: Target) => `http://server.${ns[t].name}.svc/bench/orders/42`;

  // What is measured is what it says: the meshed answer names the caller from its certificate.
  const answer = async (t: Target) => {
    const r = await exec(ns[t].name, "load", "load", ["node", "/app/http.js", "GET", url(t)]);
    return r.stdout.startsWith("200 ") ? JSON.parse(r.stdout.slice(4)) : undefined;
  };
  const meshAnswer = await waitFor("a captured call from load to server", () => answer("mesh"), 60_000, 1000);
  if (meshAnswer.caller !== `spiffe://cluster.local/ns/${ns.mesh.name}/sa/load`) throw new Error(`the meshed call did not go through the enforcers: ${JSON.stringify(meshAnswer)}`);
  const directAnswer = await waitFor("a direct call from load to server", () => answer("direct"), 60_000, 1000);
  if (directAnswer.caller !== undefined) throw new Error(`the direct call went through an enforcer: ${JSON.stringify(directAnswer)}`);

  // The enforcer processes, found on the node by their pod's cgroup (the node shares our PID namespace).
  const enforcerPid = (uid: string) => {
    const marks = [`pod${uid}`, `pod${uid.replaceAll("-", "_")}`];
    for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        if (!readFileSync(`/proc/${p}/cmdline`, "utf8").includes("/app/enforcer.mjs")) continue;
        const cg = readFileSync(`/proc/${p}/cgroup`, "utf8");
        if (marks.some((m) => cg.includes(m))) return Number(p);
      } catch {
        // gone meanwhile
      }
    }
    throw new Error(`no enforcer process for pod ${uid} in /proc: the bench must run on the node's machine`);
  };
  const enforcers = { client: enforcerPid(podUID["mesh/load"]), server: enforcerPid(podUID["mesh/server"]) };
  type Side = keyof typeof enforcers;
  const ticksPerSecond = 100; // USER_HZ on Linux
  /** [user, system] CPU seconds of a process (utime, stime: fields 14 and 15 of /proc/PID/stat). */
  const cpuSeconds = (pid: number): [number, number] => {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return [Number(f[11]) / ticksPerSecond, Number(f[12]) / ticksPerSecond];
  };
  // VmRSS = RssAnon (heap, stacks: the process's own) + RssFile (the node binary's mapped pages, shareable).
  const rssMB = (pid: number, field = "VmRSS") => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

  type Result = { requests: number; warmup: number; errors: number; seconds: number; rps: number; p50: number; p99: number };
  const load = async (t: Target, rate: number, warmup = 20): Promise<Result> => {
    const r = await exec(ns[t].name, "load", "load", ["node", "/app/load.js", url(t), String(SECONDS), String(CONNECTIONS), String(rate), String(warmup)]);
    const last = r.stdout.trim().split("\n").pop() ?? "";
    if (r.code !== 0 || !last.startsWith("{")) throw new Error(`load generator (${t}) failed: ${(r.stdout + r.stderr).trim().slice(0, 500)}`);
    return JSON.parse(last);
  };

  for (const t of ["direct", "mesh"] as Target[]) await load(t, 0, 200); // warm-up, both paths
  const lat: Record<Target, { p50: number; p99: number }[]> = { direct: [], mesh: [] };
  const rps: Record<Target, number[]> = { direct: [], mesh: [] };
  const cpu: Record<Side, number[]> = { client: [], server: [] };
  const sys: Record<Side, number[]> = { client: [], server: [] }; // the kernel's share (network stack, syscalls)
  const rss: Record<Side, number> = { client: 0, server: 0 };
  const anon: Record<Side, number> = { client: 0, server: 0 };
  for (let r = 1; r <= ROUNDS; r++) {
    const order: Target[] = r % 2 ? ["direct", "mesh"] : ["mesh", "direct"];
    for (const t of order) {
      const before = { client: cpuSeconds(enforcers.client), server: cpuSeconds(enforcers.server) };
      const res = await load(t, RATE);
      lat[t].push({ p50: res.p50, p99: res.p99 });
      // Core-seconds per request × 1,000 = cores at 1,000 req/s (warm-up requests counted too).
      if (t === "mesh")
        for (const s of ["client", "server"] as Side[]) {
          const [u, k] = cpuSeconds(enforcers[s]);
          const n = res.requests + res.warmup;
          cpu[s].push(((u + k - before[s][0] - before[s][1]) / n) * 1000);
          sys[s].push(((k - before[s][1]) / n) * 1000);
        }
    }
    for (const t of order) rps[t].push((await load(t, 0)).rps);
    for (const s of ["client", "server"] as Side[]) {
      rss[s] = Math.max(rss[s], rssMB(enforcers[s]));
      anon[s] = Math.max(anon[s], rssMB(enforcers[s], "RssAnon"));
    }
    const f = (x: number) => x.toFixed(3);
    console.log(
      `round ${r}/${ROUNDS}: ${RATE} rps p50/p99 ms direct ${f(lat.direct[r - 1].p50)}/${f(lat.direct[r - 1].p99)}, mesh ${f(lat.mesh[r - 1].p50)}/${f(lat.mesh[r - 1].p99)}; ` +
        `full speed direct ${Math.round(rps.direct[r - 1])}/s, mesh ${Math.round(rps.mesh[r - 1])}/s; enforcer CPU per 1,000 rps client ${f(cpu.client[r - 1])}, server ${f(cpu.server[r - 1])} core; RSS client ${rss.client.toFixed(1)} MB, server ${rss.server.toFixed(1)} MB`,
    );
  }
  const addedP50 = r3(median(lat.mesh.map((l) => l.p50)) - median(lat.direct.map((l) => l.p50)));
  const addedP99 = r3(median(lat.mesh.map((l) => l.p99)) - median(lat.direct.map((l) => l.p99)));
  const ratio = r3(median(rps.mesh.map((x, i) => x / rps.direct[i])));
  const cpuPer1000 = { client: r3(median(cpu.client)), server: r3(median(cpu.server)) };
  const sysPer1000 = { client: r3(median(sys.client)), server: r3(median(sys.server)) };
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const rssOut = { client: r1(rss.client), server: r1(rss.server) };
  const anonOut = { client: r1(anon.client), server: r1(anon.server) };
  console.log(
    `with capture on the node: throughput ratio ${ratio} (goal >= 0.5); added at ${RATE} rps p50 +${addedP50} ms (goal <= 0.3), p99 +${addedP99} ms (goal <= 1); ` +
      `enforcer CPU per 1,000 rps ${cpuPer1000.client} / ${cpuPer1000.server} core (client / server, goal <= 0.2; in the kernel ${sysPer1000.client} / ${sysPer1000.server}), RSS ${rssOut.client} / ${rssOut.server} MB (goal <= 60; anonymous ${anonOut.client} / ${anonOut.server}); load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
  );
  console.log(
    JSON.stringify({
      bench: "enforcer-node",
      ratio,
      goal: ">= 0.5 throughput ratio; added p50 <= 0.3 ms and p99 <= 1 ms at 1,000 rps; enforcer RSS <= 60 MB, CPU <= 0.2 core per 1,000 rps",
      details: {
        addedP50Ms: addedP50,
        addedP99Ms: addedP99,
        directRps: Math.round(median(rps.direct)),
        meshRps: Math.round(median(rps.mesh)),
        enforcerCpuCoresPer1000Rps: cpuPer1000,
        enforcerSystemCpuCoresPer1000Rps: sysPer1000,
        enforcerRssMB: rssOut,
        enforcerRssAnonMB: anonOut,
        latencyMs: lat,
        rate: RATE,
        connections: CONNECTIONS,
        seconds: SECONDS,
        rounds: ROUNDS,
        cpus: os.cpus().length,
        loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
    }),
  );
} finally {
  await cleanup();
}
process.exit(0);
