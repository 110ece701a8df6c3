// HTTP/2 and gRPC through the mesh: a real destination enforcer process (static mode, real mTLS)
// in front of a real h2c gRPC-style app, called (a) by a caller's capture outbound listener
// carrying an app's h2c connection (in process: only the kernel's SO_ORIGINAL_DST answer is
// supplied by the test, there are no iptables on loopback) and (b) directly over h2 with chosen
// client certificates, for the hostile cases. APIPolicy matches gRPC methods as paths.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import path from "node:path";
import crypto from "node:crypto";
import { exportJWK, SignJWT } from "jose";
import { pino } from "pino";
import { createCaptureOutbound } from "../../enforcer/capture.ts";
import { createMetrics } from "../../enforcer/metrics.ts";
import { EnforcerProcess, killAllEnforcers, leafFor, newCA, staticDir } from "../harness/enforcer.ts";
import { waitFor } from "../harness/exec.ts";

const spiffe = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

/** A gRPC message: 1 byte compressed flag, 4 bytes big-endian length, the bytes. */
const frame = (payload: string) => {
  const b = Buffer.from(payload);
  const h = Buffer.alloc(5);
  h.writeUInt32BE(b.length, 1);
  return Buffer.concat([h, b]);
};

/** A tiny h2c "gRPC service": echoes the method and the caller it was told, grpc-status 0. */
async function grpcApp() {
  const seen: { path: string; headers: http2.IncomingHttpHeaders }[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      seen.push({ path: String(headers[":path"]), headers });
      const body = Buffer.concat(chunks);
      const got = body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)).toString() : "";
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "OK" }));
      stream.end(frame(JSON.stringify({ method: headers[":path"], caller: headers["x-tenet-caller"] ?? null, got })));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

interface Call {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  grpc?: number;
}

function call(session: http2.ClientHttp2Session, p: string, headers: Record<string, string> = {}, payload = "hello"): Promise<Call> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": p, "content-type": "application/grpc", te: "trailers", ...headers });
    let h: http2.IncomingHttpHeaders = {};
    let t: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (x) => (h = x));
    req.on("trailers", (x) => (t = x));
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const g = t["grpc-status"] ?? h["grpc-status"];
      resolve({ status: Number(h[":status"]), headers: h, trailers: t, body: Buffer.concat(chunks), grpc: g === undefined ? undefined : Number(g) });
    });
    req.on("error", reject);
    req.end(frame(payload));
  });
}

const message = (c: Call) => JSON.parse(c.body.subarray(5).toString());

describe("enforcer: HTTP/2 and gRPC between two enforcers over mTLS", function () {
  this.timeout(60_000);
  const ca = newCA();
  let app: Awaited<ReturnType<typeof grpcApp>>;
  let orders: EnforcerProcess;
  let dir: string;
  let jwtKey: crypto.KeyObject;
  const sessions: http2.ClientHttp2Session[] = [];

  const connect = (leaf: { key: string; cert: string }, opts: http2.SecureClientSessionOptions = {}) => {
    const s = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, { ca: ca.certPem, key: leaf.key, cert: leaf.cert, servername: `${app.port}.port.tenet`, checkServerIdentity: () => undefined, ...opts });
    s.on("error", () => {});
    sessions.push(s);
    return s;
  };
  const records = (p: string) => orders.audit().filter((r) => r.path === p);

  before(async () => {
    app = await grpcApp();
    const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    jwtKey = privateKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    const policy = {
      version: "h2",
      policies: [
        {
          namespace: "shop",
          name: "orders",
          spec: {
            selector: {},
            apis: [
              // A gRPC method is a path /<package>.<Service>/<Method>, always POST.
              { name: "orders-read", paths: ["/orders.v1.Orders/GetOrder", "/orders.v1.Orders/ListOrders"], methods: { POST: "read" } },
              { name: "orders-admin", paths: ["/orders.v1.Orders/DeleteOrder"], methods: { POST: "admin" } },
              { name: "orders-refund", paths: ["/orders.v1.Orders/Refund"], methods: { POST: "refund" } },
              { name: "plain", paths: ["/healthz"], methods: { GET: "read" } },
            ],
            rules: [
              { name: "frontend-reads", from: [{ spiffeIDs: [spiffe("frontend")] }], to: [{ api: "orders-read" }, { api: "plain" }] },
              {
                name: "frontend-refunds-with-jwt",
                from: [{ spiffeIDs: [spiffe("frontend")] }],
                jwt: { issuer: "https://idp.example", audiences: ["orders"], jwks: JSON.stringify({ keys: [jwk] }), requiredScopes: ["orders:refund"] },
                to: [{ api: "orders-refund" }],
              },
            ],
          },
        },
      ],
    };
    const d = staticDir(ca, spiffe("orders"), policy);
    dir = d.dir;
    orders = await EnforcerProcess.start("orders-h2", { TENET_ENFORCER_STATIC_DIR: dir, TENET_APP_PORT: String(app.port), TENET_TRUST_REFRESH_SECONDS: "1", TENET_MAX_HEADER_BYTES: "8192", TENET_SIGNALS: "off" });
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await killAllEnforcers();
    app.server.close();
  });

  it("carries an app's captured h2c connection to the destination's enforcer: an allowed gRPC method passes, a denied one gets PERMISSION_DENIED, one audit record each", async () => {
    const frontend = leafFor(ca, spiffe("frontend"));
    const outAudit: any[] = [];
    const cfg: any = { inboundPort: 1, healthPort: 2, outboundPort: 3, captureInboundPort: 4, captureOutboundPort: 5, sniffMs: 100, peerPort: orders.inboundPort, peers: new Map([["127.0.0.1", { spiffeID: spiffe("orders") }]]) };
    const capture = createCaptureOutbound({
      cfg,
      mesh: () => undefined,
      trust: { isRevoked: () => false } as any,
      audit: { write: (r) => outAudit.push(r), flush() {} },
      metrics: createMetrics(),
      log: pino({ level: "silent" }),
      // What the kernel would say for the app's connect(127.0.0.1:<app port>) redirected here.
      origDst: () => ({ address: "127.0.0.1", port: app.port, family: 4 }),
      self: () => ({ spiffeID: spiffe("frontend"), attributes: {} }),
    });
    capture.setTLS({ key: frontend.key, cert: frontend.cert, ca: ca.certPem });
    await new Promise<void>((r) => capture.server.listen(0, "127.0.0.1", r));
    try {
      // The app speaks h2c (prior knowledge), as a gRPC client does, to what it thinks is the destination.
      const s = http2.connect(`http://127.0.0.1:${(capture.server.address() as AddressInfo).port}`);
      sessions.push(s);
      s.on("error", () => {});
      const ok = await call(s, "/orders.v1.Orders/GetOrder", {}, "order 42");
      assert.equal(ok.status, 200);
      assert.equal(ok.grpc, 0, JSON.stringify(ok.trailers));
      assert.deepEqual(message(ok), { method: "/orders.v1.Orders/GetOrder", caller: spiffe("frontend"), got: "order 42" });
      const again = await call(s, "/orders.v1.Orders/ListOrders");
      assert.equal(again.grpc, 0, "a second stream on the same connection");
      const denied = await call(s, "/orders.v1.Orders/DeleteOrder");
      assert.equal(denied.status, 200, "gRPC refusals are HTTP 200, trailers-only");
      assert.equal(denied.grpc, 7, "PERMISSION_DENIED");
      assert.match(decodeURIComponent(String(denied.headers["grpc-message"])), /NoRuleAllows/);
      assert.equal(app.seen.filter((x) => x.path === "/orders.v1.Orders/DeleteOrder").length, 0, "the app never saw the denied call");
      await waitFor("the audit records", () => records("/orders.v1.Orders/DeleteOrder").length === 1 && records("/orders.v1.Orders/ListOrders").length === 1);
      const [get] = records("/orders.v1.Orders/GetOrder");
      assert.deepEqual([get.decision, get.reason, get.caller, get.protocol, get.grpcStatus, get.method, get.api, get.scope], ["allow", "Allowed", spiffe("frontend"), "grpc", 0, "POST", "orders-read", "read"]);
      const [del] = records("/orders.v1.Orders/DeleteOrder");
      assert.deepEqual([del.decision, del.reason, del.grpcStatus, del.status], ["deny", "NoRuleAllows", 7, 200]);
      assert.deepEqual(outAudit.map((r) => [r.protocol, r.decision, r.reason, r.peer]), [["h2", "allow", "MeshedByPeers", spiffe("orders")]], "one outbound record per captured connection");
    } finally {
      capture.server.close();
    }
  });

  it("wants a JWT where a rule requires one: none → UNAUTHENTICATED (16), a good one passes; the token is never logged", async () => {
    const s = connect(leafFor(ca, spiffe("frontend")));
    const none = await call(s, "/orders.v1.Orders/Refund");
    assert.equal(none.grpc, 16);
    const token = await new SignJWT({ scope: "orders:refund" }).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer("https://idp.example").setAudience("orders").setIssuedAt().setExpirationTime("5m").sign(jwtKey);
    const good = await call(s, "/orders.v1.Orders/Refund", { authorization: `Bearer ${token}` });
    assert.equal(good.grpc, 0);
    await waitFor("records", () => records("/orders.v1.Orders/Refund").length === 2);
    assert.deepEqual(records("/orders.v1.Orders/Refund").map((r) => [r.reason, r.grpcStatus]), [["JWTMissing", 16], ["Allowed", 0]]);
    assert.ok(!JSON.stringify(orders.audit()).includes(token.split(".")[2]), "no token in the audit");
  });

  it("ignores a spoofed x-tenet-caller and strips override headers and connection headers", async () => {
    const s = connect(leafFor(ca, spiffe("frontend")));
    const r = await call(s, "/orders.v1.Orders/GetOrder", { "x-tenet-caller": spiffe("admin"), "x-http-method-override": "DELETE", "x-original-url": "/orders.v1.Orders/DeleteOrder" });
    assert.equal(r.grpc, 0);
    assert.equal(message(r).caller, spiffe("frontend"));
    const seen = app.seen.at(-1)!.headers;
    assert.equal(seen["x-tenet-caller"], spiffe("frontend"));
    assert.equal(seen["x-http-method-override"], undefined);
    assert.equal(seen["x-original-url"], undefined);
    assert.equal(seen.te, "trailers", "gRPC's te: trailers reaches the app");
  });

  it("refuses path tricks: ';' parameters and dot segments are decided and forwarded as normalized", async () => {
    const s = connect(leafFor(ca, spiffe("frontend")));
    const semi = await call(s, "/orders.v1.Orders/GetOrder;x=/../DeleteOrder");
    assert.equal(semi.grpc, 3, "INVALID_ARGUMENT");
    const dots = await call(s, "/orders.v1.Orders/x/../DeleteOrder");
    assert.equal(dots.grpc, 7, "decided on the normalized path");
    const plain = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = s.request({ ":method": "DELETE", ":path": "/healthz" });
      let st = 0;
      let b = "";
      req.on("response", (h) => (st = Number(h[":status"])));
      req.setEncoding("utf8");
      req.on("data", (c) => (b += c));
      req.on("end", () => resolve({ status: st, body: b }));
      req.on("error", reject);
      req.end();
    });
    assert.equal(plain.status, 403, "not gRPC: the JSON error");
    assert.equal(JSON.parse(plain.body).error.reason, "MethodNotAllowed");
  });

  it("refuses oversized headers and callers without a certificate, from another CA or revoked (an open session is closed)", async () => {
    const frontend = leafFor(ca, spiffe("frontend"));
    const s = connect(frontend);
    const big = await call(s, "/orders.v1.Orders/GetOrder", { "x-big": "a".repeat(9000) });
    assert.equal(big.grpc, 8, "RESOURCE_EXHAUSTED");
    await waitFor("the record", () => orders.audit().find((r) => r.reason === "HeadersTooLarge"));
    assert.ok(!app.seen.some((x) => x.headers["x-big"]), "never forwarded");
    const other = newCA("Another CA");
    const stranger = leafFor(other, spiffe("frontend"));
    // The handshake completes on the client's side (TLS 1.3), then the enforcer cuts the connection: no answer.
    for (const who of [stranger, { key: undefined as any, cert: undefined as any }]) {
      const r = await call(connect(who), "/orders.v1.Orders/GetOrder").catch((e: Error) => e);
      assert.ok(r instanceof Error || !(r.status > 0), `no answer: ${JSON.stringify(r)}`);
    }
    await waitFor("handshake records", () => ["ClientCertificateUntrusted", "NoClientCertificate"].every((x) => orders.audit().some((r) => r.reason === x)));

    const s2 = connect(frontend);
    assert.equal((await call(s2, "/orders.v1.Orders/GetOrder")).grpc, 0, "before the revocation");
    writeFileSync(path.join(dir, "revocations.json"), JSON.stringify({ entries: [{ serial: frontend.serial }] }));
    await orders.waitForLog("the revocation", (l) => l.msg === "revocation list updated");
    // The open session is ended by the destination (live-connections.ts), a new one is refused per stream.
    await waitFor("the open session to be closed", () => s2.destroyed);
    assert.equal((await call(connect(frontend), "/orders.v1.Orders/GetOrder")).grpc, 7, "refused on a new session");
    await waitFor("records", () => orders.audit().filter((r) => r.reason === "CertificateRevoked").length === 1 && orders.audit().some((r) => r.reason === "Revoked" && r.protocol === "h2"));
    writeFileSync(path.join(dir, "revocations.json"), JSON.stringify({ entries: [] }));
  });
});
