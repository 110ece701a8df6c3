import { strict as assert } from "node:assert";
import { backoffMs, renewDelayMs } from "../../enforcer/identity.ts";
import { ConfigError, enforcerConfigFromEnv, parsePeers } from "../../enforcer/config.ts";
import { forwardHeaders, parseProxyTarget, spiffeFromAltNames, spiffeNamespace } from "../../enforcer/headers.ts";
import { clientErrorStatus, forwardPath, handshakeReason } from "../../enforcer/inbound.ts";
import { auditPath } from "../../enforcer/audit.ts";
import { parseRevocations } from "../../enforcer/trust.ts";

describe("enforcer helpers", () => {
  it("strips hop-by-hop headers, those named in Connection, and any incoming x-tenet-caller", () => {
    const raw = ["Host", "a", "Connection", "keep-alive, X-Secret", "X-Secret", "1", "Keep-Alive", "5", "X-Tenet-Caller", "spiffe://forged", "Transfer-Encoding", "chunked", "Authorization", "Bearer t", "Upgrade", "h2c"];
    assert.deepEqual(forwardHeaders(raw, ["x-tenet-caller", "spiffe://td/ns/a/sa/b"]), ["Host", "a", "Authorization", "Bearer t", "x-tenet-caller", "spiffe://td/ns/a/sa/b"]);
  });

  it("parses absolute-form proxy targets and refuses everything else", () => {
    assert.deepEqual(parseProxyTarget("http://Orders.Shop.svc:8080/a/b?x=1"), { host: "orders.shop.svc", port: 8080, path: "/a/b?x=1" });
    assert.deepEqual(parseProxyTarget("http://orders"), { host: "orders", port: 80, path: "/" });
    assert.deepEqual(parseProxyTarget("http://orders?q"), { host: "orders", port: 80, path: "/?q" });
    assert.deepEqual(parseProxyTarget("http://[::1]:81/x"), { host: "::1", port: 81, path: "/x" });
    for (const bad of ["/a", "https://x/", "http://user@x/", "http://x:0/", "http://x:99999/", "http://", "http://a b/"]) assert.equal(parseProxyTarget(bad), undefined, bad);
  });

  it("reads SPIFFE IDs and namespaces", () => {
    assert.equal(spiffeFromAltNames("URI:spiffe://cluster.local/ns/a/sa/b, DNS:a.svc"), "spiffe://cluster.local/ns/a/sa/b");
    assert.equal(spiffeFromAltNames("URI:spiffe://x/a, URI:spiffe://x/b"), undefined, "two URI SANs are not an SVID");
    assert.equal(spiffeFromAltNames("DNS:a"), undefined);
    assert.equal(spiffeNamespace("spiffe://cluster.local/ns/shop/sa/orders"), "shop");
    assert.equal(spiffeNamespace("spiffe://cluster.local/other"), undefined);
  });

  it("forwards the path the decision was made on, with the original query", () => {
    assert.equal(forwardPath("/a/b?x=1", "/a/b"), "/a/b?x=1");
    assert.equal(forwardPath("/a/../admin?x=1", "/admin"), "/admin?x=1");
    assert.equal(forwardPath("/a%20b", "/a b"), "/a%20b");
    assert.equal(forwardPath("//", "/"), "/");
    assert.equal(forwardPath("/raw", undefined), "/raw");
  });

  it("names TLS and HTTP parser refusals", () => {
    assert.equal(handshakeReason({ code: "CERT_HAS_EXPIRED", message: "" }), "ClientCertificateExpired");
    assert.equal(handshakeReason({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", message: "" }), "ClientCertificateUntrusted");
    assert.equal(handshakeReason({ code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE", message: "" }), "NoClientCertificate");
    assert.equal(handshakeReason({ code: "ECONNRESET", message: "" }), "HandshakeAborted");
    assert.deepEqual(clientErrorStatus({ code: "HPE_HEADER_OVERFLOW" }).slice(0, 2), [431, "HeadersTooLarge"]);
    assert.deepEqual(clientErrorStatus({ code: "ERR_HTTP_REQUEST_TIMEOUT" }).slice(0, 2), [408, "RequestTimeout"]);
    assert.deepEqual(clientErrorStatus({ code: "HPE_INVALID_METHOD" }).slice(0, 2), [400, "MalformedRequest"]);
  });

  it("keeps query strings (which may carry credentials) out of audit paths", () => {
    assert.equal(auditPath("/a?token=secret"), "/a");
    assert.equal(auditPath("/" + "x".repeat(600)).length, 513);
  });

  it("schedules renewal at renewAfter, never in the past or after expiry, and backs off with jitter", () => {
    const now = 1_000_000;
    assert.equal(renewDelayMs(new Date(now + 5000), new Date(now + 10_000), now), 5000);
    assert.equal(renewDelayMs(new Date(now - 5000), new Date(now + 10_000), now), 1000);
    assert.equal(renewDelayMs(new Date(now + 50_000), new Date(now + 10_000), now), 9000);
    assert.deepEqual([0, 1, 2, 10].map((a) => backoffMs(a, () => 0.5)), [1000, 2000, 4000, 30_000]);
    assert.equal(backoffMs(0, () => 0), 800);
  });

  it("normalizes revocation serials as certificates print them", () => {
    const s = parseRevocations(JSON.stringify({ entries: [{ serial: "00ABCD", notAfter: "x" }, { serial: "zz" }] }));
    assert.deepEqual([...s], ["abcd"]);
    assert.throws(() => parseRevocations("{}"));
  });

  it("reads its configuration from the names inject.ts sets, refusing bad values", () => {
    const cfg = enforcerConfigFromEnv({ TENET_CA_ENDPOINT: "https://op.tenet-system.svc:443/", TENET_BUNDLE_FILE: "/b/ca.crt", TENET_APP_PORT: "9090", TENET_PEERS: '{"orders.shop.svc": "spiffe://cluster.local/ns/shop/sa/orders"}' });
    assert.equal(cfg.policyURL, "https://op.tenet-system.svc:443/v1/policy");
    assert.equal(cfg.revocationsURL, "https://op.tenet-system.svc:443/v1/revocations");
    assert.deepEqual([cfg.inboundPort, cfg.outboundPort, cfg.healthPort, cfg.appPort], [15443, 15001, 15021, 9090]);
    assert.equal(cfg.peers.get("orders.shop.svc")?.spiffeID, "spiffe://cluster.local/ns/shop/sa/orders");
    assert.throws(() => enforcerConfigFromEnv({}), ConfigError);
    assert.throws(() => enforcerConfigFromEnv({ TENET_CA_ENDPOINT: "http://insecure", TENET_BUNDLE_FILE: "/b" }), /https/);
    assert.throws(() => enforcerConfigFromEnv({ TENET_CA_ENDPOINT: "https://x", TENET_BUNDLE_FILE: "/b", TENET_APP_PORT: "70000" }), /TENET_APP_PORT/);
    assert.throws(() => parsePeers("[1]"), /JSON object/);
    assert.throws(() => parsePeers('{"a": "http://x"}'), /SPIFFE/);
    assert.throws(() => parsePeers('{"a": {"spiffeID": "spiffe://td/x", "address": "nohostport"}}'), /address/);
    assert.deepEqual(parsePeers('{"A:81": {"spiffeID": "spiffe://td/x", "address": "127.0.0.1:9"}}').get("a:81"), { spiffeID: "spiffe://td/x", address: { host: "127.0.0.1", port: 9 } });
  });
});
