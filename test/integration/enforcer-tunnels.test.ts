// WebSocket upgrades and CONNECT tunnels through real enforcer processes (static mode, real mTLS):
// a caller enforcer ("frontend": explicit proxy, TENET_PEERS) and a destination enforcer ("orders")
// in front of a WebSocket echo app, an h2c gRPC-style app and a TCP echo app. The captured path
// runs the capture outbound listener in process (only the kernel's SO_ORIGINAL_DST answer is
// supplied by the test: there are no iptables on loopback). Hostile cases on both enforcers.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { pino } from "pino";
import { createCaptureOutbound } from "../../enforcer/capture.ts";
import { createMetrics } from "../../enforcer/metrics.ts";
import { EnforcerProcess, killAllEnforcers, leafFor, newCA, staticDir } from "../harness/enforcer.ts";
import { waitFor } from "../harness/exec.ts";
import { acceptFor, frame, grpc, h2App, tcpApp, upgradeRequest, WireReader, wsEchoApp } from "../harness/ws.ts";

const spiffe = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

/** A socket to the explicit proxy after a CONNECT: the proxy's answer, and the socket if it said 200. */
async function connectVia(proxyPort: number, authority: string, extra = "") {
  const s = net.connect(proxyPort, "127.0.0.1");
  const r = new WireReader(s);
  s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${extra}\r\n`);
  // On the answer's arrival, not on a poll: the client of a tunnel speaks at once.
  const a = await new Promise<{ status: number; head: string; body: string }>((resolve) => {
    const check = () => {
      const x = r.answer(true) ?? (r.closed ? { status: 0, head: "", body: "" } : undefined);
      if (!x) return;
      s.removeListener("data", check).removeListener("close", check);
      resolve(x);
    };
    s.on("data", check).on("close", check);
  });
  return { ...a, socket: s, reader: r };
}

describe("enforcer: WebSocket upgrades and CONNECT tunnels between enforcers over mTLS", function () {
  this.timeout(60_000);
  const ca = newCA();
  let ws: Awaited<ReturnType<typeof wsEchoApp>>;
  let h2: Awaited<ReturnType<typeof h2App>>;
  let tcp: Awaited<ReturnType<typeof tcpApp>>;
  let outside: Awaited<ReturnType<typeof tcpApp>>;
  let orders: EnforcerProcess;
  let frontend: EnforcerProcess;
  let frontendDir: string;
  const frontendLeaf = leafFor(ca, spiffe("frontend"));
  const sockets: { destroy(): void }[] = [];
  /** A non-loopback address of this machine: a destination outside the mesh. */
  const external = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal)?.address;
  const mesh = (egress: "allow" | "deny") => ({ version: "none", policies: [], mesh: { version: `m-${egress}`, inbound: "strict", egress, ids: [], services: {}, pods: {} } });

  /** A raw mTLS connection to orders' inbound port for app port `port`, with frontend's certificate. */
  const mtls = (port: number, alpn = "http/1.1", leaf = frontendLeaf) => {
    const s = tls.connect({ host: "127.0.0.1", port: orders.inboundPort, ca: ca.certPem, key: leaf.key, cert: leaf.cert, servername: `${port}.port.tenet`, ALPNProtocols: [alpn], checkServerIdentity: () => undefined });
    sockets.push(s);
    return s;
  };
  const upgradeOn = async (s: net.Socket | tls.TLSSocket, head: string) => {
    const r = new WireReader(s);
    s.write(head);
    return { reader: r, answer: await waitFor("the answer to the upgrade", () => r.answer() ?? (r.closed ? { status: 0, head: "", body: "" } : undefined)) };
  };

  before(async () => {
    ws = await wsEchoApp();
    h2 = await h2App();
    tcp = await tcpApp();
    if (external) outside = await tcpApp(external);
    const policy = {
      version: "tunnels",
      policies: [
        {
          namespace: "shop",
          name: "orders",
          spec: {
            selector: {},
            apis: [
              { name: "ws", paths: ["/ws/**"], methods: { GET: "read" } },
              { name: "ws-admin", paths: ["/admin/**"], methods: { GET: "admin" } },
              { name: "orders-read", paths: ["/orders.v1.Orders/GetOrder"], methods: { POST: "read" } },
              { name: "orders-admin", paths: ["/orders.v1.Orders/DeleteOrder"], methods: { POST: "admin" } },
              { name: "echo", paths: [`/tcp/${tcp.port}`], methods: { CONNECT: "connect" } },
            ],
            rules: [{ name: "frontend", from: [{ spiffeIDs: [spiffe("frontend")] }], to: [{ api: "ws" }, { api: "orders-read" }, { api: "echo" }] }],
          },
        },
      ],
    };
    orders = await EnforcerProcess.start("orders-tunnels", { TENET_ENFORCER_STATIC_DIR: staticDir(ca, spiffe("orders"), policy).dir, TENET_APP_PORT: String(ws.port), TENET_MAX_HEADER_BYTES: "8192", TENET_SIGNALS: "off" });
    const d = staticDir(ca, spiffe("frontend"), mesh("allow"));
    frontendDir = d.dir;
    writeFileSync(path.join(d.dir, "key.pem"), frontendLeaf.key);
    writeFileSync(path.join(d.dir, "cert.pem"), frontendLeaf.cert);
    // Everything on 127.0.0.1 (and "localhost") is the orders enforcer, on its inbound port.
    frontend = await EnforcerProcess.start("frontend-tunnels", {
      TENET_ENFORCER_STATIC_DIR: d.dir,
      TENET_PEERS: JSON.stringify({ "127.0.0.1": spiffe("orders"), localhost: spiffe("orders") }),
      TENET_PEER_PORT: String(orders.inboundPort),
      TENET_REFRESH_SECONDS: "1",
      TENET_MAX_HEADER_BYTES: "8192",
      TENET_SIGNALS: "off",
    });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await killAllEnforcers();
    await ws.close();
    h2.server.close();
    tcp.server.close();
    outside?.server.close();
  });

  it("carries a WebSocket through the explicit proxy: authorized at the destination before the 101, echoed both ways, one audit record each side with bytes and duration", async () => {
    const s = net.connect(frontend.outboundPort, "127.0.0.1");
    sockets.push(s);
    const { head, key } = upgradeRequest(`http://127.0.0.1:${ws.port}/ws/chat`, `127.0.0.1:${ws.port}`, { "x-tenet-caller": spiffe("admin") });
    const { reader, answer } = await upgradeOn(s, head);
    assert.equal(answer.status, 101, answer.head + answer.body);
    assert.match(answer.head, new RegExp(`sec-websocket-accept: ${acceptFor(key).replace(/[+/]/g, "\\$&")}`, "i"), "the app's handshake answer is relayed");
    s.write(frame("hello", { mask: true }));
    s.write(frame("again", { mask: true }));
    await waitFor("two echoes", () => reader.frames().length === 2);
    assert.deepEqual(reader.texts, [`${spiffe("frontend")} says hello`, `${spiffe("frontend")} says again`], "the app saw the caller from the certificate, not the spoofed header");
    s.end(frame("", { mask: true, opcode: 8 }));
    await waitFor("the close", () => reader.closed);
    const inbound = await waitFor("the destination's record", () => orders.audit().find((r) => r.protocol === "websocket" && r.path === "/ws/chat"));
    assert.deepEqual([inbound.decision, inbound.reason, inbound.status, inbound.caller, inbound.method, inbound.api], ["allow", "Allowed", 101, spiffe("frontend"), "GET", "ws"]);
    assert.ok(inbound.bytesIn > 0 && inbound.bytesOut > 0 && inbound.durationMs >= 0, JSON.stringify(inbound));
    const outbound = await waitFor("the caller's record", () => frontend.audit().find((r) => r.protocol === "websocket"));
    assert.deepEqual([outbound.decision, outbound.status, outbound.destination, outbound.path], ["allow", 101, `127.0.0.1:${ws.port}`, "/ws/chat"]);
    assert.ok(outbound.bytesOut > 0);
    assert.equal(orders.audit().filter((r) => r.protocol === "websocket" && r.path === "/ws/chat").length, 1, "one record per upgrade");
  });

  it("refuses an upgrade the APIPolicy does not allow (the app never sees it) and relays an app's refusal, then closes", async () => {
    const seen = ws.upgrades.length;
    const s = net.connect(frontend.outboundPort, "127.0.0.1");
    sockets.push(s);
    const { answer } = await upgradeOn(s, upgradeRequest(`http://127.0.0.1:${ws.port}/admin/live`, "orders").head);
    assert.equal(answer.status, 403);
    assert.equal(JSON.parse(answer.body).error.reason, "NoRuleAllows");
    assert.equal(ws.upgrades.length, seen, "never reached the app");
    await waitFor("the denial", () => orders.audit().find((r) => r.protocol === "websocket" && r.path === "/admin/live" && r.decision === "deny" && r.reason === "NoRuleAllows"));

    // Allowed, but the app says no: relayed, and the connection closed (nothing more reaches the app).
    const t = mtls(ws.port);
    const refused = await upgradeOn(t, upgradeRequest("/ws/refuse", "orders").head);
    assert.equal(refused.answer.status, 403);
    await waitFor("the close", () => refused.reader.closed);
  });

  it("carries a captured app's WebSocket (a stock client, no proxy setting) to the destination's enforcer", async () => {
    const outAudit: any[] = [];
    const cfg: any = { inboundPort: 1, healthPort: 2, outboundPort: 3, captureInboundPort: 4, captureOutboundPort: 5, sniffMs: 100, peerPort: orders.inboundPort, peers: new Map([["127.0.0.1", { spiffeID: spiffe("orders") }]]) };
    const capture = createCaptureOutbound({
      cfg, mesh: () => undefined, trust: { isRevoked: () => false } as any, audit: { write: (r) => outAudit.push(r), flush() {} }, metrics: createMetrics(), log: pino({ level: "silent" }),
      origDst: () => ({ address: "127.0.0.1", port: ws.port, family: 4 }), self: () => ({ spiffeID: spiffe("frontend"), attributes: {} }),
    });
    capture.setTLS({ key: frontendLeaf.key, cert: frontendLeaf.cert, ca: ca.certPem });
    await new Promise<void>((r) => capture.server.listen(0, "127.0.0.1", r));
    try {
      const client = new WebSocket(`ws://127.0.0.1:${(capture.server.address() as AddressInfo).port}/ws/captured`);
      const got: string[] = [];
      client.onmessage = (e) => got.push(String(e.data));
      await new Promise<void>((resolve, reject) => ((client.onopen = () => resolve()), (client.onerror = () => reject(new Error("the WebSocket did not open")))));
      client.send("from a stock client");
      await waitFor("the echo", () => got.length === 1);
      assert.equal(got[0], `${spiffe("frontend")} says from a stock client`);
      client.close();
      const rec = await waitFor("the destination's record", () => orders.audit().find((r) => r.path === "/ws/captured"));
      assert.deepEqual([rec.protocol, rec.decision, rec.status, rec.caller], ["websocket", "allow", 101, spiffe("frontend")]);
      assert.deepEqual(outAudit.map((r) => [r.protocol, r.method, r.path, r.reason]), [["http/1.1", "GET", "/ws/captured", "MeshedByPeers"]]);
    } finally {
      capture.server.close();
    }
  });

  it("refuses hostile upgrades at the destination: h2c, a body, not GET, no key, oversized headers, no client certificate", async () => {
    const before = ws.upgrades.length;
    const cases: [string, string, number, string][] = [
      ["h2c", "GET /ws/x HTTP/1.1\r\nHost: o\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", 501, "UpgradeNotSupported"],
      ["a body", upgradeRequest("/ws/x", "o", { "Content-Length": "5" }).head + "hello", 400, "UpgradeWithBody"],
      ["POST", upgradeRequest("/ws/x", "o").head.replace(/^GET/, "POST"), 400, "MalformedUpgrade"],
      ["no key", "GET /ws/x HTTP/1.1\r\nHost: o\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400, "MalformedUpgrade"],
      ["oversized headers", upgradeRequest("/ws/x", "o", { "x-big": "a".repeat(9000) }).head, 431, "HeadersTooLarge"],
      ["dot segments", upgradeRequest("/ws/../admin/live", "o").head, 403, "NoRuleAllows"],
      ["a path parameter", upgradeRequest("/ws/..;/admin/live", "o").head, 400, "BadPath"],
    ];
    for (const [what, head, status, reason] of cases) {
      const { answer } = await upgradeOn(mtls(ws.port), head);
      assert.equal(answer.status, status, `${what}: ${answer.head}`);
      assert.equal(JSON.parse(answer.body).error.reason, reason, what);
    }
    await waitFor("the records", () => ["UpgradeNotSupported", "UpgradeWithBody", "MalformedUpgrade", "HeadersTooLarge"].every((x) => orders.audit().some((r) => r.reason === x)));
    // No client certificate: cut at the TLS layer, no answer at all.
    const anon = tls.connect({ host: "127.0.0.1", port: orders.inboundPort, ca: ca.certPem, checkServerIdentity: () => undefined });
    sockets.push(anon);
    const { answer } = await upgradeOn(anon, upgradeRequest("/ws/chat", "o").head);
    assert.equal(answer.status, 0, "no HTTP answer without a certificate");
    assert.equal(ws.upgrades.length, before, "none reached the app");
    // Through the proxy: an h2c upgrade is refused by the caller's enforcer already.
    const viaProxy = net.connect(frontend.outboundPort, "127.0.0.1");
    sockets.push(viaProxy);
    const h2c = await upgradeOn(viaProxy, `GET http://127.0.0.1:${ws.port}/ws/x HTTP/1.1\r\nHost: o\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`);
    assert.equal(h2c.answer.status, 501);
  });

  it("carries CONNECT tunnels as captured connections: gRPC (h2c inside) decided per method, a WebSocket by host name, opaque TCP by /tcp/<port>", async () => {
    const t = await connectVia(frontend.outboundPort, `127.0.0.1:${h2.port}`);
    assert.equal(t.status, 200, t.head);
    t.reader.release();
    const session = http2.connect(`http://127.0.0.1:${h2.port}`, { createConnection: () => t.socket });
    session.on("error", () => {});
    sockets.push(session);
    const ok = await grpc(session, "/orders.v1.Orders/GetOrder");
    assert.equal(ok.grpc, 0);
    assert.equal(JSON.parse(ok.body).caller, spiffe("frontend"));
    const denied = await grpc(session, "/orders.v1.Orders/DeleteOrder");
    assert.equal(denied.grpc, 7, "PERMISSION_DENIED, decided at the destination per stream");
    await waitFor("per-stream records", () => orders.audit().filter((r) => r.protocol === "grpc" && r.path?.startsWith("/orders.v1.Orders/")).length === 2);
    const out = await waitFor("the tunnel's record", () => frontend.audit().find((r) => r.detail === `CONNECT 127.0.0.1:${h2.port}`));
    assert.deepEqual([out.method, out.protocol, out.decision, out.reason, out.peer], [undefined, "h2", "allow", "MeshedByPeers", spiffe("orders")]);

    // A host name (resolved by the enforcer), a WebSocket inside.
    const w = await connectVia(frontend.outboundPort, `localhost:${ws.port}`);
    assert.equal(w.status, 200);
    const up = await upgradeOn(w.socket, upgradeRequest("/ws/tunnelled", `localhost:${ws.port}`).head);
    assert.equal(up.answer.status, 101);
    w.socket.write(frame("through CONNECT", { mask: true }));
    await waitFor("the echo", () => up.reader.frames().length === 1);
    assert.equal(up.reader.texts[0], `${spiffe("frontend")} says through CONNECT`);

    // Opaque TCP: granted as CONNECT /tcp/<port>.
    const c = await connectVia(frontend.outboundPort, `127.0.0.1:${tcp.port}`);
    assert.equal(c.status, 200);
    c.socket.write("PING\r\n");
    await waitFor("the echo", () => c.reader.buf.toString().includes("echo: PING"));
    await waitFor("the record", () => orders.audit().find((r) => r.path === `/tcp/${tcp.port}` && r.decision === "allow"));
    for (const x of [w.socket, c.socket]) x.destroy();
  });

  it("refuses hostile CONNECTs: malformed authorities, the enforcer's own ports, loopback outside the mesh, a body, oversized headers", async () => {
    for (const authority of ["/etc/passwd", "user@127.0.0.1:80", "127.0.0.1", "127.0.0.1:99999", "[::1]x:80", "a..b:80"]) {
      const r = await connectVia(frontend.outboundPort, authority);
      assert.equal(r.status, 400, `${authority}: ${r.head}`);
      assert.equal(JSON.parse(r.body).error.reason, "MalformedAuthority", authority);
    }
    for (const authority of [`127.0.0.1:${frontend.outboundPort}`, `localhost:${frontend.healthPort}`, `[::1]:${frontend.inboundPort}`, `127.0.0.2:${tcp.port}`, `0.0.0.0:${tcp.port}`]) {
      const r = await connectVia(frontend.outboundPort, authority);
      assert.equal(r.status, 403, `${authority}: ${r.head}`);
      assert.equal(JSON.parse(r.body).error.reason, "ForbiddenTarget", authority);
    }
    const body = await connectVia(frontend.outboundPort, `127.0.0.1:${tcp.port}`, "Content-Length: 4\r\n");
    assert.equal(body.status, 400);
    const big = await connectVia(frontend.outboundPort, `127.0.0.1:${tcp.port}`, `x-big: ${"a".repeat(9000)}\r\n`);
    assert.equal(big.status, 431);
    assert.equal(JSON.parse(big.body).error.reason, "HeadersTooLarge");
    await waitFor("the oversized request's record", () => frontend.audit().find((r) => r.reason === "HeadersTooLarge" && r.direction === "outbound"));
    const recs = await waitFor("the records", () => {
      const r = frontend.audit().filter((x) => x.method === "CONNECT" && x.decision === "deny");
      return r.length >= 12 ? r : undefined;
    });
    assert.ok(recs.every((r) => r.destination.length <= 256 && (r.detail ?? "").length < 100), "bounded fields");
  });

  it("follows the workload's egress for CONNECT targets outside the mesh: allow passes through, deny refuses", async function () {
    if (!external) this.skip();
    const target = `${external}:${outside.port}`;
    const allowed = await connectVia(frontend.outboundPort, target);
    assert.equal(allowed.status, 200);
    allowed.socket.write("hi\n");
    await waitFor("the echo", () => allowed.reader.buf.toString().includes("echo: hi"));
    allowed.socket.destroy();
    await waitFor("the pass-through record", () => frontend.audit().find((r) => r.destination === target && r.reason === "PassThrough"));
    writeFileSync(path.join(frontendDir, "policy.json"), JSON.stringify(mesh("deny")));
    await frontend.waitForLog("the egress change", (l) => l.msg === "mesh destinations updated" && l.egress === "deny");
    const denied = await connectVia(frontend.outboundPort, target);
    assert.equal(denied.status, 403);
    assert.equal(JSON.parse(denied.body).error.reason, "EgressDenied");
    writeFileSync(path.join(frontendDir, "policy.json"), JSON.stringify(mesh("allow")));
  });
});
