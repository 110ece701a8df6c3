// HTTP/2 inbound, the pure parts: which headers reach the app, how a refusal maps to a gRPC
// status, how grpc-message is encoded, and that APIPolicy matches gRPC methods as paths.
import { strict as assert } from "node:assert";
import { grpcMessage, grpcStatusFor, h2ForwardHeaders, h2ResponseHeaders, headerListSize, isGRPC } from "../../enforcer/inbound-h2.ts";
import { compilePolicy } from "../../policy/authz.ts";

const caller = "spiffe://cluster.local/ns/shop/sa/frontend";

describe("enforcer HTTP/2", () => {
  it("forwards ordinary and gRPC headers, drops pseudo, connection, override and spoofed caller headers", () => {
    const out = h2ForwardHeaders(
      { ":method": "POST", ":path": "/a.B/C", ":authority": "orders", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "1S", "x-tenet-caller": "spiffe://evil", "x-original-url": "/admin", "x-http-method-override": "DELETE", connection: "close", host: "evil", authorization: "Bearer t" },
      caller,
    );
    assert.deepEqual(out, { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "1S", authorization: "Bearer t", "x-tenet-caller": caller });
    assert.equal(h2ForwardHeaders({ te: "gzip" }, caller).te, undefined, "te only as trailers");
  });

  it("passes response headers and trailers without pseudo or connection headers", () => {
    assert.deepEqual(h2ResponseHeaders({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0", "transfer-encoding": "chunked" } as any), { "content-type": "application/grpc", "grpc-status": "0" });
  });

  it("maps refusals to gRPC status codes", () => {
    assert.deepEqual([400, 401, 403, 431, 500, 502, 418].map(grpcStatusFor), [3, 16, 7, 8, 13, 14, 2]);
  });

  it("percent-encodes grpc-message (non-ASCII, control characters and '%')", () => {
    assert.equal(grpcMessage("NoRuleAllows: 100% ok"), "NoRuleAllows: 100%25 ok");
    assert.equal(grpcMessage("é\n"), "%C3%A9%0A");
    assert.equal(decodeURIComponent(grpcMessage("refusé à 50%")), "refusé à 50%");
  });

  it("recognizes gRPC by content-type only", () => {
    assert.equal(isGRPC({ "content-type": "application/grpc" }), true);
    assert.equal(isGRPC({ "content-type": "application/grpc+proto" }), true);
    assert.equal(isGRPC({ "content-type": "application/grpc-web" }), false, "grpc-web is not gRPC over HTTP/2");
    assert.equal(isGRPC({ "content-type": "application/json" }), false);
  });

  it("counts the header list as RFC 9113 does (name + value + 32)", () => {
    assert.equal(headerListSize({ a: "bc", "set-cookie": ["x", "yz"] } as any), 1 + 2 + 32 + (10 + 1 + 32) + (10 + 2 + 32));
  });

  it("matches gRPC methods as POST paths in an APIPolicy", async () => {
    const authz = compilePolicy({
      version: "v1",
      policies: [{ namespace: "shop", name: "p", spec: { selector: {}, apis: [{ name: "read", paths: ["/orders.v1.Orders/GetOrder"], methods: { POST: "read" } }, { name: "svc", paths: ["/orders.v1.Admin/*"], methods: { POST: "admin" } }], rules: [{ name: "r", from: [{ spiffeIDs: [caller] }], to: [{ api: "read" }] }] } }],
    } as any);
    const who = { spiffeID: caller, namespace: "shop", attributes: {} };
    const d = await authz.authorize({ method: "POST", rawPath: "/orders.v1.Orders/GetOrder", caller: who });
    assert.deepEqual([d.forward, d.api, d.scope], [true, "read", "read"]);
    assert.equal((await authz.authorize({ method: "POST", rawPath: "/orders.v1.Admin/Wipe", caller: who })).reason, "NoRuleAllows");
    assert.equal((await authz.authorize({ method: "GET", rawPath: "/orders.v1.Orders/GetOrder", caller: who })).reason, "MethodNotAllowed");
  });
});
