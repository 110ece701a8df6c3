// load.js URL SECONDS CONNECTIONS [RATE] [WARMUP]: the real-node benchmark's load generator (bench/
// enforcer-node.ts), run inside a pod. Plain HTTP/1.1 GETs on CONNECTIONS keep-alive connections
// (an unmodified app: under capture its enforcer carries them). With RATE: a steady schedule of
// RATE requests/s (never a burst after a stall), else as fast as the connections go (RATE 0).
// First WARMUP requests per connection (default 200), not measured. Prints one JSON line:
// requests, warm-up requests, errors, seconds, rps, p50 and p99 in ms.
const http = require('http');
const { createHistogram } = require('perf_hooks');
const [url, seconds, connections, rate, warmup] = process.argv.slice(2);
const SECONDS = Number(seconds || 3), CONNS = Number(connections || 10), RATE = Number(rate || 0);
const u = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
let errors = 0;
function once() {
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port || 80, path: u.pathname, agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => { if (res.statusCode !== 200) errors++; resolve(); });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end();
  });
}
async function fullSpeed(h) {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: CONNS }, async () => {
    while (performance.now() < end) { const t0 = performance.now(); await once(); h.record(Math.max(1, Math.round((performance.now() - t0) * 1000))); n++; }
  }));
  return n;
}
async function fixedRate(h) {
  const total = Math.round(RATE * SECONDS), interval = 1000 / RATE, start = performance.now(), inflight = [];
  for (let i = 0; i < total; i++) {
    const wait = start + i * interval - performance.now();
    await new Promise((r) => (wait > 1 ? setTimeout(r, wait) : setImmediate(r)));
    const t0 = performance.now();
    inflight.push(once().then(() => h.record(Math.max(1, Math.round((performance.now() - t0) * 1000)))));
  }
  await Promise.all(inflight);
  return total;
}
(async () => {
  const WARMUP = Number(warmup ?? 200);
  for (let i = 0; i < WARMUP; i++) await Promise.all(Array.from({ length: CONNS }, once));
  errors = 0;
  const h = createHistogram();
  const t0 = performance.now();
  const n = RATE ? await fixedRate(h) : await fullSpeed(h);
  const elapsed = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ requests: n, warmup: WARMUP * CONNS, errors, seconds: elapsed, rps: n / elapsed, p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000 }));
  process.exit(errors ? 1 : 0);
})();
