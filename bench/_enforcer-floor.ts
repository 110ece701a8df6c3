// The floor for the enforcer bench (BENCH_ENFORCER=bench/_enforcer-floor.ts): the least a Node.js
// proxy does on the same path — mTLS termination with the same certificates, HTTP/1.1 parsing,
// a keep-alive pool to the app, streaming both ways — with no identity, policy, audit or metrics.
// Not a product: it shows how much of the enforcer's CPU per request is the runtime's.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

const dir = process.env.TENET_ENFORCER_STATIC_DIR!;
const appPort = Number(process.env.TENET_APP_PORT);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: "lifo" });
const server = https.createServer({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`), ca: readFileSync(`${dir}/bundle.pem`), requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 30_000 }, (req, res) => {
  const up = http.request({ host: "127.0.0.1", port: appPort, method: req.method, path: req.url, headers: req.rawHeaders as unknown as http.OutgoingHttpHeaders, agent }, (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.rawHeaders as unknown as http.OutgoingHttpHeaders);
    ures.pipe(res);
  });
  up.on("error", () => res.destroy());
  req.pipe(up);
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ msg: "enforcer listening", inboundPort: (server.address() as AddressInfo).port })));
process.on("SIGTERM", () => process.exit(0));
