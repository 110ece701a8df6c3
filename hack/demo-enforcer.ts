// The quick start's enforcer demo: two real enforcer processes on loopback, for pods
// demo/frontend-5d2a and demo/orders-7f9c, each with its pod's bound token and a certificate
// from Tenet's CA, orders' enforcer in front of a small echo app. frontend's app calls orders
// through its enforcer's outbound proxy (mTLS to orders' enforcer, which checks APIPolicy
// demo/orders); then it prints the answers and orders' audit records.
//   tsx hack/demo-enforcer.ts --endpoint https://127.0.0.1:9443 --dir .tenet/quickstart
import { writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseArgs } from "node:util";
import { Kube, resourcePath, Resources } from "../common/kube.ts";
import { echoApp, EnforcerProcess, killAllEnforcers } from "../test/harness/enforcer.ts";

const { values } = parseArgs({ options: { endpoint: { type: "string" }, dir: { type: "string" }, namespace: { type: "string", default: "demo" } } });
if (!values.endpoint || !values.dir) {
  console.error("usage: demo-enforcer.ts --endpoint https://HOST:PORT --dir STATE_DIR [--namespace demo]");
  process.exit(2);
}
const ns = values.namespace!;
const kube = Kube.fromEnv();
const bundleFile = path.join(values.dir, "trust-bundle.pem");
writeFileSync(bundleFile, (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data["ca.crt"]);

/** What the kubelet would mount: the pod's projected token, audience tenet, bound to the pod. */
async function tokenFile(podName: string) {
  const pod = await kube.get(resourcePath(Resources.pods, ns, podName));
  const tr = await kube.create(resourcePath(Resources.serviceAccounts, ns, pod.spec.serviceAccountName, "token"), {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { audiences: ["tenet"], expirationSeconds: 3600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: podName, uid: pod.metadata.uid } },
  });
  const file = path.join(values.dir!, `${podName}.token`);
  writeFileSync(file, tr.status.token, { mode: 0o600 });
  return file;
}

const common = { TENET_CA_ENDPOINT: values.endpoint, TENET_BUNDLE_FILE: bundleFile };
const app = await echoApp("orders");
try {
  const orders = await EnforcerProcess.start("orders-7f9c", { ...common, TENET_TOKEN_FILE: await tokenFile("orders-7f9c"), TENET_APP_PORT: String(app.port) });
  const frontend = await EnforcerProcess.start("frontend-5d2a", {
    ...common,
    TENET_TOKEN_FILE: await tokenFile("frontend-5d2a"),
    TENET_PEERS: JSON.stringify({ [`orders.${ns}.svc`]: { spiffeID: `spiffe://cluster.local/ns/${ns}/sa/orders`, address: `127.0.0.1:${orders.inboundPort}` } }),
  });
  console.log(`enforcers up: orders inbound :${orders.inboundPort} (in front of the app on :${app.port}), frontend outbound proxy :${frontend.outboundPort}\n`);

  // frontend's app speaks plain HTTP to its enforcer, as to any HTTP proxy.
  const call = (method: string, target: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: frontend.outboundPort, method, path: target, headers: { host: new URL(target).host } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.end();
    });
  for (const [method, target, why] of [
    ["GET", `http://orders.${ns}.svc/healthz`, "rule any-caller-health: any authenticated caller"],
    ["GET", `http://orders.${ns}.svc/v1/orders`, "rule frontend-reads-and-creates-orders needs a JWT from auth.acme.example"],
    ["DELETE", `http://orders.${ns}.svc/v1/orders/42`, "no rule grants scope delete"],
  ]) {
    const r = await call(method, target);
    const summary = r.status === 200 ? `reached the app as ${JSON.parse(r.body).caller}` : r.body.trim();
    console.log(`frontend → ${method} ${target}\n  ${r.status} ${summary}\n  (${why})`);
  }
  await new Promise((r) => setTimeout(r, 400)); // audit lines are flushed every 200 ms
  console.log("\naudit records of orders' enforcer (one per attempt):");
  for (const a of orders.audit()) {
    console.log(JSON.stringify({ time: a.time, caller: a.caller, posture: a.posture, method: a.method, path: a.path, api: a.api, scope: a.scope, decision: a.decision, rule: a.rule, reason: a.reason, status: a.status, latencyMs: a.latencyMs }));
  }
} finally {
  await killAllEnforcers();
  await app.close();
}
