// Kubelet probes under capture: injection points the app's httpGet/tcpSocket probes at the
// enforcer's health port (GET /app-health/<container>/<kind>, a port capture leaves alone) and
// passes the originals in TENET_APP_PROBES; this runs them against 127.0.0.1 and answers with
// the app's status. Without it, strict mode would refuse the kubelet, which calls from the
// node's IP without a certificate. Only the probes the pod declares can be run, only on localhost.
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { AppProbe } from "./config.ts";

export const APP_HEALTH_PREFIX = "/app-health/";

export function appHealthHandler(probes: Map<string, AppProbe>, host: string, timeoutMs = 10_000) {
  return (url: string, res: http.ServerResponse): boolean => {
    if (!url.startsWith(APP_HEALTH_PREFIX)) return false;
    const probe = probes.get(url.slice(APP_HEALTH_PREFIX.length));
    if (!probe) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no such probe\n");
      return true;
    }
    const answer = (status: number, text: string) => {
      if (!res.headersSent) res.writeHead(status, { "content-type": "text/plain" }).end(text);
    };
    if ("tcpSocket" in probe) {
      const s = net.connect({ host, port: probe.tcpSocket.port, timeout: timeoutMs });
      s.once("connect", () => (s.destroy(), answer(200, "ok\n")));
      s.once("timeout", () => (s.destroy(), answer(503, "timeout\n")));
      s.once("error", (e) => answer(503, `${e.message}\n`));
      return true;
    }
    const g = probe.httpGet;
    const headers: Record<string, string> = { "user-agent": "kube-probe (via tenet-enforcer)" };
    for (const h of g.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
    const lib = g.scheme === "HTTPS" ? https : http;
    // Like the kubelet: HTTPS probes do not verify the app's certificate.
    const req = lib.request({ host, port: g.port, path: g.path, method: "GET", headers, timeout: timeoutMs, rejectUnauthorized: false, agent: false }, (r) => {
      r.resume();
      const status = r.statusCode ?? 503;
      answer(status, `app answered ${status}\n`);
    });
    req.once("timeout", () => req.destroy(new Error("timeout")));
    req.once("error", (e) => answer(503, `${e.message}\n`));
    req.end();
    return true;
  };
}
