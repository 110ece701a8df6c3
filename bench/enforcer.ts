// Enforcer overhead: client → enforcer (mTLS, policy, audit) → app, against client → app over
// direct mTLS with the same certificates, the same load generator and the same app process, in the
// same run. Two measurements, interleaved by round:
//   fixed rate (BENCH_RATE, default 1,000 req/s, steady schedule, µs histograms): added p50/p99;
//   full speed (BENCH_CONNECTIONS keep-alive connections, default 10): throughput ratio.
// The CA and certificates are made in-process (operator/ca/keypair.ts, leaf.ts) and the enforcer runs as a
// child in static mode (TENET_ENFORCER_STATIC_DIR: certificate, bundle and policy from files).
// Knobs: BENCH_SECONDS (per phase and target, default 3), BENCH_ROUNDS (default 3; medians are
// reported), BENCH_RATE, BENCH_CONNECTIONS, BENCH_CHILD_NODE_OPTIONS (both children, e.g.
// "--cpu-prof"), BENCH_ENFORCER (another enforcer bundle, e.g. main's, for a before/after on the
// same machine state), BENCH_ENFORCER_NODE_OPTIONS (the enforcer only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
// The enforcer's own CPU (utime + stime from /proc/<pid>/stat) is reported per 1,000 requests of the
// fixed-rate phases (= cores at 1,000 req/s), and its VmRSS / RssAnon after the load.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { createHistogram } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { createCA } from "../operator/ca/keypair.ts";
import { issueLeaf } from "../operator/ca/leaf.ts";
import crypto from "node:crypto";
import { median, r3 } from "./_stats.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const root = path.resolve(import.meta.dirname, "..");

// --- PKI and policy (not measured) ------------------------------------------------------------
const ca = createCA({ commonName: "Tenet Bench CA", validitySeconds: 86_400 });
const leaf = (spiffeID: string, attributes?: Record<string, string>) => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const l = issueLeaf(ca, { publicKeyDer: publicKey.export({ type: "spki", format: "der" }) as Buffer, spiffeID, attributes, ttlSeconds: 3600 });
  return { key: privateKey.export({ type: "pkcs8", format: "pem" }) as string, cert: l.pem };
};
const CLIENT = "spiffe://cluster.local/ns/shop/sa/frontend";
const SERVER = "spiffe://cluster.local/ns/shop/sa/orders";
const dir = mkdtempSync(path.join(os.tmpdir(), "tenet-bench-enforcer-"));
const server = leaf(SERVER, { tier: "backend", posture: "clean" });
const client = leaf(CLIENT, { tier: "frontend", posture: "clean", image: "ghcr.io/acme/frontend:1.0" });
writeFileSync(path.join(dir, "key.pem"), server.key);
writeFileSync(path.join(dir, "cert.pem"), server.cert);
writeFileSync(path.join(dir, "app-key.pem"), server.key);
writeFileSync(path.join(dir, "app-cert.pem"), server.cert);
writeFileSync(path.join(dir, "bundle.pem"), ca.certPem);
writeFileSync(
  path.join(dir, "policy.json"),
  JSON.stringify({
    version: "bench",
    policies: [
      {
        namespace: "shop",
        name: "orders",
        spec: {
          selector: {},
          apis: [{ name: "orders", paths: ["/orders/**"], methods: { GET: "read" } }],
          rules: [{ name: "frontend-reads", from: [{ spiffeIDs: [CLIENT], attributes: [{ key: "posture", operator: "In", values: ["clean"] }] }], to: [{ api: "orders", scopes: ["read"] }] }],
        },
      },
    ],
  }),
);

// --- processes ------------------------------------------------------------------------------
const children: ChildProcess[] = [];
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));
const opts = (v: string | undefined) => (v ?? "").split(" ").filter(Boolean);
function child(args: string[], env: Record<string, string>, ready: (rec: any) => boolean, nodeOptions: string[] = []): Promise<any> {
  const c = spawn(process.execPath, [...opts(process.env.BENCH_CHILD_NODE_OPTIONS), ...nodeOptions, ...(args[0].endsWith(".ts") ? ["--import", "tsx"] : []), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(c);
  return new Promise((resolve, reject) => {
    c.on("exit", (code) => reject(new Error(`${args[0]} exited with ${code}`)));
    createInterface({ input: c.stdout! }).on("line", (l) => {
      try {
        const rec = JSON.parse(l);
        if (ready(rec)) resolve(rec);
      } catch {
        // not JSON
      }
    });
  });
}
const app = await child([path.join(root, "bench/_enforcer-app.ts"), dir], {}, (r) => r.plain > 0);
// The bundled enforcer, as the image runs it (npm run bench builds first).
const enforcer = await child(
  [process.env.BENCH_ENFORCER ? path.resolve(process.env.BENCH_ENFORCER) : path.join(root, "build/enforcer.mjs")],
  {
    TENET_ENFORCER_STATIC_DIR: dir,
    TENET_APP_PORT: String(app.plain),
    TENET_INBOUND_PORT: "0",
    TENET_OUTBOUND_PORT: "0",
    TENET_HEALTH_PORT: "0",
    TENET_LISTEN_HOST: "127.0.0.1",
    TENET_HEALTH_HOST: "127.0.0.1",
    TENET_AUDIT_FILE: path.join(dir, "audit.jsonl"),
    TENET_LOG_LEVEL: "info",
  },
  (r) => r.msg === "enforcer listening",
  opts(process.env.BENCH_ENFORCER_NODE_OPTIONS),
);
const enforcerPid = children[children.length - 1].pid!;
// utime + stime of the enforcer in seconds (Linux); undefined elsewhere.
const TICK = 100; // USER_HZ on Linux
function cpuSeconds(): number | undefined {
  try {
    const f = readFileSync(`/proc/${enforcerPid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return undefined;
  }
}
function memMB(): { rss?: number; anon?: number } {
  try {
    const s = readFileSync(`/proc/${enforcerPid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1]) / 1024;
    return { rss: r1(kb("VmRSS")), anon: r1(kb("RssAnon")) };
  } catch {
    return {};
  }
}
const r1 = (x: number) => Math.round(x * 10) / 10;

// --- load generator ---------------------------------------------------------------------------
const targets = { direct: app.secure as number, enforcer: enforcer.inboundPort as number };
type Target = keyof typeof targets;
const agents = Object.fromEntries(
  Object.keys(targets).map((t) => [t, new https.Agent({ keepAlive: true, maxSockets: CONNECTIONS, ca: ca.certPem, key: client.key, cert: client.cert, checkServerIdentity: () => undefined })]),
) as Record<Target, https.Agent>;

function once(t: Target): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port: targets[t], path: "/orders/42", agent: agents[t] }, (res) => {
      res.on("data", () => {});
      res.on("end", () => (res.statusCode === 200 ? resolve(200) : reject(new Error(`${t}: HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

async function fullSpeed(t: Target): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        await once(t);
        n++;
      }
    }),
  );
  return n / SECONDS;
}

async function fixedRate(t: Target) {
  const h = createHistogram();
  const total = Math.round(RATE * SECONDS);
  const interval = 1000 / RATE;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    // Always yield, so responses are read while sending; a late generator never sends a burst.
    await new Promise((r) => (wait > 1 ? setTimeout(r, wait) : setImmediate(r)));
    const t0 = performance.now();
    inflight.push(once(t).then(() => h.record(Math.max(1, Math.round((performance.now() - t0) * 1000)))));
  }
  await Promise.all(inflight);
  return { p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000 };
}

const memIdle = memMB();
for (const t of ["direct", "enforcer"] as Target[]) for (let i = 0; i < 300; i++) await once(t); // warm-up

const rps: Record<Target, number[]> = { direct: [], enforcer: [] };
let cpuFixed = 0;
let requestsFixed = 0;
const lat: Record<Target, { p50: number; p99: number }[]> = { direct: [], enforcer: [] };
for (let r = 1; r <= ROUNDS; r++) {
  const order: Target[] = r % 2 ? ["direct", "enforcer"] : ["enforcer", "direct"];
  for (const t of order) {
    const c0 = t === "enforcer" ? cpuSeconds() : undefined;
    lat[t].push(await fixedRate(t));
    const c1 = c0 === undefined ? undefined : cpuSeconds();
    if (c0 !== undefined && c1 !== undefined) (cpuFixed += c1 - c0), (requestsFixed += Math.round(RATE * SECONDS));
  }
  for (const t of order) rps[t].push(await fullSpeed(t));
  console.log(
    `round ${r}/${ROUNDS}: ${RATE} rps p50/p99 ms direct ${lat.direct[r - 1].p50.toFixed(3)}/${lat.direct[r - 1].p99.toFixed(3)}, enforcer ${lat.enforcer[r - 1].p50.toFixed(3)}/${lat.enforcer[r - 1].p99.toFixed(3)}; full speed direct ${Math.round(rps.direct[r - 1])}/s, enforcer ${Math.round(rps.enforcer[r - 1])}/s`,
  );
}
const addedP50 = r3(median(lat.enforcer.map((l) => l.p50)) - median(lat.direct.map((l) => l.p50)));
const addedP99 = r3(median(lat.enforcer.map((l) => l.p99)) - median(lat.direct.map((l) => l.p99)));
const ratio = r3(median(rps.enforcer.map((x, i) => x / rps.direct[i])));
const corePer1000 = requestsFixed ? r3((cpuFixed / requestsFixed) * 1000) : undefined;
const mem = memMB();
const load = os.loadavg().map((x) => r1(x));
console.log(`enforcer CPU ${corePer1000} core per 1,000 req/s (fixed-rate phases); RSS ${mem.rss} MB (anonymous ${mem.anon} MB; before the load ${memIdle.rss} / ${memIdle.anon}); load average ${load.join(" ")}`);
console.log(`added latency at ${RATE} rps: p50 +${addedP50} ms (goal <= 0.3), p99 +${addedP99} ms (goal <= 1); throughput ratio ${ratio} (goal >= 0.5)`);
console.log(
  JSON.stringify({
    bench: "enforcer",
    ratio,
    goal: ">= 0.5 throughput ratio; added p50 <= 0.3 ms and p99 <= 1 ms at 1,000 rps",
    details: {
      addedP50Ms: addedP50,
      addedP99Ms: addedP99,
      directRps: Math.round(median(rps.direct)),
      enforcerRps: Math.round(median(rps.enforcer)),
      latencyMs: lat,
      enforcerCorePer1000Rps: corePer1000,
      enforcerRssMB: mem.rss,
      enforcerRssAnonMB: mem.anon,
      enforcerIdleRssMB: memIdle.rss,
      enforcerIdleRssAnonMB: memIdle.anon,
      loadAverage: load,
      rate: RATE,
      connections: CONNECTIONS,
      seconds: SECONDS,
      rounds: ROUNDS,
      cpus: os.cpus().length,
      node: process.version,
    },
  }),
);
// SIGTERM first, so a child run with --cpu-prof (BENCH_CHILD_NODE_OPTIONS) writes its profile.
children.forEach((c) => c.kill("SIGTERM"));
await new Promise((r) => setTimeout(r, process.env.BENCH_CHILD_NODE_OPTIONS || process.env.BENCH_ENFORCER_NODE_OPTIONS ? 6000 : 500));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
