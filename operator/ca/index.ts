// The identity feature, wired: CA store, revocation list, CSR endpoint routes, serving
// certificate, and the leader's housekeeping controller.
import type { FastifyInstance } from "fastify";
import type { Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { OperatorConfig } from "../config.ts";
import { spiffeID } from "../../pki/spiffe-id.ts";
import { Controller } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import { buildSecureServer, issueServingCert, type ServingIdentity } from "../secure-server.ts";
import { defaultCAPolicy, type LoadedAuthorities } from "./authorities.ts";
import { caReconciler } from "./controller.ts";
import { caRoutes } from "./endpoint.ts";
import { IssuanceStatus } from "./issuance-status.ts";
import { issueForWorkload } from "./issuer.ts";
import { CAMetrics } from "./metrics.ts";
import { recordIssued } from "./pod-serials.ts";
import { RevocationList } from "./revocations.ts";
import { CAStore, ROTATE_ANNOTATION } from "./store.ts";

export { ROTATE_ANNOTATION };

export interface IdentityFeature {
  controller: Controller;
  store: CAStore;
  revocations: RevocationList;
  securePort: () => number;
  serving: () => boolean;
  stop(): Promise<void>;
}

export async function startIdentity(ctx: {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  pods: Informer<CachedPod>;
  identities: Informer<ServiceIdentity & TenetObject>;
  /** Other features' HTTPS routes (admission webhooks), registered before the server listens. */
  routes?: (app: FastifyInstance) => void;
}): Promise<IdentityFeature> {
  const { kube, cfg, events } = ctx;
  const log = ctx.log.child({ component: "ca" });
  const store: CAStore = new CAStore(kube, log, {
    namespace: cfg.namespace,
    secretName: cfg.caSecretName,
    policy: {
      ...defaultCAPolicy,
      validitySeconds: cfg.caValiditySeconds,
      rotateBeforeSeconds: cfg.caRotateBeforeSeconds,
      propagationSeconds: cfg.caPropagationSeconds,
      maxLeafTTLSeconds: cfg.maxCertTTLSeconds,
    },
  }, events);
  const caMetrics = new CAMetrics(ctx.metrics.registry, () => !!store.authorities);
  const revocations = new RevocationList(kube, log, cfg.namespace);
  const issuance = new IssuanceStatus(kube, log);

  const controller = new Controller({
    name: "ca",
    log: ctx.log,
    metrics: ctx.metrics,
    workers: 1,
    reconcile: caReconciler({ kube, store, revocations, fieldManager: "tenet-operator" }),
  });
  const publishBundles = () => {
    controller.enqueue(`bundle/${cfg.namespace}`);
    for (const ns of new Set(ctx.identities.list().map((si) => si.metadata.namespace!))) controller.enqueue(`bundle/${ns}`);
  };
  ctx.identities.onChange((type, si) => type !== "delete" && controller.enqueue(`bundle/${si.metadata.namespace}`));

  const observe = (a: LoadedAuthorities) => {
    caMetrics.bundleSize.set(a.all.length);
    caMetrics.notAfter.reset();
    for (const { ca, status } of a.all) caMetrics.notAfter.set({ serial: ca.serial, status }, ca.notAfter.getTime() / 1000);
  };

  await store.start();
  await revocations.start();

  const servingID: ServingIdentity = {
    spiffeID: spiffeID(cfg.trustDomain, cfg.namespace, "tenet-operator"),
    dnsNames: [...new Set(["tenet-operator", `tenet-operator.${cfg.namespace}.svc`, `tenet-operator.${cfg.namespace}.svc.cluster.local`, "localhost", ...cfg.servingDNSNames])],
    ipAddresses: [...new Set(["127.0.0.1", ...cfg.servingIPs])],
    ttlSeconds: 24 * 3600,
  };

  let app: ReturnType<typeof buildSecureServer> | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  const scheduleRenewal = (notBefore: Date, notAfter: Date) => {
    if (renewTimer) clearTimeout(renewTimer);
    const due = notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3 - Date.now();
    renewTimer = setTimeout(renewServingCert, Math.max(1000, Math.min(due, 2 ** 31 - 1)));
    renewTimer.unref();
  };
  function renewServingCert() {
    const a = store.authorities;
    if (!a || !app) return;
    const tls = issueServingCert(a, servingID);
    (app.server as unknown as import("node:tls").Server).setSecureContext({ key: tls.key, cert: tls.cert });
    scheduleRenewal(tls.notBefore, tls.notAfter);
    log.info({ notAfter: tls.notAfter.toISOString() }, "serving certificate renewed");
  }

  const startServer = async (a: LoadedAuthorities) => {
    const tls = issueServingCert(a, servingID);
    app = buildSecureServer(log, tls);
    caRoutes(app, {
      issue: (token, csr) =>
        issueForWorkload(token, csr, {
          kube,
          pods: ctx.pods,
          identities: ctx.identities,
          authorities: () => store.authorities,
          caError: () => store.error,
          trustDomain: cfg.trustDomain,
          maxTTLSeconds: cfg.maxCertTTLSeconds,
          record: (pod, serial, notAfter) => recordIssued(kube, pod, serial, notAfter),
        }),
      bundle: () => store.authorities?.bundlePem,
      revocations,
      metrics: caMetrics,
      events,
      issuance,
      log,
    });
    ctx.routes?.(app);
    await app.listen({ host: cfg.secureHost, port: cfg.securePort });
    scheduleRenewal(tls.notBefore, tls.notAfter);
    log.info({ port: (app.server.address() as { port: number }).port, spiffeID: servingID.spiffeID }, "serving the CA endpoint over HTTPS");
  };

  if (store.authorities) {
    observe(store.authorities);
    await startServer(store.authorities);
  } else {
    log.error({ err: store.error }, "no usable CA: the HTTPS endpoint starts once the CA Secret is valid");
  }
  store.onChange((a) => {
    observe(a);
    if (!app) void startServer(a).catch((err) => log.error({ err: String(err) }, "could not start the HTTPS endpoint"));
    else renewServingCert(); // sign the serving certificate with the new active CA
    publishBundles();
  });

  store.onSecretChange(() => controller.enqueue("ca"));
  controller.enqueue("ca");
  publishBundles();

  return {
    controller,
    store,
    revocations,
    securePort: () => (app ? (app.server.address() as { port: number }).port : 0),
    serving: () => !!app,
    async stop() {
      if (renewTimer) clearTimeout(renewTimer);
      await issuance.stop();
      await app?.close();
      store.stop();
      revocations.stop();
    },
  };
}
