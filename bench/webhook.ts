// Admission webhook throughput: Tenet's /validate (pod with 3 containers, 1,000 cached
// VulnerabilityReports, 10 RuntimeRules selecting it) and /mutate (enforcer injection) against a
// bare fastify HTTPS handler that returns a fixed AdmissionReview — same TLS, same keep-alive
// load generator, same run, interleaved rounds. The servers run in a child process so the load
// generator does not share their event loop.
import { spawn } from "node:child_process";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { podReview, randomSuffix } from "./_webhook-data.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
// Distinct pod templates the requests cycle through: 1 (the default) is a ReplicaSet's pods, what
// the caches are for; more than the caches hold (BENCH_TEMPLATES=4000) measures every request missing.
const TEMPLATES = Math.max(1, Number(process.env.BENCH_TEMPLATES ?? 1));
// BENCH_REALISTIC=1: every pod as the API server sends it — its own ServiceAccount token volume
// (kube-api-access-xxxxx, random per pod, in volumes and every container's mounts) and, for
// /validate, its generated name; what a real cluster's reviews look like. Without it, the fixed
// kube-api-access-x of the first passes: the cached path only.
const REALISTIC = process.env.BENCH_REALISTIC === "1";

const server = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_ARGS?.split(" ").filter(Boolean) ?? []), "--import", "tsx", path.join(import.meta.dirname, "_webhook-server.ts")], { stdio: ["ignore", "pipe", "inherit"] });
process.on("exit", () => server.kill("SIGKILL"));
const ready: { tenet: number; bare: number; ca: string } = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout! }).once("line", (l) => resolve(JSON.parse(l)));
  server.once("exit", (code) => reject(new Error(`benchmark server exited with ${code}`)));
});

const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: ready.ca, servername: "localhost" });
const uidOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
const TOKEN = "kube-api-access-#####";
const review = (i: number, named: boolean) => JSON.stringify(REALISTIC ? podReview(uidOf(i), i % TEMPLATES, TOKEN, named ? `orders-${i % TEMPLATES}-#NAME#` : undefined) : podReview(uidOf(i), i % TEMPLATES));
const texts = { mutate: Array.from({ length: Math.max(64, TEMPLATES) }, (_, i) => review(i, false)), validate: Array.from({ length: Math.max(64, TEMPLATES) }, (_, i) => review(i, true)) };
/** The n-th request's body for a route: realistic ones get a fresh token volume name (and pod name) each time. */
const bodyFor = (route: string, n: number): string => {
  const text = (route === "/validate" ? texts.validate : texts.mutate)[n % texts.mutate.length];
  return REALISTIC ? text.replaceAll("#####", randomSuffix()).replace("#NAME#", randomSuffix()) : text;
};
const bodies = texts.mutate;
console.log(`AdmissionReview: ${bodies[0].length} bytes; ${TEMPLATES} pod template(s)${REALISTIC ? ", realistic (random token volume and pod names)" : ""}; ${CONCURRENCY} concurrent keep-alive connections; ${ROUNDS} rounds of ${ROUND_MS} ms; ${os.cpus().length} CPUs`);

function post(port: number, route: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port, path: route, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const targets = {
  bare: { port: ready.bare, route: "/fixed" },
  validate: { port: ready.tenet, route: "/validate" },
  mutate: { port: ready.tenet, route: "/mutate" },
};
type Target = keyof typeof targets;

// The benchmark only counts if every endpoint does its real work: check the answers first.
{
  const v = await post(ready.tenet, "/validate", bodyFor("/validate", 0));
  if (v.status !== 200 || v.json.response?.allowed !== true || v.json.response.uid !== podReview(`00000000-0000-4000-8000-000000000000`).request.uid) throw new Error(`validate answered ${JSON.stringify(v.json)}`);
  const m = await post(ready.tenet, "/mutate", bodyFor("/mutate", 0));
  if (m.status !== 200 || m.json.response?.allowed !== true || m.json.response.patchType !== "JSONPatch") throw new Error(`mutate did not inject: ${JSON.stringify(m.json).slice(0, 300)}`);
  const patch = JSON.parse(Buffer.from(m.json.response.patch, "base64").toString());
  console.log(`validate: allowed, ${v.json.response.warnings?.length ?? 0} warnings; mutate: ${patch.length} patch operations`);
}

/** The server process's CPU time so far, in µs (utime + stime from /proc; clock ticks of 10 ms). */
const serverCpuUs = () => {
  const stat = readFileSync(`/proc/${server.pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
};

/** Closed loop: CONCURRENCY workers send back to back for `ms`; returns requests/s, latencies and the
 * server's CPU per request (steadier than requests/s on a loaded machine: other processes take
 * wall time, not the server's CPU time). */
async function load(target: Target, ms: number) {
  const { port, route } = targets[target];
  const cpu0 = serverCpuUs();
  const latencies: number[] = [];
  const end = performance.now() + ms;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const res = await post(port, route, bodyFor(route, n++));
      if (res.status !== 200) throw new Error(`${route} answered ${res.status}`);
      latencies.push(performance.now() - t0);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const secs = (performance.now() - start) / 1000;
  const cpuUs = (serverCpuUs() - cpu0) / latencies.length;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { rps: latencies.length / secs, p50: pct(0.5), p99: pct(0.99), cpuUs };
}

for (const t of Object.keys(targets) as Target[]) await load(t, 700); // warm-up: JIT, TLS sessions
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds: Record<Target, { rps: number; p50: number; p99: number; cpuUs: number }[]> = { bare: [], validate: [], mutate: [] };
const order: Target[] = ["bare", "validate", "mutate"];
for (let r = 1; r <= ROUNDS; r++) {
  for (const t of r % 2 ? order : [...order].reverse()) rounds[t].push(await load(t, ROUND_MS));
  const last = (t: Target) => rounds[t][r - 1];
  console.log(`round ${r}/${ROUNDS}: ` + order.map((t) => `${t} ${Math.round(last(t).rps)}/s p99 ${last(t).p99.toFixed(2)} ms ${Math.round(last(t).cpuUs)} µs CPU`).join(", "));
}
agent.destroy();
await new Promise((r) => {
  server.once("exit", r);
  server.kill("SIGTERM");
});

const summary = (t: Target) => ({ rps: Math.round(median(rounds[t].map((x) => x.rps))), p50Ms: +median(rounds[t].map((x) => x.p50)).toFixed(3), p99Ms: +median(rounds[t].map((x) => x.p99)).toFixed(3), serverCpuUsPerRequest: +median(rounds[t].map((x) => x.cpuUs)).toFixed(1) });
// The same comparison in server CPU per request (bare / route): what throughput would be on an idle core.
const cpuRatioOf = (t: Target) => +median(rounds[t].map((x, i) => rounds.bare[i].cpuUs / x.cpuUs)).toFixed(3);
const ratioOf = (t: Target) => +median(rounds[t].map((x, i) => x.rps / rounds.bare[i].rps)).toFixed(3);
const bare = summary("bare");
const validate = { ...summary("validate"), ratio: ratioOf("validate"), cpuRatio: cpuRatioOf("validate") };
const mutate = { ...summary("mutate"), ratio: ratioOf("mutate"), cpuRatio: cpuRatioOf("mutate") };
const added = (s: typeof bare) => ({ addedP50Ms: +(s.p50Ms - bare.p50Ms).toFixed(3), addedP99Ms: +(s.p99Ms - bare.p99Ms).toFixed(3) });
console.log(`bare fastify HTTPS: ${bare.rps}/s, p50 ${bare.p50Ms} ms, p99 ${bare.p99Ms} ms`);
for (const [name, s] of [["validate", validate], ["mutate", mutate]] as const) {
  console.log(`${name}: ${s.rps}/s (ratio ${s.ratio}; server CPU ${s.serverCpuUsPerRequest} µs/request, ratio ${s.cpuRatio}), p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms (added p99 ${added(s).addedP99Ms} ms)`);
}
console.log(
  JSON.stringify({
    bench: "webhook",
    ratio: Math.min(validate.ratio, mutate.ratio),
    goal: ">= 0.8 for both /validate and /mutate (ratio is the lower of the two)",
    details: { concurrency: CONCURRENCY, templates: TEMPLATES, realistic: REALISTIC, bodyBytes: bodies[0].length, bare, validate: { ...validate, ...added(validate) }, mutate: { ...mutate, ...added(mutate) }, cpus: os.cpus().length, node: process.version },
  }),
);
process.exit(0);
