// Transparent capture, the pure parts: what injection adds (the capture init container, its
// rules, probes through the health port, exclusions), and how the enforcer classifies and routes
// a captured connection.
import assert from "node:assert/strict";
import { CAPTURE_CONTAINER, captureRules, EXCLUDE_INBOUND_PORTS_ANNOTATION, EXCLUDE_OUTBOUND_CIDRS_ANNOTATION, EXCLUDE_OUTBOUND_PORTS_ANNOTATION } from "../../admission/capture.ts";
import { InjectionError, injectPod, withoutEnforcer, type InjectionConfig } from "../../admission/inject.ts";
import { portFromServername, portServername, route, sniff } from "../../enforcer/capture.ts";
import { parsePeers, parseProbes } from "../../enforcer/config.ts";
import { testInjectionConfig } from "../harness/injection.ts";

const cfg: InjectionConfig = { ...testInjectionConfig, capture: { ...testInjectionConfig.capture, enabled: true } };
const pod = (annotations: Record<string, string> = {}, extra: any = {}) => ({
  metadata: { name: "web", namespace: "shop", annotations },
  spec: {
    containers: [
      {
        name: "web",
        image: "ghcr.io/acme/web:1.0",
        ports: [{ name: "http", containerPort: 8080 }],
        readinessProbe: { httpGet: { path: "/ready", port: "http" }, periodSeconds: 1 },
        livenessProbe: { tcpSocket: { port: 8080 } },
        startupProbe: { exec: { command: ["true"] } },
        ...extra,
      },
    ],
  },
});
const env = (c: any, name: string) => c.env.find((e: any) => e.name === name)?.value;

describe("capture: injection", () => {
  it("runs the capture container first, with NET_ADMIN and NET_RAW only, then the enforcer as a fixed UID", () => {
    const out = injectPod(pod(), cfg);
    const [capture, enforcer] = out.spec.initContainers;
    assert.equal(capture.name, CAPTURE_CONTAINER);
    assert.equal(capture.restartPolicy, undefined, "a regular init container: it exits before the app starts");
    assert.deepEqual(capture.securityContext.capabilities, { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] });
    assert.equal(enforcer.name, "tenet-enforcer");
    assert.deepEqual(enforcer.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(enforcer.securityContext.runAsUser, 15900);
    assert.equal(env(enforcer, "TENET_CAPTURE"), "true");
    assert.equal(out.spec.containers[0].securityContext, undefined, "the app gets no capability");
  });

  it("redirects every inbound port but the enforcer's, and all outbound TCP but the enforcer's UID and loopback", () => {
    const rules = env(injectPod(pod(), cfg).spec.initContainers[0], "TENET_CAPTURE_RULES");
    assert.equal(rules, captureRules(cfg.capture, { inbound: 15443, health: 15021 }, { inboundPorts: [], outboundPorts: [], outboundCIDRs: [] }));
    assert.match(rules, /-A TENET_INBOUND -p tcp --dport 15443 -j RETURN\n-A TENET_INBOUND -p tcp --dport 15021 -j RETURN\n-A TENET_INBOUND -p tcp -j REDIRECT --to-ports 15006\n/);
    assert.match(rules, /-A TENET_OUTBOUND -m owner --uid-owner 15900 -j RETURN\n-A TENET_OUTBOUND -o lo -j RETURN\n/);
    assert.match(rules, /-A TENET_OUTBOUND -p tcp -j REDIRECT --to-ports 15002\nCOMMIT\n$/);
  });

  it("honours the exclusion annotations, and refuses malformed ones naming the annotation", () => {
    const out = injectPod(pod({ [EXCLUDE_INBOUND_PORTS_ANNOTATION]: "9090, 9091", [EXCLUDE_OUTBOUND_PORTS_ANNOTATION]: "5432", [EXCLUDE_OUTBOUND_CIDRS_ANNOTATION]: "169.254.169.254,10.0.0.0/8" }), cfg);
    const rules = env(out.spec.initContainers[0], "TENET_CAPTURE_RULES");
    for (const l of ["--dport 9090 -j RETURN", "--dport 9091 -j RETURN", "TENET_OUTBOUND -p tcp --dport 5432 -j RETURN", "-d 169.254.169.254/32 -j RETURN", "-d 10.0.0.0/8 -j RETURN"]) assert.ok(rules.includes(l), l);
    for (const [k, v] of [[EXCLUDE_INBOUND_PORTS_ANNOTATION, "http"], [EXCLUDE_OUTBOUND_PORTS_ANNOTATION, "70000"], [EXCLUDE_OUTBOUND_CIDRS_ANNOTATION, "10.0.0.0/33"], [EXCLUDE_OUTBOUND_CIDRS_ANNOTATION, "1.2.3.4 -j ACCEPT"]]) {
      assert.throws(() => injectPod(pod({ [k]: v }), cfg), (e: Error) => e instanceof InjectionError && e.message.includes(k), `${k}=${v}`);
    }
  });

  it("points httpGet and tcpSocket probes at the health port and hands the originals to the enforcer; exec probes stay", () => {
    const out = injectPod(pod(), cfg);
    const web = out.spec.containers[0];
    assert.deepEqual(web.readinessProbe, { periodSeconds: 1, httpGet: { path: "/app-health/web/readiness", port: 15021, scheme: "HTTP" } });
    assert.deepEqual(web.livenessProbe, { httpGet: { path: "/app-health/web/liveness", port: 15021, scheme: "HTTP" } });
    assert.deepEqual(web.startupProbe, { exec: { command: ["true"] } });
    const probes = parseProbes(env(out.spec.initContainers[1], "TENET_APP_PROBES"));
    assert.deepEqual(Object.fromEntries(probes), { "web/readiness": { httpGet: { port: 8080, path: "/ready", scheme: "HTTP" } }, "web/liveness": { tcpSocket: { port: 8080 } } });
    // Level-based: injecting the injected pod again changes nothing.
    assert.deepEqual(injectPod(out, cfg), out);
  });

  it("refuses an app that runs as the enforcer's UID (its traffic would skip capture)", () => {
    assert.throws(() => injectPod(pod({}, { securityContext: { runAsUser: 15900 } }), cfg), /UID 15900/);
  });

  it("tenet.dev/capture: \"false\" leaves the pod uncaptured, its probes as written", () => {
    const out = injectPod(pod({ "tenet.dev/capture": "false" }), cfg);
    assert.deepEqual(out.spec.initContainers.map((c: any) => c.name), ["tenet-enforcer"]);
    assert.deepEqual(out.spec.containers[0].readinessProbe.httpGet.port, "http");
  });

  it("leaves the exact capture container out of judgement, and a look-alike in", () => {
    const out = injectPod(pod(), cfg);
    assert.deepEqual(withoutEnforcer(out.spec, cfg, out.metadata.annotations).initContainers ?? [], []);
    const forged = structuredClone(out);
    forged.spec.initContainers[0].securityContext.privileged = true;
    assert.deepEqual(withoutEnforcer(forged.spec, cfg, forged.metadata.annotations).initContainers.map((c: any) => c.name), [CAPTURE_CONTAINER]);
  });
});

describe("capture: the enforcer's classification and routing", () => {
  it("tells HTTP/1.1 (with its Host), HTTP/2 and opaque TCP apart from the first bytes", () => {
    assert.deepEqual(sniff(Buffer.from("GET /v1/orders?x=1 HTTP/1.1\r\nHost: Orders.shop.svc\r\n\r\n")), { protocol: "http/1.1", method: "GET", path: "/v1/orders", host: "orders.shop.svc" });
    assert.equal(sniff(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).protocol, "h2");
    assert.equal(sniff(Buffer.from("*1\r\n$4\r\nPING\r\n")).protocol, "tenet-tcp");
    assert.equal(sniff(Buffer.alloc(0)).protocol, "tenet-tcp");
  });

  it("carries the app port in SNI and never accepts a malformed one", () => {
    assert.equal(portFromServername(portServername(8080)), 8080);
    for (const bad of ["orders.shop.svc", "0.port.tenet", "70000.port.tenet", "8080.port.tenet.evil", "", undefined]) assert.equal(portFromServername(bad as any), undefined, String(bad));
  });

  const mesh = { version: "v", inbound: "strict" as const, egress: "allow" as const, ids: ["spiffe://cluster.local/ns/shop/sa/orders", "spiffe://cluster.local/ns/shop/sa/pay"], services: { "10.96.0.20:80": [["10.244.0.7", 8080, 0]] as [string, number, number][] }, pods: { "10.244.0.7": 0, "10.244.0.9": 1 } };
  it("routes a Service IP to a meshed endpoint's enforcer, a pod IP to its own, the rest outside the mesh", () => {
    assert.deepEqual(route({ address: "10.96.0.20", port: 80 }, undefined, mesh, new Map(), 15443), { kind: "mesh", host: "10.244.0.7", port: 15443, appPort: 8080, spiffeID: mesh.ids[0], via: "mesh" });
    assert.deepEqual(route({ address: "10.244.0.9", port: 9000 }, undefined, mesh, new Map(), 15443), { kind: "mesh", host: "10.244.0.9", port: 15443, appPort: 9000, spiffeID: mesh.ids[1], via: "mesh" });
    assert.equal(route({ address: "10.96.0.21", port: 80 }, undefined, mesh, new Map(), 15443), undefined);
    assert.equal(route({ address: "10.96.0.20", port: 80 }, undefined, undefined, new Map(), 15443), undefined);
  });

  it("lets TENET_PEERS override the expected identity by Host, and the address when it names one", () => {
    const peers = parsePeers('{"orders.shop.svc": "spiffe://cluster.local/ns/shop/sa/other", "legacy.shop.svc": {"spiffeID": "spiffe://cluster.local/ns/shop/sa/legacy", "address": "10.0.0.5:15443"}}');
    assert.equal(route({ address: "10.96.0.20", port: 80 }, "orders.shop.svc", mesh, peers, 15443)?.spiffeID, "spiffe://cluster.local/ns/shop/sa/other");
    assert.deepEqual(route({ address: "10.96.0.99", port: 80 }, "legacy.shop.svc", mesh, peers, 15443), { kind: "mesh", host: "10.0.0.5", port: 15443, spiffeID: "spiffe://cluster.local/ns/shop/sa/legacy", via: "peers" });
    // Before the mesh document lists the Service, a match by name does not send the Service's
    // port (80) as the app port: the destination's default app port answers (quick start, 502 seen).
    assert.deepEqual(route({ address: "10.96.0.20", port: 80 }, "orders.shop.svc", undefined, peers, 15443), { kind: "mesh", host: "10.96.0.20", port: 15443, spiffeID: "spiffe://cluster.local/ns/shop/sa/other", via: "peers" });
    const byIP = parsePeers('{"10.244.0.9:9000": "spiffe://cluster.local/ns/shop/sa/pay"}');
    assert.deepEqual(route({ address: "10.244.0.9", port: 9000 }, undefined, undefined, byIP, 15443), { kind: "mesh", host: "10.244.0.9", port: 15443, appPort: 9000, spiffeID: "spiffe://cluster.local/ns/shop/sa/pay", via: "peers" });
  });
});
