// Revocation inside open connections, against a real destination enforcer process (static mode:
// the revocation list is its revocations.json, re-read every second as the operator's list is
// polled in a pod). A caller holds an opaque TCP tunnel, an HTTP/2 session, a keep-alive HTTP/1.1
// connection and a WebSocket open; once its serial is revoked, all four are closed by the
// destination, each closure audited (reason Revoked), and new attempts are refused. A certificate
// that expires while its connection is open is treated the same way.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import path from "node:path";
import tls from "node:tls";
import { EnforcerProcess, killAllEnforcers, leafFor, newCA, staticDir } from "../harness/enforcer.ts";
import { waitFor } from "../harness/exec.ts";
import { frame, grpc, h2App, tcpApp, upgradeRequest, WireReader, wsEchoApp } from "../harness/ws.ts";

const spiffe = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

describe("enforcer: a revoked or expired caller loses its open connections", function () {
  this.timeout(60_000);
  const ca = newCA();
  let ws: Awaited<ReturnType<typeof wsEchoApp>>;
  let h2: Awaited<ReturnType<typeof h2App>>;
  let tcp: Awaited<ReturnType<typeof tcpApp>>;
  let orders: EnforcerProcess;
  let dir: string;
  const closers: { destroy(): void }[] = [];
  const revoke = (serials: string[]) => writeFileSync(path.join(dir, "revocations.json"), JSON.stringify({ entries: serials.map((serial) => ({ serial })) }));

  const tlsTo = (port: number, alpn: string, leaf: { key: string; cert: string }) => {
    const s = tls.connect({ host: "127.0.0.1", port: orders.inboundPort, ca: ca.certPem, key: leaf.key, cert: leaf.cert, servername: `${port}.port.tenet`, ALPNProtocols: [alpn], checkServerIdentity: () => undefined });
    closers.push(s);
    return s;
  };
  /** An opaque TCP tunnel to the echo app, after one round trip. */
  const tunnel = async (leaf: { key: string; cert: string }) => {
    const s = tlsTo(tcp.port, "tenet-tcp", leaf);
    const r = new WireReader(s);
    s.write("ping");
    await waitFor("the echo or the close", () => r.buf.toString().includes("echo: ping") || r.closed);
    return { socket: s, reader: r, echoed: r.buf.toString().includes("echo: ping") };
  };
  const h2Session = (leaf: { key: string; cert: string }) => {
    const s = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, { ca: ca.certPem, key: leaf.key, cert: leaf.cert, servername: `${h2.port}.port.tenet`, checkServerIdentity: () => undefined });
    s.on("error", () => {});
    closers.push(s);
    return s;
  };
  const get = (agent: https.Agent, p: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = https.request({ host: "127.0.0.1", port: orders.inboundPort, path: p, agent, servername: `${ws.port}.port.tenet` }, (res) => {
        let b = "";
        res.on("data", (c) => (b += c)).on("end", () => resolve({ status: res.statusCode!, body: b }));
      });
      r.on("error", reject);
      r.end();
    });
  const agentFor = (leaf: { key: string; cert: string }) => new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem, key: leaf.key, cert: leaf.cert, checkServerIdentity: () => undefined });
  const websocket = async (leaf: { key: string; cert: string }) => {
    const s = tlsTo(ws.port, "http/1.1", leaf);
    const r = new WireReader(s);
    s.write(upgradeRequest("/ws/live", "orders").head);
    const answer = await waitFor("the answer", () => r.answer() ?? (r.closed ? { status: 0, head: "", body: "" } : undefined));
    return { socket: s, reader: r, status: answer.status };
  };

  before(async () => {
    ws = await wsEchoApp();
    h2 = await h2App();
    tcp = await tcpApp();
    const policy = {
      version: "revoke",
      policies: [
        {
          namespace: "shop",
          name: "orders",
          spec: {
            selector: {},
            apis: [
              { name: "web", paths: ["/ws/**"], methods: { GET: "read" } },
              { name: "grpc", paths: ["/orders.v1.Orders/*"], methods: { POST: "read" } },
              { name: "echo", paths: [`/tcp/${tcp.port}`], methods: { CONNECT: "connect" } },
            ],
            rules: [{ name: "frontend", from: [{ spiffeIDs: [spiffe("frontend")] }], to: [{ api: "web" }, { api: "grpc" }, { api: "echo" }] }],
          },
        },
      ],
    };
    dir = staticDir(ca, spiffe("orders"), policy).dir;
    orders = await EnforcerProcess.start("orders-revoke", { TENET_ENFORCER_STATIC_DIR: dir, TENET_APP_PORT: String(ws.port), TENET_TRUST_REFRESH_SECONDS: "1", TENET_SIGNALS: "off" });
  });
  after(async () => {
    for (const c of closers) c.destroy();
    await killAllEnforcers();
    await ws.close();
    h2.server.close();
    tcp.server.close();
  });

  it("closes a revoked caller's TCP tunnel, HTTP/2 session, keep-alive connection and WebSocket, audits each closure, and refuses new attempts", async () => {
    const frontend = leafFor(ca, spiffe("frontend"));
    const bystander = leafFor(ca, spiffe("frontend"));
    // Open, and used once each.
    const t = await tunnel(frontend);
    assert.ok(t.echoed, "the tunnel carries bytes");
    const session = h2Session(frontend);
    assert.equal((await grpc(session, "/orders.v1.Orders/GetOrder")).grpc, 0);
    let goaway: number | undefined;
    session.on("goaway", (code) => (goaway = code));
    const agent = agentFor(frontend);
    closers.push(agent);
    assert.equal((await get(agent, "/ws/plain")).status, 200);
    const kept = Object.values(agent.freeSockets).flat()[0]!;
    assert.ok(kept, "a keep-alive connection is held");
    let keptClosed = false;
    kept.once("close", () => (keptClosed = true));
    const w = await websocket(frontend);
    assert.equal(w.status, 101);
    w.socket.write(frame("before", { mask: true }));
    await waitFor("the echo", () => w.reader.frames().length === 1);
    // Another certificate of the same workload, not revoked: its tunnel must stay open.
    const other = await tunnel(bystander);

    revoke([frontend.serial]);
    await waitFor("all four closed", () => t.reader.closed && session.destroyed && keptClosed && w.reader.closed);
    assert.equal(goaway, http2.constants.NGHTTP2_INADEQUATE_SECURITY, "the session ended with GOAWAY INADEQUATE_SECURITY");
    const closures = await waitFor("the closure records", () => {
      const r = orders.audit().filter((x) => x.reason === "Revoked");
      return r.length >= 4 ? r : undefined;
    });
    assert.deepEqual(closures.map((r) => r.protocol).sort(), ["h2", "http/1.1", "tcp", "websocket"]);
    assert.ok(closures.every((r) => r.caller === spiffe("frontend") && r.decision === "deny" && r.durationMs >= 0));
    assert.ok(!other.reader.closed, "a caller that is not revoked keeps its tunnel");
    other.socket.write("still");
    await waitFor("the bystander's echo", () => other.reader.buf.toString().includes("echo: still"));

    // New attempts: refused on every protocol.
    assert.equal((await tunnel(frontend)).echoed, false, "a new tunnel is cut");
    assert.equal((await grpc(h2Session(frontend), "/orders.v1.Orders/GetOrder")).grpc, 7);
    const fresh = agentFor(frontend);
    closers.push(fresh);
    const r = await get(fresh, "/ws/plain");
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).error.reason, "CertificateRevoked");
    assert.equal((await websocket(frontend)).status, 403);
    await waitFor("the refusals", () => orders.audit().filter((x) => x.reason === "CertificateRevoked").length >= 4);
    assert.deepEqual(
      orders.audit().filter((x) => x.reason === "CertificateRevoked").map((x) => x.protocol ?? "http/1.1").sort(),
      ["grpc", "http/1.1", "tcp", "websocket"],
    );
    revoke([]);
  });

  it("closes an open tunnel when the caller's certificate expires", async () => {
    const shortLived = leafFor(ca, spiffe("frontend"), { ttlSeconds: 3 });
    const t = await tunnel(shortLived);
    assert.ok(t.echoed);
    await waitFor("the tunnel to close at expiry", () => t.reader.closed, 20_000);
    const rec = await waitFor("the closure record", () => orders.audit().find((x) => x.reason === "CertificateExpired" && x.protocol === "tcp" && x.detail?.startsWith("open connection closed")));
    assert.equal(rec.caller, spiffe("frontend"));
  });

  it("holds one caller to TENET_MAX_CONNECTIONS_PER_CALLER open connections, audits the refusal, and frees a place on close", async () => {
    const limited = await EnforcerProcess.start("orders-limited", { TENET_ENFORCER_STATIC_DIR: dir, TENET_APP_PORT: String(ws.port), TENET_SIGNALS: "off", TENET_MAX_CONNECTIONS_PER_CALLER: "2" });
    const greedy = leafFor(ca, spiffe("frontend"));
    const open = async (leaf: { key: string; cert: string }) => {
      const s = tls.connect({ host: "127.0.0.1", port: limited.inboundPort, ca: ca.certPem, key: leaf.key, cert: leaf.cert, servername: `${tcp.port}.port.tenet`, ALPNProtocols: ["tenet-tcp"], checkServerIdentity: () => undefined });
      closers.push(s);
      const r = new WireReader(s);
      s.write("ping");
      await waitFor("the echo or the close", () => r.buf.toString().includes("echo: ping") || r.closed);
      return { socket: s, echoed: r.buf.toString().includes("echo: ping") };
    };
    const [first, second] = [await open(greedy), await open(greedy)];
    assert.ok(first.echoed && second.echoed, "two tunnels are within the limit");
    assert.equal((await open(greedy)).echoed, false, "the third is cut");
    assert.ok((await open(leafFor(ca, spiffe("frontend")))).echoed, "another certificate has its own allowance");
    const rec = await waitFor("the refusal record", () => limited.audit().find((x) => x.reason === "TooManyConnections"));
    assert.equal(rec.caller, spiffe("frontend"));
    assert.match(rec.detail, /maximum of 2 open connections \(TENET_MAX_CONNECTIONS_PER_CALLER\)/);
    first.socket.destroy();
    await waitFor("a place freed", async () => (await open(greedy)).echoed, 10_000, 200);
  });
});

