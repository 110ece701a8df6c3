// Capture on the real node, beyond HTTP/1.1: unmodified apps in real pods make gRPC calls (h2c,
// no proxy setting, no TENET_PEERS) that the destination's APIPolicy allows or denies by method;
// a permissive workload admits a plaintext caller and audits it, a strict one does not; a
// workload whose egress is `outsideMesh: deny` cannot call a non-meshed pod, one with the default
// can; a quarantined (revoked) caller is refused on HTTP, gRPC and opaque TCP, then admitted again
// once released.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { apply, auditRecords, containerSecurity, deployDemo, exec, kube, kubectl, namespace, podSecurity, readyPod, VICTIM, victimReport } from "../harness/node.ts";

const APP = "ghcr.io/acme/e2e-app:1.0";
const spiffe = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;


// backend: a gRPC service (e2e.v1.Orders over h2c on 50051) and a cache stand-in (line echo on
// 6379) in one pod. Its APIPolicy lets frontend call GetOrder and connect to 6379, nothing else.
const backend = (ns: string) => `
apiVersion: v1
kind: ServiceAccount
metadata: {name: backend, namespace: ${ns}}
---
apiVersion: tenet.dev/v1alpha1
kind: ServiceIdentity
metadata: {name: backend, namespace: ${ns}}
spec: {selector: {matchLabels: {app: backend}}, serviceAccountName: backend}
---
apiVersion: tenet.dev/v1alpha1
kind: APIPolicy
metadata: {name: backend, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: backend}}
  apis:
    - {name: orders-read, paths: ["/e2e.v1.Orders/GetOrder"], methods: {POST: read}}
    - {name: orders-admin, paths: ["/e2e.v1.Orders/DeleteOrder"], methods: {POST: admin}}
    - {name: redis, paths: ["/tcp/6379"], methods: {CONNECT: connect}}
  rules: [{name: frontend-reads-and-caches, from: [{spiffeIDs: ["${spiffe(ns, "frontend")}"]}], to: [{api: orders-read}, {api: redis}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      serviceAccountName: backend
      terminationGracePeriodSeconds: 2
      ${podSecurity(10004)}
      containers:
        - name: grpc
          image: ${APP}
          imagePullPolicy: Never
          command: [node, /app/grpc-server.js]
          env: [{name: NAME, value: backend}]
          ports: [{name: grpc, containerPort: 50051}]
          readinessProbe: {tcpSocket: {port: grpc}, periodSeconds: 2}
          ${containerSecurity}
        - name: cache
          image: ${APP}
          imagePullPolicy: Never
          command: [node, /app/tcp-echo.js]
          env: [{name: NAME, value: cache}]
          ports: [{name: redis, containerPort: 6379}]
          readinessProbe: {tcpSocket: {port: redis}, periodSeconds: 2}
          ${containerSecurity}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: ${ns}}
spec:
  selector: {app: backend}
  ports: [{name: grpc, port: 50051, targetPort: 50051}, {name: redis, port: 6379, targetPort: 6379}]
`;

// legacy: a workload in migration (inbound permissive) that may not leave the mesh (egress deny).
const legacy = (ns: string) => `
apiVersion: v1
kind: ServiceAccount
metadata: {name: legacy, namespace: ${ns}}
---
apiVersion: tenet.dev/v1alpha1
kind: ServiceIdentity
metadata: {name: legacy, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: legacy}}
  serviceAccountName: legacy
  inbound: {mode: permissive}
  egress: {outsideMesh: deny}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: ${ns}, labels: {app: legacy}}
spec:
  serviceAccountName: legacy
  terminationGracePeriodSeconds: 1
  ${podSecurity(10005)}
  containers:
    - name: legacy
      image: ${APP}
      imagePullPolicy: Never
      command: [node, /app/server.js]
      env: [{name: NAME, value: legacy}]
      ports: [{name: http, containerPort: 8080}]
      readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 2}
      ${containerSecurity}
`;

// A pod with no enforcer, in a namespace that does not opt in: a plaintext caller and a
// destination outside the mesh.
const outsider = (ns: string) => `
apiVersion: v1
kind: Pod
metadata: {name: outsider, namespace: ${ns}, labels: {app: outsider}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: outsider, image: ${APP}, imagePullPolicy: Never, command: [node, /app/server.js], env: [{name: NAME, value: outsider}]}]
`;

// What a namespace editor could add: every pod's traffic allowed. NetworkPolicies add up, so the
// quarantine's deny-all no longer cuts the packets, and what refuses the quarantined caller is
// its revoked certificate at the destinations' enforcers.
const openNetwork = (ns: string) => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: e2e-open, namespace: ${ns}}
spec: {podSelector: {}, policyTypes: [Ingress, Egress], ingress: [{}], egress: [{}]}
`;


describe("e2e: gRPC, permissive mode, egress and quarantine through capture", function () {
  this.timeout(300_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  let plain: Awaited<ReturnType<typeof namespace>>;
  let pods: Awaited<ReturnType<typeof deployDemo>>;
  let backendPod: string;
  let outsiderIP: string;
  const cm = `e2e-victim-proto-${process.pid}`;
  before(async () => {
    ns = await namespace("e2e-proto");
    plain = await namespace("e2e-plain", { inject: false });
    await apply(outsider(plain.name));
    await apply(backend(ns.name));
    await apply(legacy(ns.name));
    // frontend (the caller) runs the image the scan data will find vulnerable.
    pods = await deployDemo(ns.name, { orders: APP, frontend: VICTIM });
    backendPod = (await readyPod(ns.name, "app=backend")).metadata.name;
    await readyPod(ns.name, "app=legacy");
    outsiderIP = (await readyPod(plain.name, "app=outsider")).status.podIP;
  });
  after(async () => {
    await kubectl(["delete", "configmap", cm, "-n", "tenet-system", "--ignore-not-found"], { allowFail: true });
    await ns?.remove();
    await plain?.remove();
  });

  const fe = () => pods.frontend.metadata.name;
  const out = (r: { code: number; stdout: string; stderr: string }) => ({ code: r.code, out: (r.stdout + r.stderr).trim() });
  const grpc = (method: string) => exec(ns.name, fe(), "frontend", ["node", "/app/grpc.js", `backend.${ns.name}.svc:50051`, method, "order-42"]).then(out);
  const tcp = () => exec(ns.name, fe(), "frontend", ["node", "/app/tcp.js", `backend.${ns.name}.svc`, "6379", "PING"]).then(out);
  const http = (pod: string, container: string, url: string) => exec(ns.name, pod, container, ["node", "/app/http.js", "GET", url]).then(out);
  const fromOutsider = (url: string) => exec(plain.name, "outsider", "outsider", ["node", "/app/http.js", "GET", url]).then(out);
  const records = async (pod: string, pred: (r: any) => boolean, min = 1) =>
    waitFor(`audit records in ${pod}`, async () => {
      const a = (await auditRecords(ns.name, pod)).filter(pred);
      return a.length >= min ? a : undefined;
    }, 15_000, 500);

  it("allows one gRPC method and denies another by method, both audited (h2c from the app, h2 over mTLS)", async () => {
    const ok = await waitFor("an allowed gRPC call", async () => {
      const r = await grpc("/e2e.v1.Orders/GetOrder");
      return r.out.startsWith("grpc-status 0 ") ? r : undefined;
    }, 60_000, 1000);
    const reply = JSON.parse(ok.out.slice("grpc-status 0 ".length));
    assert.equal(reply.name, "backend");
    assert.equal(reply.request, "order-42", "the request message reached the service");
    assert.equal(reply.caller, spiffe(ns.name, "frontend"), "backend's enforcer identified the caller from its certificate");
    const denied = await grpc("/e2e.v1.Orders/DeleteOrder");
    assert.match(denied.out, /^grpc-status 7 NoRuleAllows/, "PERMISSION_DENIED by method");
    const audited = await records(backendPod, (r) => r.protocol === "grpc", 2);
    const get = audited.find((r) => r.path === "/e2e.v1.Orders/GetOrder");
    const del = audited.find((r) => r.path === "/e2e.v1.Orders/DeleteOrder");
    assert.deepEqual([get?.decision, get?.caller, get?.api, get?.grpcStatus], ["allow", spiffe(ns.name, "frontend"), "orders-read", 0]);
    assert.deepEqual([del?.decision, del?.reason, del?.grpcStatus], ["deny", "NoRuleAllows", 7]);
    // The caller's enforcer audited the captured connection as meshed HTTP/2.
    const sent = await records(fe(), (r) => r.direction === "outbound" && r.protocol === "h2" && r.reason === "Meshed");
    assert.equal(sent[0].peer, spiffe(ns.name, "backend"));
  });

  it("admits and audits a plaintext caller in permissive mode; strict stays refused", async () => {
    const legacyIP = (await kube().get(`/api/v1/namespaces/${ns.name}/pods/legacy`)).status.podIP;
    const ok = await fromOutsider(`http://${legacyIP}:8080/hello`);
    assert.match(ok.out, /^200 /, ok.out);
    assert.equal(JSON.parse(ok.out.slice(4)).name, "legacy");
    const [rec] = await records("legacy", (r) => r.reason === "PlaintextPermitted");
    assert.deepEqual([rec.direction, rec.decision, rec.mode, rec.protocol, rec.source?.split(":")[0]], ["inbound", "allow", "audit", "plaintext", (await kube().get(`/api/v1/namespaces/${plain.name}/pods/outsider`)).status.podIP]);
    const strict = await fromOutsider(`http://${pods.orders.status.podIP}:8080/healthz`);
    assert.match(strict.out, /^403 .*PlaintextRefused/, strict.out);
  });

  it("refuses and audits a call outside the mesh under egress deny; the default (allow) passes it", async () => {
    const url = `http://${outsiderIP}:8080/out`;
    const refused = await http("legacy", "legacy", url);
    assert.match(refused.out, /^403 .*EgressDenied/, refused.out);
    const [deny] = await records("legacy", (r) => r.direction === "outbound" && r.reason === "EgressDenied");
    assert.deepEqual([deny.decision, deny.destination, deny.path], ["deny", `${outsiderIP}:8080`, "/out"]);
    const passed = await http(pods.orders.metadata.name, "orders", url);
    assert.match(passed.out, /^200 /, passed.out);
    assert.equal(JSON.parse(passed.out.slice(4)).name, "outsider");
    const [allow] = await records(pods.orders.metadata.name, (r) => r.direction === "outbound" && r.reason === "PassThrough");
    assert.deepEqual([allow.decision, allow.destination], ["allow", `${outsiderIP}:8080`]);
  });

  it("refuses a quarantined (revoked) caller on HTTP, gRPC and opaque TCP, and admits it again once released", async () => {
    const httpCall = () => http(fe(), "frontend", `http://orders.${ns.name}.svc/healthz`);
    await waitFor("before: HTTP, gRPC and TCP from the frontend", async () =>
      /^200 /.test((await httpCall()).out) && (await grpc("/e2e.v1.Orders/GetOrder")).out.startsWith("grpc-status 0") && (await tcp()).code === 0, 60_000, 1000);
    await apply(openNetwork(ns.name));
    await apply(victimReport(cm, true));
    await waitFor("the caller's quarantine", async () => (await kube().get(`/api/v1/namespaces/${ns.name}/pods/${fe()}`)).metadata.labels?.["tenet.dev/quarantined"] === "true", 60_000, 500);
    // The destinations' enforcers learn of the revocation within their refresh period.
    const h = await waitFor("HTTP refused", async () => {
      const r = await httpCall();
      return /CertificateRevoked/.test(r.out) ? r : undefined;
    }, 60_000, 1000);
    assert.match(h.out, /^403 /);
    const g = await waitFor("gRPC refused", async () => {
      const r = await grpc("/e2e.v1.Orders/GetOrder");
      return /CertificateRevoked/.test(r.out) ? r : undefined;
    }, 60_000, 1000);
    assert.match(g.out, /^grpc-status 7 /);
    await waitFor("TCP refused", async () => (await tcp()).code !== 0, 60_000, 1000);
    const caller = spiffe(ns.name, "frontend");
    const revoked = (r: any) => r.reason === "CertificateRevoked" && r.decision === "deny" && r.caller === caller;
    assert.ok((await records(pods.orders.metadata.name, revoked)).length > 0, "orders audited the refused HTTP call");
    const atBackend = await records(backendPod, revoked, 2);
    assert.ok(atBackend.some((r) => r.protocol === "grpc"), "backend audited the refused gRPC call");
    assert.ok(atBackend.some((r) => r.method === "CONNECT" && r.path === "/tcp/6379"), "backend audited the refused TCP connection");

    // Released: the CA issues the caller a new certificate, and all three work again.
    await apply(victimReport(cm, false));
    await waitFor("the release", async () => (await kube().get(`/api/v1/namespaces/${ns.name}/pods/${fe()}`)).metadata.labels?.["tenet.dev/quarantined"] === undefined, 60_000, 500);
    await waitFor("HTTP, gRPC and TCP admitted again", async () =>
      /^200 /.test((await httpCall()).out) && (await grpc("/e2e.v1.Orders/GetOrder")).out.startsWith("grpc-status 0") && (await tcp()).code === 0, 150_000, 2000);
  });
});
