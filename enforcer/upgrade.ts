// WebSocket upgrades (RFC 6455 over HTTP/1.1), shared by the destination's inbound port and the
// explicit outbound proxy. The upgrade request is an ordinary request until the 101: it is checked
// (websocket only, GET, no body; oversized heads never get here, the HTTP parser answers 431) and
// authorized by the caller like any other, then sent on with its Connection/Upgrade and
// Sec-WebSocket-* headers. A 101 is relayed as the app wrote it (Sec-WebSocket-Accept is the
// app's and the client's business: the enforcer does not speak WebSocket, it carries it) and the
// bytes are piped both ways; any other answer is relayed and the connection closed, so nothing
// the caller sends after a refused upgrade reaches the app unauthorized.
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { forwardHeaders } from "./headers.ts";

export interface UpgradeProblem {
  status: number;
  reason: string;
  message: string;
}

/** Why an upgrade request is not one Tenet carries; undefined when it is a plain WebSocket upgrade. */
export function checkUpgrade(req: http.IncomingMessage): UpgradeProblem | undefined {
  const value = String(req.headers.upgrade ?? "").trim().toLowerCase();
  if (value !== "websocket") {
    return { status: 501, reason: "UpgradeNotSupported", message: `only "Upgrade: websocket" is carried${value.startsWith("h2c") ? "; speak HTTP/2 with prior knowledge (h2c) instead of upgrading" : ""}` };
  }
  if (req.method !== "GET") return { status: 400, reason: "MalformedUpgrade", message: "a WebSocket upgrade must be a GET (RFC 6455 §4.1)" };
  const len = req.headers["content-length"];
  if (req.headers["transfer-encoding"] !== undefined || (len !== undefined && len !== "0")) return { status: 400, reason: "UpgradeWithBody", message: "a WebSocket upgrade request carries no body" };
  if (!req.headers["sec-websocket-key"]) return { status: 400, reason: "MalformedUpgrade", message: "a WebSocket upgrade needs Sec-WebSocket-Key" };
  return undefined;
}

/** Request headers to send on: hop-by-hop and `drop` removed as for any request, the upgrade put back. */
export function upgradeHeaders(raw: string[], extra?: [string, string], drop?: ReadonlySet<string>): string[] {
  return [...forwardHeaders(raw, extra, drop), "Connection", "Upgrade", "Upgrade", "websocket"];
}

/** An HTTP/1.1 error written straight on a socket that left the HTTP server (upgrade, CONNECT). */
export function writeRefusal(socket: Duplex, status: number, reason: string, message: string) {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify({ error: { reason, message } });
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export interface UpgradeOutcome {
  /** The status the caller got: 101, the app's refusal, or 0 when the upstream failed before answering. */
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** Milliseconds until the upstream answered. */
  latencyMs: number;
  durationMs: number;
  error?: Error;
}

const head = (status: number, message: string | undefined, raw: string[]) => {
  let s = `HTTP/1.1 ${status} ${message || http.STATUS_CODES[status] || ""}\r\n`;
  for (let i = 0; i < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return s;
};

/**
 * Send the upgrade request upstream (`request`: http or https options) and carry the answer back on
 * `client`; `done` once, when both sides are closed (or the upstream failed: then nothing was
 * written to the client, and the caller answers it).
 */
export function relayUpgrade(client: Duplex, clientHead: Buffer, secure: boolean, request: http.RequestOptions, done: (o: UpgradeOutcome) => void) {
  const started = performance.now();
  let answered = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let finished = false;
  const finish = (status: number, error?: Error) => {
    if (finished) return;
    finished = true;
    const now = performance.now();
    done({ status, bytesIn, bytesOut, latencyMs: Math.round(((answered || now) - started) * 1000) / 1000, durationMs: Math.round(now - started), error });
  };
  const up = (secure ? https : http).request(request);
  client.on("error", () => client.destroy());
  up.on("upgrade", (res, upstream, upHead) => {
    answered = performance.now();
    upstream.on("error", () => upstream.destroy());
    const end = () => {
      client.destroy();
      upstream.destroy();
      finish(101);
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("data", (c: Buffer) => (bytesIn += c.length));
    upstream.on("data", (c: Buffer) => (bytesOut += c.length));
    client.write(head(101, res.statusMessage, res.rawHeaders) + "\r\n");
    if (upHead.length) {
      bytesOut += upHead.length;
      client.write(upHead);
    }
    if (clientHead.length) {
      bytesIn += clientHead.length;
      upstream.write(clientHead);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  up.on("response", (res) => {
    // Not upgraded: relay the answer, then close (close-delimited if the app gave no length).
    answered = performance.now();
    const status = res.statusCode ?? 502;
    client.write(head(status, res.statusMessage, forwardHeaders(res.rawHeaders)) + "connection: close\r\n\r\n");
    res.pipe(client, { end: false });
    res.on("end", () => (client as Duplex & { destroySoon?: () => void }).destroySoon?.() ?? client.end());
    res.on("error", () => client.destroy());
    client.once("close", () => finish(status));
  });
  up.on("error", (err) => {
    if (answered) return void client.destroy();
    finish(0, err);
  });
  client.once("close", () => {
    if (!answered) up.destroy();
  });
  up.end();
}
