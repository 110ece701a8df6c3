// The operator fetches a jwksURI only from hosts an administrator allowed, with a timeout and a size
// cap applied while the body streams, and says in the APIPolicy status why it did not.
import { strict as assert } from "node:assert";
import { pino } from "pino";
import type { APIPolicy } from "../../crds/types.gen.ts";
import { JWKS_CONDITION, planAPIPolicy } from "../../operator/controllers/apipolicy.ts";
import { hostAllowed, JWKSFetcher } from "../../operator/apipolicy/jwks.ts";

const quiet = pino({ level: "silent" });
const KEYS = JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", kid: "k1" }] });

async function settle(f: JWKSFetcher, uri: string) {
  for (let i = 0; i < 200 && f.get(uri) === undefined && !f.problem(uri); i++) await new Promise((r) => setTimeout(r, 10));
}

describe("JWKS fetcher (SSRF)", () => {
  it("fetches nothing by default, and only allowed hosts when configured", async () => {
    const asked: string[] = [];
    const fetchFn = (async (url: URL) => {
      asked.push(String(url));
      return new Response(KEYS, { status: 200 });
    }) as unknown as typeof fetch;
    const none = new JWKSFetcher(quiet, () => undefined, { fetch: fetchFn });
    for (const uri of ["https://169.254.169.254/latest/meta-data", "https://kubernetes.default.svc/api", "https://login.example.com/jwks"]) {
      none.get(uri);
      await settle(none, uri);
      assert.equal(none.problem(uri)?.reason, "JWKSHostNotAllowed", uri);
    }
    none.stop();
    assert.deepEqual(asked, [], "no request leaves the operator");

    const some = new JWKSFetcher(quiet, () => undefined, { fetch: fetchFn, allowedHosts: ["login.example.com", "*.idp.example.net"] });
    for (const uri of ["https://login.example.com/jwks", "https://eu.idp.example.net/keys", "https://login.example.com.evil.io/jwks", "https://idp.example.net/keys", "https://tenet-operator.tenet-system.svc/x"]) some.get(uri);
    for (const uri of ["https://login.example.com/jwks", "https://eu.idp.example.net/keys", "https://login.example.com.evil.io/jwks"]) await settle(some, uri);
    some.stop();
    assert.deepEqual(asked.sort(), ["https://eu.idp.example.net/keys", "https://login.example.com/jwks"]);
  });

  it("matches hosts and ports exactly, wildcards only as a whole-label suffix", () => {
    const u = (s: string) => new URL(s);
    assert.ok(hostAllowed(u("https://LOGIN.example.com/x"), ["login.example.com"]));
    assert.ok(!hostAllowed(u("https://login.example.com:8443/x"), ["login.example.com"]), "the default port only");
    assert.ok(hostAllowed(u("https://login.example.com:8443/x"), ["login.example.com:8443"]));
    assert.ok(!hostAllowed(u("https://xexample.com/"), ["*.example.com"]));
    assert.ok(!hostAllowed(u("https://example.com/"), ["*.example.com"]));
    assert.ok(hostAllowed(u("https://a.b.example.com/"), ["*.example.com"]));
    assert.ok(hostAllowed(u("https://127.0.0.1:9000/"), ["127.0.0.1:9000"]));
    assert.ok(!hostAllowed(u("https://127.0.0.1:9000/"), []));
  });

  it("stops reading a body as soon as it passes the cap, without waiting for its end", async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled += 16 * 1024;
        c.enqueue(new Uint8Array(16 * 1024).fill(0x20));
      },
    });
    const f = new JWKSFetcher(quiet, () => undefined, { fetch: (async () => new Response(endless, { status: 200 })) as unknown as typeof fetch, allowedHosts: ["idp.example.com"], maxBytes: 64 * 1024 });
    const uri = "https://idp.example.com/jwks";
    f.get(uri);
    await settle(f, uri);
    f.stop();
    assert.match(f.problem(uri)!.message, /larger than 65536 bytes/);
    assert.ok(pulled <= 160 * 1024, `read ${pulled} bytes of an endless body`);
  });

  it("gives up on a server that does not answer within the timeout", async () => {
    const hang = ((_u: URL, init: RequestInit) => new Promise((_r, reject) => init.signal!.addEventListener("abort", () => reject(init.signal!.reason)))) as unknown as typeof fetch;
    const f = new JWKSFetcher(quiet, () => undefined, { fetch: hang, allowedHosts: ["idp.example.com"], timeoutMs: 100 });
    const uri = "https://idp.example.com/jwks";
    f.get(uri);
    await settle(f, uri);
    f.stop();
    assert.equal(f.problem(uri)?.reason, "JWKSFetchFailed");
    assert.match(f.problem(uri)!.message, /within 100 ms/);
  });

  it("reports the failure in the APIPolicy status (condition JWKSFetched), and success once fetched", () => {
    const uri = "https://169.254.169.254/keys";
    const policy = { metadata: { name: "p", namespace: "shop" }, spec: { selector: {}, apis: [{ name: "a", paths: ["/**"], methods: { GET: "read" } }], rules: [{ name: "r", jwt: { issuer: "https://i", audiences: ["a"], jwksURI: uri }, to: [{ api: "a" }] }] } } as unknown as APIPolicy;
    const denied = planAPIPolicy(policy, [], [], () => undefined, () => ({ reason: "JWKSHostNotAllowed", message: `${uri}: host not allowed` }));
    assert.equal(denied.conditions?.[JWKS_CONDITION]?.ready, false);
    assert.equal(denied.conditions?.[JWKS_CONDITION]?.reason, "JWKSHostNotAllowed");
    const ok = planAPIPolicy(policy, [], [], () => KEYS, () => undefined);
    assert.equal(ok.conditions?.[JWKS_CONDITION]?.ready, true);
    const inline = { ...policy, spec: { ...policy.spec, rules: [{ name: "r", to: [{ api: "a" }] }] } } as unknown as APIPolicy;
    assert.deepEqual(planAPIPolicy(inline, [], [], () => undefined, () => undefined).conditions, { [JWKS_CONDITION]: undefined }, "no jwksURI: no condition");
  });
});
