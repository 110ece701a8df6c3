// Pure logic of WebSocket upgrades, CONNECT authorities and the open-connection registry
// (the processes are exercised in test/integration/enforcer-tunnels.test.ts and enforcer-revoke.test.ts).
import { strict as assert } from "node:assert";
import type http from "node:http";
import { EventEmitter } from "node:events";
import { isSelfAddress, parseAuthority } from "../../enforcer/connect.ts";
import { LiveConnections } from "../../enforcer/live-connections.ts";
import { createMetrics } from "../../enforcer/metrics.ts";
import { checkUpgrade, upgradeHeaders } from "../../enforcer/upgrade.ts";

const req = (method: string, headers: Record<string, string>) => ({ method, headers }) as unknown as http.IncomingMessage;

describe("enforcer: WebSocket upgrade checks", () => {
  const ws = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };
  it("accepts a GET websocket upgrade, case-insensitively", () => {
    assert.equal(checkUpgrade(req("GET", ws)), undefined);
    assert.equal(checkUpgrade(req("GET", { ...ws, upgrade: "WebSocket" })), undefined);
  });
  it("refuses other upgrades, non-GET, a body and a missing key, each with its reason", () => {
    assert.equal(checkUpgrade(req("GET", { ...ws, upgrade: "h2c" }))?.reason, "UpgradeNotSupported");
    assert.match(checkUpgrade(req("GET", { ...ws, upgrade: "h2c" }))!.message, /prior knowledge/);
    assert.equal(checkUpgrade(req("GET", { ...ws, upgrade: "websocket, h2c" }))?.reason, "UpgradeNotSupported");
    assert.equal(checkUpgrade(req("POST", ws))?.reason, "MalformedUpgrade");
    assert.equal(checkUpgrade(req("GET", { ...ws, "content-length": "3" }))?.reason, "UpgradeWithBody");
    assert.equal(checkUpgrade(req("GET", { ...ws, "transfer-encoding": "chunked" }))?.reason, "UpgradeWithBody");
    assert.equal(checkUpgrade(req("GET", { ...ws, "content-length": "0" })), undefined);
    const { "sec-websocket-key": _, ...nokey } = ws;
    assert.equal(checkUpgrade(req("GET", nokey))?.reason, "MalformedUpgrade");
  });
  it("forwards the upgrade and Sec-WebSocket-* headers, drops hop-by-hop and spoofed caller headers", () => {
    const out = upgradeHeaders(["Host", "o", "Connection", "Upgrade, X-Drop", "Upgrade", "websocket", "X-Drop", "1", "Sec-WebSocket-Key", "k", "x-tenet-caller", "spoof"], ["x-tenet-caller", "real"]);
    assert.deepEqual(out, ["Host", "o", "Sec-WebSocket-Key", "k", "x-tenet-caller", "real", "Connection", "Upgrade", "Upgrade", "websocket"]);
  });
});

describe("enforcer: CONNECT authorities", () => {
  it("parses host:port, [v6]:port and trailing-dot names", () => {
    assert.deepEqual(parseAuthority("Orders.Shop.svc:8080"), { host: "orders.shop.svc", port: 8080 });
    assert.deepEqual(parseAuthority("[::1]:443"), { host: "::1", port: 443 });
    assert.deepEqual(parseAuthority("localhost.:80"), { host: "localhost", port: 80 });
  });
  it("refuses what is not an authority", () => {
    for (const bad of ["", "host", "host:", "host:0", "host:65536", ":80", "user@host:80", "/path", "http://host:80", "a..b:80", "-a:80", "[nope]:80", "[::1:80", `${"a".repeat(64)}:80`, `${"a.".repeat(140)}a:80`, "host:80/x", "ho st:80"]) {
      assert.equal(parseAuthority(bad), undefined, bad);
    }
  });
  it("knows the pod's own loopback and unspecified addresses, IPv4-mapped too", () => {
    for (const ip of ["127.0.0.1", "127.1.2.3", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1"]) assert.ok(isSelfAddress(ip), ip);
    for (const ip of ["10.0.0.1", "192.0.2.2", "::ffff:10.0.0.1", "fe80::1", ""]) assert.ok(!isSelfAddress(ip), ip);
  });
});

describe("enforcer: open connections of revoked or expired callers", () => {
  const sock = () => Object.assign(new EventEmitter(), { closed: 0 });
  it("closes and audits only the revoked and the expired, once each; forgets closed sockets", () => {
    const records: any[] = [];
    const live = new LiveConnections({ write: (r) => records.push(r), flush() {} }, createMetrics());
    const [a, b, c, d] = [sock(), sock(), sock(), sock()];
    const later = Date.now() + 3600_000;
    live.add(a, { serial: "aa", notAfterMs: later, caller: "spiffe://x/ns/a/sa/a", destination: "127.0.0.1:1", protocol: "tcp", close: () => a.closed++ });
    live.add(b, { serial: "bb", notAfterMs: later, destination: "127.0.0.1:1", protocol: "http/1.1", close: () => b.closed++ });
    live.add(c, { serial: "cc", notAfterMs: Date.now() - 1, destination: "127.0.0.1:1", protocol: "h2", close: () => c.closed++ });
    live.add(d, { serial: "dd", notAfterMs: later, destination: "127.0.0.1:1", protocol: "http/1.1", close: () => d.closed++ });
    live.update(d, { protocol: "websocket" });
    d.emit("close");
    assert.equal(live.size, 3);
    assert.equal(live.sweep((s) => s === "aa" || s === "dd"), 2);
    assert.equal(live.sweep((s) => s === "aa"), 0, "already closed");
    assert.deepEqual([a.closed, b.closed, c.closed, d.closed], [1, 0, 1, 0]);
    assert.deepEqual(records.map((r) => [r.reason, r.protocol, r.decision]), [["Revoked", "tcp", "deny"], ["CertificateExpired", "h2", "deny"]]);
    assert.equal(live.size, 1);
  });

  it("bounds open connections per caller certificate and in all, and counts a closed one out once", () => {
    const live = new LiveConnections({ write: () => {}, flush() {} }, createMetrics(), { perCaller: 2, total: 3 });
    const later = Date.now() + 3600_000;
    const open = (serial: string) => {
      const s = sock();
      live.add(s, { serial, notAfterMs: later, destination: "127.0.0.1:1", protocol: "tcp", close: () => s.emit("close") });
      return s;
    };
    const [a1] = [open("aa"), open("aa")];
    assert.match(live.overLimit("aa")!, /caller's certificate already holds its maximum of 2 .*TENET_MAX_CONNECTIONS_PER_CALLER/);
    assert.equal(live.overLimit("bb"), undefined, "another caller is not held back by this one");
    open("bb");
    assert.match(live.overLimit("cc")!, /maximum of 3 open connections \(TENET_MAX_INBOUND_CONNECTIONS\)/);
    a1.emit("close");
    a1.emit("close");
    assert.equal(live.overLimit("aa"), undefined, "a closed connection frees its place, once");
    open("aa");
    assert.ok(live.overLimit("aa"));
    // A revoked caller's closures (sweep, then the sockets' own close events) count out once too.
    assert.equal(live.sweep((s) => s === "aa"), 2);
    assert.equal(live.size, 1);
    assert.equal(live.overLimit("aa"), undefined);
  });
});

