// The enforcer against callers who try to make it and the app disagree on what was asked, or to
// leave more than one audit record per attempt.
import { strict as assert } from "node:assert";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import type { AuditRecord } from "../../enforcer/audit.ts";
import { forwardHeaders, REQUEST_OVERRIDE_HEADERS } from "../../enforcer/headers.ts";
import { createInbound } from "../../enforcer/inbound.ts";
import { createMetrics } from "../../enforcer/metrics.ts";
import { compilePolicy, normalizePath } from "../../policy/authz.ts";
import { echoApp, leafFor, newCA } from "../harness/enforcer.ts";

const NS = "shop";
const spiffe = (sa: string) => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;
// Everyone may read /public/**; /admin/** is denied outright.
const doc = {
  version: "v1",
  policies: [
    {
      namespace: NS,
      name: "p",
      spec: {
        selector: {},
        apis: [
          { name: "public", paths: ["/**"], methods: { GET: "read" } },
          { name: "admin", paths: ["/admin/**"], methods: { GET: "read" } },
        ],
        rules: [
          { name: "everyone-reads", to: [{ api: "public" }] },
          { name: "no-admin", action: "deny", to: [{ api: "admin" }] },
        ],
      },
    },
  ],
} as any;

describe("enforcer hardening", () => {
  describe("path parameters (';' in a segment)", () => {
    for (const raw of ["/public/..;/admin/keys", "/admin;x=1/keys", "/a/%3B/b", "/public/..%3b/admin/keys", "/admin;/keys"]) {
      it(`refuses ${raw}: Tomcat and Spring read it as another path`, async () => {
        assert.equal(normalizePath(raw).ok, false, raw);
        const d = await compilePolicy(doc).authorize({ method: "GET", rawPath: raw, caller: { spiffeID: spiffe("frontend"), namespace: NS, attributes: {} } });
        assert.equal(d.forward, false);
        assert.equal(d.status, 400);
      });
    }
    it("still allows ordinary paths and denies /admin", async () => {
      const authz = compilePolicy(doc);
      const caller = { spiffeID: spiffe("frontend"), namespace: NS, attributes: {} };
      assert.equal((await authz.authorize({ method: "GET", rawPath: "/public/x?a=1;b=2", caller })).forward, true, "a ';' in the query is not a path parameter");
      assert.equal((await authz.authorize({ method: "GET", rawPath: "/admin/keys", caller })).forward, false);
    });
  });

  describe("caller-supplied routing overrides", () => {
    it("strips X-Original-URL, X-Rewrite-URL and the other path and method overrides before the app", () => {
      const raw = ["Host", "a", "X-Original-URL", "/admin/keys", "X-Rewrite-URL", "/admin/keys", "X-Original-URI", "/admin", "X-Forwarded-Prefix", "/admin", "X-Forwarded-Uri", "/admin", "X-Forwarded-Path", "/admin", "X-HTTP-Method-Override", "DELETE", "X-HTTP-Method", "DELETE", "X-Method-Override", "DELETE", "X-Envoy-Original-Path", "/admin", "X-Forwarded-For", "10.0.0.1", "Accept", "*/*"];
      assert.deepEqual(forwardHeaders(raw, ["x-tenet-caller", spiffe("frontend")], REQUEST_OVERRIDE_HEADERS), ["Host", "a", "X-Forwarded-For", "10.0.0.1", "Accept", "*/*", "x-tenet-caller", spiffe("frontend")]);
    });
  });

  describe("the inbound listener (in process)", () => {
    const ca = newCA();
    const serverLeaf = leafFor(ca, spiffe("orders"));
    const client = leafFor(ca, spiffe("frontend"));

    async function inbound(appPort = 1) {
      const records: AuditRecord[] = [];
      const cfg: any = { appHost: "127.0.0.1", appPort, maxHeaderSize: 16 * 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 30_000 };
      const compiled = compilePolicy(doc);
      const srv = createInbound({
        cfg,
        policy: { version: "v1", current: () => compiled } as any,
        trust: { isRevoked: () => false } as any,
        audit: { write: (r) => records.push(r), flush() {} },
        metrics: createMetrics(),
        log: pino({ level: "silent" }),
        tls: { key: serverLeaf.key, cert: serverLeaf.cert, ca: ca.certPem },
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      return { srv, records, port: (srv.address() as AddressInfo).port };
    }

    const get = (port: number, path: string, headers: Record<string, string>) =>
      new Promise<{ status?: number; body?: string; err?: string }>((resolve) => {
        const q = https.request({ host: "127.0.0.1", port, path, ca: ca.certPem, key: client.key, cert: client.cert, headers, agent: false, checkServerIdentity: () => undefined }, (x) => {
          let b = "";
          x.on("data", (c) => (b += c));
          x.on("end", () => resolve({ status: x.statusCode, body: b }));
        });
        q.on("error", (e) => resolve({ err: e.message }));
        q.end();
      });

    for (const size of [20_000, 200_000, 1_000_000]) {
      it(`leaves exactly one audit record for a request with a ${size}-byte header, answered 431`, async () => {
        const { srv, records, port } = await inbound();
        try {
          const res = await get(port, "/public/x", { "x-big": "a".repeat(size) });
          if (res.status !== undefined) assert.equal(res.status, 431);
          // Give a second clientError (if any) time to arrive.
          await new Promise((r) => setTimeout(r, 300));
          const refusals = records.filter((r) => r.reason === "HeadersTooLarge");
          assert.equal(refusals.length, 1, JSON.stringify(records));
          assert.equal(records.length, 1);
        } finally {
          srv.close();
        }
      });
    }

    it("forwards an allowed request without the override headers", async () => {
      const app = await echoApp("orders");
      const { srv, port } = await inbound(app.port);
      try {
        const res = await get(port, "/public/x", { "x-original-url": "/admin/keys", "x-http-method-override": "DELETE" });
        assert.equal(res.status, 200, res.body ?? res.err);
        const seen = app.seen[0];
        assert.equal(seen.url, "/public/x");
        assert.equal(seen.headers["x-original-url"], undefined);
        assert.equal(seen.headers["x-http-method-override"], undefined);
        assert.equal(seen.headers["x-tenet-caller"], spiffe("frontend"));
      } finally {
        srv.close();
        await app.close();
      }
    });
  });
});
