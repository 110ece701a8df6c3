// Plays a workload for the quick start and for debugging: asks the API server for the pod's
// bound token (audience tenet), makes a key and a CSR locally, and asks Tenet's CA endpoint
// for a certificate, exactly as the enforcer sidecar does.
//   tsx hack/request-cert.ts --namespace demo --pod orders-7f9c --endpoint https://127.0.0.1:9443 --out cert.pem
import crypto from "node:crypto";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Kube, resourcePath, Resources } from "../common/kube.ts";
import { httpsRequest, makeCSR } from "../test/harness/pki.ts";

const { values } = parseArgs({
  options: {
    namespace: { type: "string" },
    pod: { type: "string" },
    endpoint: { type: "string" },
    out: { type: "string", default: "workload.crt" },
    "trust-domain": { type: "string", default: "cluster.local" },
  },
});
if (!values.namespace || !values.pod || !values.endpoint) {
  console.error("usage: request-cert.ts --namespace NS --pod NAME --endpoint https://HOST:PORT [--out FILE]");
  process.exit(2);
}
const kube = Kube.fromEnv();
const pod = await kube.get(resourcePath(Resources.pods, values.namespace, values.pod));
const sa = pod.spec.serviceAccountName ?? "default";
const tr = await kube.create(resourcePath(Resources.serviceAccounts, values.namespace, sa, "token"), {
  apiVersion: "authentication.k8s.io/v1",
  kind: "TokenRequest",
  spec: { audiences: ["tenet"], expirationSeconds: 600, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: values.pod, uid: pod.metadata.uid } },
});
const bundle = (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data["ca.crt"];
const csr = await makeCSR({ uris: [`spiffe://${values["trust-domain"]}/ns/${values.namespace}/sa/${sa}`] });
const res = await httpsRequest(`${values.endpoint}/v1/certificates`, {
  method: "POST",
  ca: bundle,
  headers: { "content-type": "application/json", authorization: `Bearer ${tr.status.token}` },
  body: JSON.stringify({ csr: csr.pem }),
});
if (res.status !== 200) {
  console.error(`refused (${res.status}): ${res.json?.error?.reason ?? ""} ${res.json?.error?.message ?? res.body}`);
  process.exit(1);
}
writeFileSync(values.out!, res.json.certificate);
const pkcs8 = Buffer.from(await crypto.webcrypto.subtle.exportKey("pkcs8", csr.keys.privateKey));
writeFileSync(`${values.out}.key`, `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 });
console.log(`certificate for ${res.json.spiffeID} (serial ${res.json.serial}, until ${res.json.notAfter}) written to ${values.out}`);
