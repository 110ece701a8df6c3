// Transparent capture on the real node: the enforcer is the only way in and out of a protected
// pod. Unmodified apps (no proxy setting, no TENET_PEERS) call each other by Service name through
// their enforcers; a pod without an enforcer reaches no app port (pod IP, Service IP) in strict
// mode; plaintext to the enforcer's own port, a spoofed x-tenet-caller and a destination with the
// wrong identity are refused; opaque TCP is carried over mTLS with identity-only rules.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { apply, auditRecords, containerSecurity, deployDemo, exec, kube, namespace, podSecurity, readyPod } from "../harness/node.ts";

const APP = "ghcr.io/acme/e2e-app:1.0";

// A cache stand-in (line echo on 6379) with an L4 APIPolicy: only frontend may connect.
const cache = (ns: string) => `
apiVersion: v1
kind: ServiceAccount
metadata: {name: cache, namespace: ${ns}}
---
apiVersion: tenet.dev/v1alpha1
kind: ServiceIdentity
metadata: {name: cache, namespace: ${ns}}
spec: {selector: {matchLabels: {app: cache}}, serviceAccountName: cache}
---
apiVersion: tenet.dev/v1alpha1
kind: APIPolicy
metadata: {name: cache, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: cache}}
  apis: [{name: redis, paths: ["/tcp/6379"], methods: {CONNECT: connect}}]
  rules: [{name: frontend-connects, from: [{spiffeIDs: ["spiffe://cluster.local/ns/${ns}/sa/frontend"]}], to: [{api: redis}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cache, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      serviceAccountName: cache
      terminationGracePeriodSeconds: 2
      ${podSecurity(10003)}
      containers:
        - name: cache
          image: ${APP}
          imagePullPolicy: Never
          command: [node, /app/tcp-echo.js]
          ${containerSecurity}
          env: [{name: NAME, value: cache}]
          ports: [{name: redis, containerPort: 6379}]
          readinessProbe: {tcpSocket: {port: redis}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: ${ns}}
spec:
  selector: {app: cache}
  ports: [{name: redis, port: 6379, targetPort: 6379}]
`;

// A pod with no enforcer, in a namespace that does not opt in: the bypass attempts come from it.
const outsider = (ns: string) => `
apiVersion: v1
kind: Pod
metadata: {name: outsider, namespace: ${ns}, labels: {app: outsider}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: outsider, image: ${APP}, imagePullPolicy: Never, command: [node, /app/server.js]}]
`;

describe("e2e: transparent capture", function () {
  this.timeout(240_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  let plain: Awaited<ReturnType<typeof namespace>>;
  let pods: Awaited<ReturnType<typeof deployDemo>>;
  let ordersSvcIP: string;
  // No TENET_PEERS for the frontend: the annotation is dropped; one override names an impostor.
  const impostor = (n: string) => `'{"impostor.${n}.svc": {"spiffeID": "spiffe://cluster.local/ns/${n}/sa/frontend", "address": "orders.${n}.svc:15443"}}'`;
  before(async () => {
    ns = await namespace("e2e-cap");
    plain = await namespace("e2e-plain", { inject: false });
    const n = ns.name;
    await apply(cache(n));
    await apply(outsider(plain.name));
    pods = await deployDemo(n, { orders: APP, frontend: APP }, { [`'{"orders.${n}.svc": "spiffe://cluster.local/ns/${n}/sa/orders"}'`]: impostor(n) });
    ordersSvcIP = (await kube().get(`/api/v1/namespaces/${n}/services/orders`)).spec.clusterIP;
    await readyPod(n, "app=cache");
    await readyPod(plain.name, "app=outsider");
  });
  after(async () => {
    await ns?.remove();
    await plain?.remove();
  });

  const fe = () => pods.frontend.metadata.name;
  const http = (method: string, url: string, ...headers: string[]) =>
    exec(ns.name, fe(), "frontend", ["node", "/app/http.js", method, url, ...headers]).then((r) => ({ code: r.code, status: Number(r.stdout.split(" ")[0]) || 0, out: (r.stdout + r.stderr).trim() }));
  const fromOutsider = (url: string) => exec(plain.name, "outsider", "outsider", ["node", "/app/http.js", "GET", url]).then((r) => ({ code: r.code, out: (r.stdout + r.stderr).trim() }));

  it("carries an unmodified app's call by Service name through both enforcers (no proxy, no TENET_PEERS)", async () => {
    const url = `http://orders.${ns.name}.svc/healthz`;
    const ok = await waitFor("a captured call to orders", async () => {
      const r = await http("GET", url);
      return r.status === 200 ? r : undefined;
    }, 60_000, 1000);
    const body = JSON.parse(ok.out.slice(4));
    assert.equal(body.name, "orders");
    assert.equal(body.caller, `spiffe://cluster.local/ns/${ns.name}/sa/frontend`, "orders' enforcer identified the caller from its certificate");
    // APIPolicy still decides: the JWT rule and the scope rule as in the explicit-proxy path.
    assert.equal((await http("GET", `http://orders.${ns.name}.svc/v1/orders`)).status, 401);
    assert.equal((await http("DELETE", `http://orders.${ns.name}.svc/v1/orders/42`)).status, 403);
    const out = (await auditRecords(ns.name, fe())).filter((r) => r.direction === "outbound" && r.reason === "Meshed");
    assert.ok(out.some((r) => r.peer === `spiffe://cluster.local/ns/${ns.name}/sa/orders` && r.protocol === "http/1.1"), "the frontend's enforcer audited the meshed connection");
  });

  it("ignores a spoofed x-tenet-caller: the app sees the identity from the certificate", async () => {
    const r = await http("GET", `http://orders.${ns.name}.svc/healthz`, "x-tenet-caller=spiffe://cluster.local/ns/kube-system/sa/admin");
    assert.equal(r.status, 200, r.out);
    assert.equal(JSON.parse(r.out.slice(4)).caller, `spiffe://cluster.local/ns/${ns.name}/sa/frontend`);
  });

  it("refuses a pod without an enforcer on the pod IP, the Service IP and every app port (strict mode)", async () => {
    const ip = pods.orders.status.podIP;
    for (const url of [`http://${ip}:8080/healthz`, `http://${ordersSvcIP}/healthz`, `http://orders.${ns.name}.svc/healthz`, `http://${ip}:9999/`, `http://${ip}:15006/`]) {
      const r = await fromOutsider(url);
      assert.ok(!/^200 /.test(r.out), `${url} answered: ${r.out}`);
      if (!url.includes(":9999") && !url.includes(":15006")) assert.match(r.out, /^403 .*PlaintextRefused/, url);
    }
    // The enforcer's own mTLS port with plaintext: the handshake fails, nothing reaches the app.
    const tls = await fromOutsider(`http://${ip}:15443/healthz`);
    assert.notEqual(tls.code, 0, tls.out);
    const records = await waitFor("orders' audit of the plaintext attempts", async () => {
      const a = (await auditRecords(ns.name, pods.orders.metadata.name)).filter((r) => r.reason === "PlaintextRefused");
      return a.length >= 3 ? a : undefined;
    }, 15_000, 500);
    assert.ok(records.every((r) => r.decision === "deny" && r.protocol === "plaintext" && r.source));
  });

  it("refuses a destination that presents another identity than expected", async () => {
    const r = await http("GET", `http://${ordersSvcIP}/healthz`, `host=impostor.${ns.name}.svc`);
    assert.equal(r.status, 502, r.out);
    assert.match(r.out, /PeerIdentityMismatch/);
  });

  it("carries opaque TCP over mTLS and lets an L4 rule decide by identity", async () => {
    const ok = await waitFor("a TCP exchange with the cache", async () => {
      const r = await exec(ns.name, fe(), "frontend", ["node", "/app/tcp.js", `cache.${ns.name}.svc`, "6379", "PING"]);
      return r.code === 0 ? r : undefined;
    }, 60_000, 1000);
    assert.match(ok.stdout, /^cache PING/);
    // orders' identity has no rule for the cache: its connection is refused.
    const denied = await exec(ns.name, pods.orders.metadata.name, "orders", ["node", "/app/tcp.js", `cache.${ns.name}.svc`, "6379", "PING"]);
    assert.notEqual(denied.code, 0, denied.stdout);
    const cachePod = (await readyPod(ns.name, "app=cache")).metadata.name;
    const rec = (await auditRecords(ns.name, cachePod)).filter((r) => r.method === "CONNECT");
    assert.ok(rec.some((r) => r.decision === "allow" && r.caller.endsWith("/sa/frontend")));
    assert.ok(rec.some((r) => r.decision === "deny" && r.caller.endsWith("/sa/orders")));
  });
});
