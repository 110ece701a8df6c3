// The enforcer's operator client resumes the TLS sessions of its earlier requests (a renewal after
// the policy and trust polls skips the certificate exchange), and resumption never widens trust:
// a server that failed the client's check leaves no session behind, a session made under one
// serving-CA bundle is not resumed under another, and the sessions are the client's own.
import { strict as assert } from "node:assert";
import https from "node:https";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { OperatorClient } from "../../enforcer/operator-client.ts";
import { defaultCAPolicy, loadAuthorities, planAuthorities } from "../../operator/ca/authorities.ts";
import { issueServingCert } from "../../operator/ca/serving-cert.ts";

const operatorID = "spiffe://cluster.local/ns/tenet-system/sa/tenet-operator";
const names = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], ttlSeconds: 3600 };
const newAuthorities = (cn: string) => loadAuthorities(planAuthorities(undefined, new Date(), { ...defaultCAPolicy, commonName: cn }).state);

/** An HTTPS server that records, per request, whether its TLS session was resumed. */
async function server(cert: { key: string; cert: string }, maxVersion: "TLSv1.2" | "TLSv1.3") {
  const resumed: boolean[] = [];
  const s = https.createServer({ key: cert.key, cert: cert.cert, maxVersion }, (req, res) => {
    resumed.push((req.socket as TLSSocket).isSessionReused());
    res.end("ok");
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  return { url: `https://127.0.0.1:${(s.address() as AddressInfo).port}/v1/bundle`, resumed, close: () => new Promise((r) => s.close(r)) };
}

function tokenFile() {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), "tenet-sessions-")), "token");
  writeFileSync(file, "a-token");
  return file;
}

for (const version of ["TLSv1.3", "TLSv1.2"] as const) {
  describe(`operator client TLS sessions (${version})`, () => {
    it("resumes its session on later requests to the operator", async () => {
      const serving = newAuthorities("Tenet Serving CA");
      const srv = await server(issueServingCert(serving, { spiffeID: operatorID, ...names }), version);
      try {
        const client = new OperatorClient(() => serving.bundlePem, tokenFile());
        for (let i = 0; i < 3; i++) assert.equal((await client.get(srv.url)).status, 200);
        assert.deepEqual(srv.resumed, [false, true, true]);
      } finally {
        await srv.close();
      }
    });

    it("keeps no session from a server that failed its check: a trusted CA's certificate without the operator's SPIFFE ID is refused every time", async () => {
      const serving = newAuthorities("Tenet Serving CA");
      const srv = await server(issueServingCert(serving, { spiffeID: "spiffe://cluster.local/ns/shop/sa/orders", ...names }), version);
      try {
        const client = new OperatorClient(() => serving.bundlePem, tokenFile());
        for (let i = 0; i < 3; i++) await assert.rejects(client.get(srv.url), /not the operator's/);
        assert.deepEqual(srv.resumed, [], "no request got through");
      } finally {
        await srv.close();
      }
    });

    it("does not resume a session made under another serving-CA bundle, and refuses the server once its CA is no longer trusted", async () => {
      const serving = newAuthorities("Tenet Serving CA");
      const next = newAuthorities("Tenet Serving CA");
      const srv = await server(issueServingCert(serving, { spiffeID: operatorID, ...names }), version);
      try {
        let bundle = serving.bundlePem;
        const client = new OperatorClient(() => bundle, tokenFile());
        assert.equal((await client.get(srv.url)).status, 200);
        // Rotation overlap: both CAs trusted → a full handshake under the new bundle, not a resumption.
        bundle = serving.bundlePem + next.bundlePem;
        assert.equal((await client.get(srv.url)).status, 200);
        assert.equal((await client.get(srv.url)).status, 200);
        assert.deepEqual(srv.resumed, [false, false, true]);
        // The old CA dropped: the sessions made under it are not offered, and the server is refused.
        bundle = next.bundlePem;
        await assert.rejects(client.get(srv.url), /certificate|verify|issuer/i);
        assert.equal(srv.resumed.length, 3);
      } finally {
        await srv.close();
      }
    });

    it("does not share sessions between clients (each enforcer's are its own)", async () => {
      const serving = newAuthorities("Tenet Serving CA");
      const srv = await server(issueServingCert(serving, { spiffeID: operatorID, ...names }), version);
      try {
        const a = new OperatorClient(() => serving.bundlePem, tokenFile());
        const b = new OperatorClient(() => serving.bundlePem, tokenFile(), undefined, "spiffe://other.example/ns/tenet-system/sa/tenet-operator");
        assert.equal((await a.get(srv.url)).status, 200);
        // b expects another operator identity: it must do (and fail) its own check, not resume a's session.
        await assert.rejects(b.get(srv.url), /not the operator's/);
        assert.equal((await a.get(srv.url)).status, 200);
        assert.deepEqual(srv.resumed, [false, true]);
      } finally {
        await srv.close();
      }
    });
  });
}
