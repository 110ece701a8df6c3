// The identity feature, wired: CA store, revocation list, CSR endpoint routes, the secure
// server's certificate source, and the leader's housekeeping controller (rotation, pruning,
// trust bundles). Constructed without I/O; start() loads the CA and the revocation list.
import type { FastifyInstance } from "fastify";
import type { Kube } from "../../common/kube.ts";
import type { Logger } from "../../common/logger.ts";
import { FieldManagers } from "../../common/names.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import type { CachedPod } from "../cache/pods.ts";
import type { OperatorConfig } from "../config.ts";
import { Controller } from "../runtime/controller.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { Informer } from "../runtime/informer.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import { servingIdentity, type CertificateSource } from "../server/index.ts";
import { defaultCAPolicy, type LoadedAuthorities } from "./authorities.ts";
import { caReconciler } from "./controller.ts";
import { caRoutes } from "./endpoint.ts";
import { IssuanceStatus } from "./issuance-status.ts";
import { authenticatePod, issueForWorkload } from "./issuer.ts";
import { CAMetrics } from "./metrics.ts";
import { recordIssued } from "./pod-serials.ts";
import { RevocationList } from "./revocations.ts";
import { issueServingCert } from "./serving-cert.ts";
import { CAStore } from "./store.ts";

export interface IdentityFeature {
  controller: Controller;
  /** The workload CA: signs workload certificates; its bundle is what peers trust. */
  store: CAStore;
  /** The serving CA: signs only the operator's serving certificate; its bundle is the webhooks' caBundle and what enforcers trust for the operator. */
  servingStore: CAStore;
  revocations: RevocationList;
  /** The secure server's certificates, from the active serving CA. */
  servingCertificates: CertificateSource;
  /** POST /v1/certificates, GET /v1/bundle, GET /v1/revocations. */
  routes(app: FastifyInstance): void;
  /** Loads the CA (creating it if there is none) and the revocation list. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createIdentity(ctx: {
  kube: Kube;
  cfg: OperatorConfig;
  log: Logger;
  metrics: RuntimeMetrics;
  events: EventRecorder;
  pods: Informer<CachedPod>;
  identities: Informer<ServiceIdentity & TenetObject>;
}): IdentityFeature {
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
  // A CA of its own for the operator's HTTPS (issue 11 item 2): the workload CA signs names that
  // tenants choose, so nothing that verifies the operator may trust it. Kept exactly like the
  // workload CA (created once, never regenerated while it exists, rotated with overlap).
  const serving = servingIdentity(cfg);
  const servingStore: CAStore = new CAStore(kube, log.child({ ca: "serving" }), {
    namespace: cfg.namespace,
    secretName: cfg.servingCASecretName,
    policy: {
      ...defaultCAPolicy,
      commonName: "Tenet Serving CA",
      validitySeconds: cfg.caValiditySeconds,
      rotateBeforeSeconds: cfg.caRotateBeforeSeconds,
      propagationSeconds: cfg.caPropagationSeconds,
      maxLeafTTLSeconds: serving.ttlSeconds,
    },
  }, events);
  const caMetrics = new CAMetrics(ctx.metrics.registry, () => !!store.authorities);
  const revocations = new RevocationList(kube, log, cfg.namespace);
  const issuance = new IssuanceStatus(kube, log, (ns, name) => ctx.identities.get(`${ns}/${name}`));

  const controller = new Controller({
    name: "ca",
    log: ctx.log,
    metrics: ctx.metrics,
    workers: 1,
    reconcile: caReconciler({ kube, store, servingStore, revocations, fieldManager: FieldManagers.operator }),
  });
  const publishBundles = () => {
    controller.enqueue(`bundle/${cfg.namespace}`);
    for (const ns of new Set(ctx.identities.list().map((si) => si.metadata.namespace!))) controller.enqueue(`bundle/${ns}`);
  };
  // A new ServiceIdentity's namespace needs the bundle; a status write (certificatesIssued, about
  // once a second per identity while it is being issued to) changes nothing the bundle depends on.
  ctx.identities.onChange((type, si, old) => {
    if (type === "delete" || (type === "update" && old?.metadata.generation === si.metadata.generation)) return;
    controller.enqueue(`bundle/${si.metadata.namespace}`);
  });

  const observe = (a: LoadedAuthorities) => {
    caMetrics.bundleSize.set(a.all.length);
    caMetrics.notAfter.reset();
    for (const { ca, status } of a.all) caMetrics.notAfter.set({ serial: ca.serial, status }, ca.notAfter.getTime() / 1000);
  };
  return {
    controller,
    store,
    servingStore,
    revocations,
    servingCertificates: {
      issue: (id) => (servingStore.authorities ? issueServingCert(servingStore.authorities, id) : undefined),
      problem: () => servingStore.error,
      onChange: (cb) => servingStore.onChange(() => cb()),
    },
    routes(app) {
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
            injection: cfg.injection,
            tenetNamespace: cfg.namespace,
            clusterDomain: cfg.clusterDomain,
            record: (pod, serial, notAfter) => recordIssued(kube, pod, serial, notAfter),
          }),
        bundle: () => store.authorities?.bundlePem,
        revocations,
        authenticate: (token) => authenticatePod(token, { kube, pods: ctx.pods }),
        metrics: caMetrics,
        events,
        issuance,
        log,
      });
    },
    async start() {
      await store.start();
      await servingStore.start();
      await revocations.start();
      if (store.authorities) observe(store.authorities);
      store.onChange((a) => {
        observe(a);
        publishBundles();
      });
      store.onSecretChange(() => controller.enqueue("ca"));
      servingStore.onChange(() => publishBundles());
      servingStore.onSecretChange(() => controller.enqueue("ca"));
      controller.enqueue("ca");
      publishBundles();
    },
    async stop() {
      await issuance.stop();
      store.stop();
      servingStore.stop();
      revocations.stop();
    },
  };
}
