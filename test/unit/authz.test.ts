import { strict as assert } from "node:assert";
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWK } from "jose";
import type { APIPolicy, APIPolicySpec } from "../../crds/types.gen.ts";
import { planAPIPolicy } from "../../operator/controllers/apipolicy.ts";
import { POLICY_VERSION_ANNOTATION } from "../../common/names.ts";
import type { CachedPod } from "../../operator/cache/pods.ts";
import { canonicalJSON, compilePolicy, normalizePath, policyDocument, specVersion, type AuthzRequest, type Decision } from "../../policy/authz.ts";

const NS = "shop";
const NOW = new Date("2026-06-01T12:00:00Z");
const ISSUER = "https://login.example.com";
const id = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const FRONTEND = { spiffeID: id(NS, "frontend"), namespace: NS, attributes: { tier: "web", posture: "clean" } };
const ADMIN = { spiffeID: id("ops", "admin"), namespace: "ops", attributes: { posture: "violating" } };
const BATCH = { spiffeID: id("batch", "jobs"), attributes: {} };

const policy = (name: string, spec: Partial<APIPolicySpec>): APIPolicy => ({
  apiVersion: "tenet.dev/v1alpha1",
  kind: "APIPolicy",
  metadata: { name, namespace: NS },
  spec: { selector: { matchLabels: { app: "orders" } }, apis: [], ...spec } as APIPolicySpec,
});

const ORDERS_APIS: APIPolicySpec["apis"] = [
  { name: "orders", paths: ["/orders", "/orders/*"], methods: { GET: "read", POST: "create", DELETE: "delete" } },
  { name: "admin", paths: ["/admin/**"], methods: { GET: "read", POST: "update" } },
  { name: "public", paths: ["/health"], methods: { GET: "read" } },
];

describe("APIPolicy authorization (policy/authz.ts)", () => {
  let jwks: string;
  let otherJWKS: string;
  let sign: (claims: Record<string, unknown>, o?: { kid?: string; exp?: number; iss?: string; aud?: string; alg?: string }) => Promise<string>;
  let signOther: (claims: Record<string, unknown>) => Promise<string>;

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const other = await generateKeyPair("ES256");
    const pub: JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    jwks = JSON.stringify({ keys: [pub] });
    otherJWKS = JSON.stringify({ keys: [{ ...(await exportJWK(other.publicKey)), kid: "k2" }] });
    const t = Math.floor(NOW.getTime() / 1000);
    sign = (claims, o = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "ES256", kid: o.kid ?? "k1" })
        .setIssuer(o.iss ?? ISSUER)
        .setAudience(o.aud ?? "orders")
        .setIssuedAt(t - 60)
        .setExpirationTime(o.exp ?? t + 600)
        .sign(privateKey);
    signOther = (claims) => new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer(ISSUER).setAudience("orders").setExpirationTime(t + 600).sign(other.privateKey);
  });

  function basePolicies(): APIPolicy[] {
    return [
      policy("orders", {
        apis: ORDERS_APIS,
        rules: [
          { name: "frontend-reads", from: [{ spiffeIDs: [FRONTEND.spiffeID] }], to: [{ api: "orders", scopes: ["read"] }] },
          { name: "clean-web-creates", from: [{ attributes: [{ key: "tier", operator: "In", values: ["web"] }, { key: "posture", operator: "NotIn", values: ["violating"] }] }], to: [{ api: "orders", scopes: ["create"] }] },
          { name: "ops-admin", from: [{ namespaces: ["ops"] }], to: [{ api: "admin" }] },
          { name: "no-violating-admin", action: "deny", from: [{ attributes: [{ key: "posture", operator: "In", values: ["violating"] }] }], to: [{ api: "admin", scopes: ["update"] }] },
          { name: "anyone-health", to: [{ api: "public" }] },
          { name: "batch-unlabelled", from: [{ namespaces: ["batch"], attributes: [{ key: "tier", operator: "DoesNotExist" }] }], to: [{ api: "orders", scopes: ["delete"] }] },
          { name: "frontend-never-deletes", action: "deny", from: [{ namespaces: [NS] }, { attributes: [{ key: "team", operator: "Exists" }] }], to: [{ api: "orders", scopes: ["delete"] }] },
        ],
      }),
    ];
  }

  const evaluate = (policies: APIPolicy[], req: AuthzRequest, labels: Record<string, string> = { app: "orders" }) =>
    compilePolicy(policyDocument(NS, labels, policies), { now: () => NOW }).authorize(req);

  type Case = [string, AuthzRequest, Partial<Decision>];
  const cases: Case[] = [
    ["allows a caller named by SPIFFE ID for the scope its rule grants", { method: "GET", rawPath: "/orders/42", caller: FRONTEND }, { forward: true, decision: "allow", reason: "Allowed", rule: "frontend-reads", api: "orders", scope: "read" }],
    ["denies the same caller a scope no rule grants it", { method: "DELETE", rawPath: "/orders/42", caller: { ...FRONTEND, attributes: {} } }, { forward: false, status: 403, reason: "DeniedByRule", rule: "frontend-never-deletes" }],
    ["allows by attributes (In and NotIn)", { method: "POST", rawPath: "/orders", caller: { spiffeID: id("x", "y"), attributes: { tier: "web", posture: "clean" } } }, { decision: "allow", rule: "clean-web-creates" }],
    ["denies when a NotIn attribute has a listed value", { method: "POST", rawPath: "/orders", caller: { spiffeID: id("x", "y"), attributes: { tier: "web", posture: "violating" } } }, { decision: "deny", reason: "NoRuleAllows", status: 403 }],
    ["allows by DoesNotExist and namespace parsed from the SPIFFE ID", { method: "DELETE", rawPath: "/orders/1", caller: BATCH }, { decision: "allow", rule: "batch-unlabelled" }],
    ["denies by Exists in a deny rule's second peer", { method: "DELETE", rawPath: "/orders/1", caller: { ...BATCH, attributes: { team: "x" } } }, { decision: "deny", reason: "DeniedByRule", rule: "frontend-never-deletes" }],
    ["allows a caller by namespace for every scope of an API", { method: "GET", rawPath: "/admin/users/7", caller: ADMIN }, { decision: "allow", rule: "ops-admin", scope: "read" }],
    ["lets an explicit deny win over a matching allow", { method: "POST", rawPath: "/admin/users", caller: ADMIN }, { decision: "deny", status: 403, reason: "DeniedByRule", rule: "no-violating-admin", policy: `${NS}/orders` }],
    ["allows any authenticated caller when from is empty", { method: "GET", rawPath: "/health", caller: BATCH }, { decision: "allow", rule: "anyone-health" }],
    ["denies a caller without mTLS even for a rule with no from", { method: "GET", rawPath: "/health" }, { decision: "deny", status: 403, reason: "Unauthenticated" }],
    ["denies a path no API declares (default deny)", { method: "GET", rawPath: "/secret", caller: FRONTEND }, { decision: "deny", status: 403, reason: "NoMatchingAPI" }],
    ["denies a method the API does not declare", { method: "PUT", rawPath: "/orders/1", caller: FRONTEND }, { decision: "deny", status: 403, reason: "MethodNotAllowed" }],
    ["treats methods as case-sensitive (get is not GET)", { method: "get", rawPath: "/orders/1", caller: FRONTEND }, { decision: "deny", reason: "MethodNotAllowed" }],
    ["does not let HEAD ride on GET", { method: "HEAD", rawPath: "/orders/1", caller: FRONTEND }, { decision: "deny", reason: "MethodNotAllowed" }],
    ["matches * as exactly one segment", { method: "GET", rawPath: "/orders/1/items", caller: FRONTEND }, { decision: "deny", reason: "NoMatchingAPI" }],
    ["matches a trailing /** with no suffix", { method: "GET", rawPath: "/admin", caller: ADMIN }, { decision: "allow", api: "admin" }],
    ["strips the query before matching", { method: "GET", rawPath: "/orders/42?x=/admin", caller: FRONTEND }, { decision: "allow", path: "/orders/42" }],
    // Path normalization: no encoding trick reaches another API.
    ["resolves .. before matching (/orders/../admin is admin)", { method: "POST", rawPath: "/orders/../admin/x", caller: ADMIN }, { decision: "deny", reason: "DeniedByRule", path: "/admin/x" }],
    ["resolves percent-encoded dots (%2e%2e)", { method: "GET", rawPath: "/health/%2e%2e/orders/1", caller: BATCH }, { decision: "deny", reason: "NoRuleAllows", path: "/orders/1" }],
    ["collapses double slashes", { method: "GET", rawPath: "//orders//42", caller: FRONTEND }, { decision: "allow", path: "/orders/42" }],
    ["drops . segments and a trailing slash", { method: "GET", rawPath: "/./orders/42/", caller: FRONTEND }, { decision: "allow", path: "/orders/42" }],
    ["decodes percent-encoded letters before matching", { method: "GET", rawPath: "/%6frders/42", caller: FRONTEND }, { decision: "allow", path: "/orders/42" }],
    ["refuses an encoded slash with 400", { method: "GET", rawPath: "/orders%2F..%2Fadmin", caller: ADMIN }, { forward: false, status: 400, reason: "BadPath" }],
    ["refuses an encoded backslash with 400", { method: "GET", rawPath: "/orders/..%5Cadmin", caller: ADMIN }, { status: 400, reason: "BadPath" }],
    ["refuses a literal backslash with 400", { method: "GET", rawPath: "/orders\\..\\admin", caller: ADMIN }, { status: 400, reason: "BadPath" }],
    ["refuses an encoded NUL with 400", { method: "GET", rawPath: "/orders/1%00", caller: FRONTEND }, { status: 400, reason: "BadPath" }],
    ["refuses double encoding (%252e) with 400", { method: "GET", rawPath: "/orders/%252e%252e/admin", caller: ADMIN }, { status: 400, reason: "BadPath" }],
    ["refuses invalid UTF-8 with 400", { method: "GET", rawPath: "/orders/%c0%ae", caller: FRONTEND }, { status: 400, reason: "BadPath" }],
    ["refuses .. above the root with 400", { method: "GET", rawPath: "/../orders/1", caller: FRONTEND }, { status: 400, reason: "BadPath" }],
    ["refuses a target that is not an absolute path with 400", { method: "GET", rawPath: "http://evil/orders/1", caller: FRONTEND }, { status: 400, reason: "BadPath" }],
    ["matches paths case-sensitively (/ADMIN is not /admin, so default deny)", { method: "GET", rawPath: "/ADMIN/x", caller: ADMIN }, { decision: "deny", reason: "NoMatchingAPI" }],
  ];
  for (const [name, req, expected] of cases) {
    it(name, async () => {
      const d = await evaluate(basePolicies(), structuredClone(req));
      for (const [k, v] of Object.entries(expected)) assert.deepEqual((d as any)[k], v, `${k}: ${JSON.stringify(d)}`);
      if (!d.forward) assert.equal(d.decision, "deny");
    });
  }

  it("forwards a workload no policy selects, saying Unprotected", async () => {
    const d = await evaluate(basePolicies(), { method: "DELETE", rawPath: "/anything/%2F", caller: BATCH }, { app: "other" });
    assert.deepEqual([d.forward, d.decision, d.reason], [true, "allow", "Unprotected"]);
  });

  it("denies every call of a protected workload whose policy has no rules", async () => {
    const d = await evaluate([policy("empty", { apis: ORDERS_APIS })], { method: "GET", rawPath: "/orders", caller: FRONTEND });
    assert.deepEqual([d.forward, d.status, d.reason], [false, 403, "NoRuleAllows"]);
  });

  it("in audit mode forwards a would-be denial and reports it", async () => {
    const ps = basePolicies();
    ps[0].spec.mode = "audit";
    const d = await evaluate(ps, { method: "POST", rawPath: "/admin/users", caller: ADMIN });
    assert.deepEqual([d.forward, d.decision, d.mode, d.reason, d.rule], [true, "deny", "audit", "DeniedByRule", "no-violating-admin"]);
    const none = await evaluate(ps, { method: "GET", rawPath: "/nowhere", caller: ADMIN });
    assert.deepEqual([none.forward, none.decision, none.mode], [true, "deny", "audit"]);
  });

  it("lets an enforce policy's deny win over another policy's allow, and an audit policy's deny not block", async () => {
    const allowAll = policy("allow-all", { apis: ORDERS_APIS, rules: [{ name: "all", to: [{ api: "orders" }] }] });
    const denyAudit = policy("deny-audit", { mode: "audit", apis: ORDERS_APIS, rules: [{ name: "no-frontend", action: "deny", from: [{ spiffeIDs: [FRONTEND.spiffeID] }], to: [{ api: "orders" }] }] });
    const d = await evaluate([allowAll, denyAudit], { method: "GET", rawPath: "/orders", caller: FRONTEND });
    assert.deepEqual([d.forward, d.decision, d.mode, d.policy], [true, "deny", "audit", `${NS}/deny-audit`]);
    denyAudit.spec.mode = "enforce";
    const e = await evaluate([allowAll, denyAudit], { method: "GET", rawPath: "/orders", caller: FRONTEND });
    assert.deepEqual([e.forward, e.decision, e.mode, e.policy], [false, "deny", "enforce", `${NS}/deny-audit`]);
  });

  it("never lets an audit policy's allow widen what an enforce policy protects", async () => {
    const enforced = policy("enforced", { apis: ORDERS_APIS, rules: [{ name: "admins-only", from: [{ spiffeIDs: [ADMIN.spiffeID] }], to: [{ api: "orders" }] }] });
    const auditAllowAll = policy("audit-open", { mode: "audit", apis: ORDERS_APIS, rules: [{ name: "everyone", to: [{ api: "orders" }] }] });
    const d = await evaluate([enforced, auditAllowAll], { method: "GET", rawPath: "/orders", caller: FRONTEND });
    assert.deepEqual([d.forward, d.decision, d.mode, d.reason], [false, "deny", "enforce", "NoRuleAllows"]);
    const ok = await evaluate([enforced, auditAllowAll], { method: "GET", rawPath: "/orders", caller: ADMIN });
    assert.deepEqual([ok.forward, ok.decision, ok.rule], [true, "allow", "admins-only"]);
  });

  it("matches patterns that start with a wildcard or are the root, in declaration order", async () => {
    const ps = [
      policy("wild", {
        apis: [
          { name: "tenant-items", paths: ["/*/items"], methods: { GET: "read" } },
          { name: "everything", paths: ["/**"], methods: { GET: "read", POST: "create" } },
        ],
        rules: [{ name: "reads", from: [{ namespaces: [NS] }], to: [{ api: "tenant-items" }, { api: "everything", scopes: ["read"] }] }],
      }),
    ];
    const items = await evaluate(ps, { method: "GET", rawPath: "/acme/items", caller: FRONTEND });
    assert.deepEqual([items.decision, items.api], ["allow", "tenant-items"]);
    const root = await evaluate(ps, { method: "GET", rawPath: "/", caller: FRONTEND });
    assert.deepEqual([root.decision, root.api], ["allow", "everything"]);
    const post = await evaluate(ps, { method: "POST", rawPath: "/acme/items", caller: FRONTEND });
    assert.deepEqual([post.decision, post.reason, post.api], ["deny", "NoRuleAllows", "everything"]);
  });

  describe("documents", () => {
    it("holds only the namespace's policies whose selector matches, sorted, versioned by content", () => {
      const a = policy("b-second", { apis: ORDERS_APIS });
      const b = policy("a-first", { apis: ORDERS_APIS });
      const other = policy("other", { selector: { matchLabels: { app: "payments" } }, apis: ORDERS_APIS });
      const foreign = { ...policy("foreign", { apis: ORDERS_APIS }), metadata: { name: "foreign", namespace: "elsewhere" } };
      const doc = policyDocument(NS, { app: "orders" }, [a, other, b, foreign]);
      assert.deepEqual(doc.policies.map((p) => p.name), ["a-first", "b-second"]);
      assert.match(doc.version, /^[0-9a-f]{16}$/);
      assert.equal(policyDocument(NS, { app: "orders" }, [b, a]).version, doc.version, "order of input does not matter");
      const changed = structuredClone(a);
      changed.spec.mode = "audit";
      assert.notEqual(policyDocument(NS, { app: "orders" }, [changed, b]).version, doc.version, "content changes the version");
      assert.equal(policyDocument(NS, { app: "nothing" }, [a, b]).version, "empty");
    });

    it("hashes canonically: key order does not change a spec's version", () => {
      assert.equal(canonicalJSON({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
      assert.equal(specVersion({ selector: {}, apis: [], mode: "enforce" }), specVersion({ mode: "enforce", apis: [], selector: {} }));
    });
  });

  describe("path normalization", () => {
    const ok: [string, string][] = [
      ["/", "/"],
      ["/a/b/../c", "/a/c"],
      ["/a/%2E/b", "/a/b"],
      ["/caf%C3%A9", "/café"],
      ["/a?b=../../x#frag", "/a"],
    ];
    for (const [raw, want] of ok) it(`normalizes ${raw} to ${want}`, () => assert.deepEqual(normalizePath(raw), { ok: true, path: want, segments: want.split("/").filter(Boolean) }));
  });

  describe("JWT requirements", () => {
    function jwtPolicies(jwt: Record<string, unknown>, action: "allow" | "deny" = "allow") {
      return [
        policy("orders", {
          apis: ORDERS_APIS,
          rules: [{ name: "frontend-with-token", action, from: [{ namespaces: [NS] }], jwt: { issuer: ISSUER, jwks, audiences: ["orders"], ...jwt } as any, to: [{ api: "orders" }] }],
        }),
      ];
    }
    const req = (authorization?: string): AuthzRequest => ({ method: "GET", rawPath: "/orders/1", caller: FRONTEND, authorization });
    const t = Math.floor(NOW.getTime() / 1000);

    const cases: [string, Record<string, unknown>, () => Promise<string | undefined>, Partial<Decision>][] = [
      ["accepts a valid token with the required scopes and claims", { requiredScopes: ["orders.read"], requiredClaims: [{ name: "tenant", values: ["acme"] }] }, () => sign({ scope: "profile orders.read", tenant: "acme" }), { decision: "allow", rule: "frontend-with-token" }],
      ["accepts scopes from an scp array", { requiredScopes: ["orders.read"] }, () => sign({ scp: ["orders.read"] }), { decision: "allow" }],
      ["accepts an array claim that contains an accepted value", { requiredClaims: [{ name: "groups", values: ["ops"] }] }, () => sign({ groups: ["dev", "ops"] }), { decision: "allow" }],
      ["refuses a missing token with 401 JWTMissing", {}, async () => undefined, { status: 401, reason: "JWTMissing", forward: false }],
      ["refuses a non-Bearer Authorization header with 401 JWTMissing", {}, async () => "Basic dXNlcjpwYXNz", { status: 401, reason: "JWTMissing" }],
      ["refuses alg none", {}, async () => new UnsecuredJWT({ scope: "x" }).setIssuer(ISSUER).setAudience("orders").setExpirationTime(t + 600).encode(), { status: 401, reason: "JWTInvalid" }],
      ["refuses an unknown kid", {}, () => sign({}, { kid: "nope" }), { status: 401, reason: "JWTInvalid" }],
      ["refuses a bad signature", {}, () => signOther({}), { status: 401, reason: "JWTInvalid" }],
      ["refuses an expired token", {}, () => sign({}, { exp: t - 120 }), { status: 401, reason: "JWTInvalid" }],
      ["accepts a token expired within the clock skew", { clockSkewSeconds: 60 }, () => sign({}, { exp: t - 30 }), { decision: "allow" }],
      ["refuses a token expired beyond a zero clock skew", { clockSkewSeconds: 0 }, () => sign({}, { exp: t - 1 }), { status: 401, reason: "JWTInvalid" }],
      ["refuses the wrong audience", {}, () => sign({}, { aud: "payments" }), { status: 401, reason: "JWTInvalid" }],
      ["refuses the wrong issuer", {}, () => sign({}, { iss: "https://evil.example.com" }), { status: 401, reason: "JWTInvalid" }],
      ["refuses a missing scope", { requiredScopes: ["orders.write"] }, () => sign({ scope: "orders.read" }), { status: 401, reason: "JWTInvalid" }],
      ["refuses a missing claim", { requiredClaims: [{ name: "tenant" }] }, () => sign({}), { status: 401, reason: "JWTInvalid" }],
      ["refuses a claim with an unaccepted value", { requiredClaims: [{ name: "tenant", values: ["acme"] }] }, () => sign({ tenant: "evil" }), { status: 401, reason: "JWTInvalid" }],
      ["refuses any token when the inline JWKS holds only a symmetric key", { jwks: JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "k1" }] }) }, () => sign({}), { status: 401, reason: "JWTInvalid" }],
      ["refuses a token signed by a key from another JWKS", { jwks: "" }, () => sign({}), { status: 401, reason: "JWTInvalid" }],
    ];
    for (const [name, jwt, token, expected] of cases) {
      it(name, async () => {
        const cfg = { ...jwt };
        if (cfg.jwks === "") cfg.jwks = otherJWKS;
        const tok = await token();
        const header = tok === undefined ? undefined : tok.startsWith("Basic ") ? tok : `Bearer ${tok}`;
        const d = await evaluate(jwtPolicies(cfg), req(header));
        for (const [k, v] of Object.entries(expected)) assert.deepEqual((d as any)[k], v, `${k}: ${JSON.stringify(d)}`);
        if (tok && !tok.startsWith("Basic ")) assert.ok(!d.message.includes(tok) && !d.message.includes(tok.split(".")[1] ?? "\0"), "the message never contains the token");
      });
    }

    it("refuses an HS256 token signed with a public key's bytes as the secret (alg confusion)", async () => {
      const pub = JSON.parse(jwks).keys[0];
      const tok = await new SignJWT({}).setProtectedHeader({ alg: "HS256", kid: "k1" }).setIssuer(ISSUER).setAudience("orders").setExpirationTime(t + 600).sign(new TextEncoder().encode(JSON.stringify(pub)));
      const d = await evaluate(jwtPolicies({}), req(`Bearer ${tok}`));
      assert.deepEqual([d.status, d.reason], [401, "JWTInvalid"]);
    });

    it("applies a deny rule with a JWT only to calls carrying a valid token", async () => {
      const ps = jwtPolicies({}, "deny");
      ps[0].spec.rules!.push({ name: "frontend", from: [{ namespaces: [NS] }], to: [{ api: "orders" }] });
      const withToken = await evaluate(ps, req(`Bearer ${await sign({})}`));
      assert.deepEqual([withToken.decision, withToken.rule], ["deny", "frontend-with-token"]);
      const without = await evaluate(ps, req());
      assert.deepEqual([without.decision, without.rule], ["allow", "frontend"]);
    });

    it("uses the key set the operator put into the document for a jwksURI, without fetching", async () => {
      const uri = "https://login.example.com/.well-known/jwks.json";
      const ps = jwtPolicies({ jwks: undefined, jwksURI: uri });
      const doc = policyDocument(NS, { app: "orders" }, ps, (u) => (u === uri ? jwks : undefined));
      assert.deepEqual(Object.keys(doc.jwks ?? {}), [uri]);
      assert.notEqual(doc.version, policyDocument(NS, { app: "orders" }, ps).version, "the keys are part of the version");
      const compiled = compilePolicy(doc, {
        now: () => NOW,
        fetch: async () => {
          throw new Error("must not fetch");
        },
      });
      const d = await compiled.authorize(req(`Bearer ${await sign({})}`));
      assert.equal(d.decision, "allow", d.message);
    });

    it("fetches keys from jwksURI through the injected fetch, with the timeout and cooldown options", async () => {
      const ps = jwtPolicies({ jwks: undefined, jwksURI: "https://login.example.com/.well-known/jwks.json" });
      let fetched = 0;
      const compiled = compilePolicy(policyDocument(NS, { app: "orders" }, ps), {
        now: () => NOW,
        fetch: async (url) => {
          fetched++;
          assert.equal(url, "https://login.example.com/.well-known/jwks.json");
          return new Response(jwks, { headers: { "content-type": "application/json" } });
        },
      });
      const ok = await compiled.authorize(req(`Bearer ${await sign({})}`));
      assert.equal(ok.decision, "allow", ok.message);
      const again = await compiled.authorize(req(`Bearer ${await sign({ n: 2 })}`));
      assert.equal(again.decision, "allow");
      assert.equal(fetched, 1, "the key set is cached between requests");
    });
  });

  describe("APIPolicy status (planAPIPolicy)", () => {
    const cachedPod = (name: string, labels: Record<string, string>, version?: string) =>
      ({
        metadata: { name, namespace: NS, uid: name, resourceVersion: "1", labels, annotations: version ? { [POLICY_VERSION_ANNOTATION]: version } : undefined },
        spec: { serviceAccountName: "default", containers: [] },
        status: {},
      }) as unknown as CachedPod;

    it("counts selected pods as workloads and, as enforcers, those whose recorded document is the current one", () => {
      const ps = basePolicies();
      const current = policyDocument(NS, { app: "orders" }, ps).version;
      const pods = [cachedPod("a", { app: "orders" }, current), cachedPod("b", { app: "orders" }, "0123456789abcdef"), cachedPod("c", { app: "orders" }), cachedPod("d", { app: "other" }, current)];
      const plan = planAPIPolicy(ps[0], pods, ps);
      assert.deepEqual(plan.fields, { workloads: 3, compiledVersion: specVersion(ps[0].spec), enforcers: 1 });
    });

    it("stops counting an enforcer when another policy selecting its pod changes the document", () => {
      const ps = basePolicies();
      const before = policyDocument(NS, { app: "orders" }, ps).version;
      const withAnother = [...ps, policy("extra", { apis: ORDERS_APIS })];
      const plan = planAPIPolicy(ps[0], [cachedPod("a", { app: "orders" }, before)], withAnother);
      assert.equal(plan.fields.enforcers, 0);
      assert.equal(plan.fields.compiledVersion, specVersion(ps[0].spec), "this policy's own version did not change");
    });
  });
});
