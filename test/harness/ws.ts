// Apps for the enforcer's tunnel tests (WebSocket, h2c, TCP echo). Just enough WebSocket (RFC 6455), written here so the tests need no
// package: an echo app that does the real handshake (Sec-WebSocket-Accept) and echoes text frames,
// and a client side (masked frames over any duplex socket) for paths no stock client can take
// (an explicit proxy, a chosen client certificate).
import crypto from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const acceptFor = (key: string) => crypto.createHash("sha1").update(key + GUID).digest("base64");

/** One frame: FIN + opcode, masked when `mask` (client to server), payload < 64 KiB. */
export function frame(payload: string | Buffer, opts: { mask?: boolean; opcode?: number } = {}): Buffer {
  const data = Buffer.from(payload);
  const len = data.length < 126 ? [data.length] : [126, data.length >> 8, data.length & 0xff];
  const head = Buffer.from([0x80 | (opts.opcode ?? 1), (opts.mask ? 0x80 : 0) | len[0], ...len.slice(1)]);
  if (!opts.mask) return Buffer.concat([head, data]);
  const key = crypto.randomBytes(4);
  return Buffer.concat([head, key, Buffer.from(data.map((b, i) => b ^ key[i % 4]))]);
}

/** Frames in `buf` (complete ones), unmasked; `rest` is what is left for the next read. */
export function parseFrames(buf: Buffer): { frames: { opcode: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const masked = (buf[off + 1] & 0x80) !== 0;
    let len = buf[off + 1] & 0x7f;
    let p = off + 2;
    if (len === 126) {
      if (buf.length < p + 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    }
    const key = masked ? buf.subarray(p, p + 4) : undefined;
    if (masked) p += 4;
    if (buf.length < p + len) break;
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i % 4];
    frames.push({ opcode: buf[off] & 0x0f, payload });
    off = p + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** A WebSocket echo app (plain requests get their path and caller as JSON): answers "<caller> says <text>" to every text frame, on any path. */
export async function wsEchoApp() {
  const upgrades: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ plain: req.url, caller: req.headers["x-tenet-caller"] ?? null })));
  const open = new Set<Duplex>();
  server.on("upgrade", (req, socket: Duplex) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
    upgrades.push({ url: req.url!, headers: req.headers });
    const key = String(req.headers["sec-websocket-key"] ?? "");
    if (req.url?.startsWith("/ws/refuse")) return void socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 5\r\n\r\nnope\n");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`);
    let buf: Buffer = Buffer.alloc(0);
    socket.on("data", (c: Buffer) => {
      const r = parseFrames(Buffer.concat([buf, c]));
      buf = r.rest;
      for (const f of r.frames) {
        if (f.opcode === 8) return void socket.end(frame(Buffer.alloc(0), { opcode: 8 }));
        if (f.opcode === 1) socket.write(frame(`${req.headers["x-tenet-caller"] ?? "nobody"} says ${f.payload}`));
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, upgrades, close: () => (server.closeAllConnections(), open.forEach((s) => s.destroy()), new Promise<void>((r) => server.close(() => r()))) };
}

/** The upgrade request head (client side). */
export function upgradeRequest(target: string, host: string, extra: Record<string, string> = {}, key = crypto.randomBytes(16).toString("base64")) {
  const lines = [`GET ${target} HTTP/1.1`, `Host: ${host}`, "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${key}`, "Sec-WebSocket-Version: 13", ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`)];
  return { head: lines.join("\r\n") + "\r\n\r\n", key };
}

/** Reads from a socket: the HTTP answer head, then frames; everything the peer sent, and whether it closed. */
export class WireReader {
  buf: Buffer = Buffer.alloc(0);
  closed = false;
  private readonly onData = (c: Buffer) => (this.buf = Buffer.concat([this.buf, c]));
  constructor(readonly socket: Duplex) {
    socket.on("data", this.onData);
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => {});
  }
  /** Stop reading (another reader, e.g. an HTTP/2 session, takes the socket over). */
  release() {
    this.socket.removeListener("data", this.onData);
  }
  /** The status and head of the HTTP answer, once complete; the head is consumed (a 101, or a 2xx to CONNECT, has no body). */
  answer(tunnel = false): { status: number; head: string; body: string } | undefined {
    const i = this.buf.indexOf("\r\n\r\n");
    if (i < 0) return undefined;
    const head = this.buf.subarray(0, i).toString("latin1");
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const bodiless = status === 101 || (tunnel && status >= 200 && status < 300);
    if (!bodiless && !this.closed) {
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? -1);
      if (len < 0 || this.buf.length < i + 4 + len) return undefined;
    }
    const body = bodiless ? "" : this.buf.subarray(i + 4).toString("utf8");
    this.buf = bodiless ? this.buf.subarray(i + 4) : Buffer.alloc(0);
    return { status, head, body };
  }
  /** Every text frame received so far (after the answer was read). */
  readonly texts: string[] = [];
  frames(): string[] {
    const r = parseFrames(this.buf);
    this.buf = r.rest;
    for (const f of r.frames) if (f.opcode === 1) this.texts.push(f.payload.toString());
    return this.texts;
  }
}

/** An h2c app answering every stream with its path and caller, grpc-status 0. */
export async function h2App() {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(JSON.stringify({ path: headers[":path"], caller: headers["x-tenet-caller"] ?? null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A TCP echo app ("echo: <bytes>"), on `host`. */
export async function tcpApp(host = "127.0.0.1") {
  const server = net.createServer((s) => s.on("data", (c) => s.write(`echo: ${c}`)).on("error", () => s.destroy()));
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as AddressInfo).port };
}

export function grpc(session: http2.ClientHttp2Session, p: string): Promise<{ grpc: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": p, "content-type": "application/grpc", te: "trailers" });
    let h: http2.IncomingHttpHeaders = {};
    let t: http2.IncomingHttpHeaders = {};
    let body = "";
    req.on("response", (x) => (h = x));
    req.on("trailers", (x) => (t = x));
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => resolve({ grpc: Number(t["grpc-status"] ?? h["grpc-status"]), body }));
    req.on("error", reject);
    req.end();
  });
}

