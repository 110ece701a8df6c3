// The app the enforcer benchmark loads, in its own process: the same handler (1 KiB JSON body)
// over plain HTTP on loopback (behind the enforcer) and over TLS (the direct baseline, with the
// same certificate files). Prints one JSON line with the ports, then serves until killed.
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

const dir = process.argv[2];
const body = Buffer.from(JSON.stringify({ data: "x".repeat(1000) }).slice(0, 1024));
const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
  req.resume();
  req.on("end", () => res.writeHead(200, { "content-type": "application/json", "content-length": body.length }).end(body));
};
const plain = http.createServer({ keepAliveTimeout: 30_000 }, handler);
const secure = https.createServer({ key: readFileSync(`${dir}/app-key.pem`), cert: readFileSync(`${dir}/app-cert.pem`), ca: readFileSync(`${dir}/bundle.pem`), requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 30_000 }, handler);
await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
await new Promise<void>((r) => secure.listen(0, "127.0.0.1", r));
console.log(JSON.stringify({ plain: (plain.address() as AddressInfo).port, secure: (secure.address() as AddressInfo).port }));
