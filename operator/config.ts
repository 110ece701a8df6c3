// Operator settings, from the environment (the Deployment sets them; defaults suit a cluster).
import { intFromEnv } from "../common/env.ts";
import os from "node:os";
import type { InjectionConfig } from "../admission/inject.ts";
import { injectionConfigFromEnv } from "../admission/injection-config.ts";

export interface OperatorConfig {
  namespace: string;
  identity: string;
  trustDomain: string;
  healthHost: string;
  healthPort: number;
  leaderElection: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  resyncMs: number;
  workers: number;
  secureHost: string;
  securePort: number;
  /** Extra DNS names / IPs for the serving certificate (besides the Service's names). */
  servingDNSNames: string[];
  servingIPs: string[];
  caSecretName: string;
  /** The serving CA's Secret: signs only the operator's own serving certificate. */
  servingCASecretName: string;
  /** The cluster's DNS domain (the kubelet's clusterDomain): ServiceIdentity DNS names may end in <svc>.<ns>.svc.<clusterDomain>. */
  clusterDomain: string;
  caValiditySeconds: number;
  caRotateBeforeSeconds: number;
  caPropagationSeconds: number;
  maxCertTTLSeconds: number;
  /** Local runs: register webhooks by URL on this host (e.g. 127.0.0.1); unset = the Service. */
  webhookHost?: string;
  webhookTimeoutSeconds: number;
  /** Tenet's ClusterRole: owner of the webhook configurations, so an uninstall removes them. */
  clusterRoleName: string;
  /** Usernames that write Tenet's own pod metadata (posture, quarantine, certificate serials);
   * default its ServiceAccount system:serviceaccount:<namespace>:tenet-operator. Comma-separated
   * in TENET_OPERATOR_USERNAMES. The operator also adds what the API server says it is. */
  operatorUsernames: string[];
  injection: InjectionConfig;
  /** Posture rescans (operator/posture): cron schedule of the full safety-net rescan, workers, progress log interval. */
  rescanSchedule: string;
  postureWorkers: number;
  /** Signals accepted and not yet processed before the intake answers 429 (operator/signals/). */
  signalQueueLimit: number;
  rescanProgressEvery: number;
  /** Hosts whose jwksURI the operator may fetch (TENET_JWKS_ALLOWED_HOSTS: "host", "host:port", "*.suffix"); empty: none. */
  jwksAllowedHosts: string[];
  /**
   * Trusted scanner namespaces (TENET_SCAN_NAMESPACES, comma list; default trivy-system and Tenet's
   * namespace): their scan reports apply to pods in every namespace; any other namespace's reports
   * apply to its own pods only.
   */
  scanNamespaces: string[];
  /** PolicyReports (operator/reports): TENET_POLICY_REPORTS=false turns them off; the least time between two
   * writes of one namespace's report, the batching delay after a change, how often to look for the CRD. */
  policyReports: { enabled: boolean; minIntervalMs: number; batchMs: number; discoveryMs: number };
}

const list = (v: string | undefined) => (v ?? "").split(",").map((x) => x.trim()).filter(Boolean);

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const int = (name: string, dflt: number) => intFromEnv(env, name, dflt);
  const trustDomain = env.TENET_TRUST_DOMAIN ?? "cluster.local";
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) throw new Error(`TENET_TRUST_DOMAIN=${JSON.stringify(trustDomain)} is not a valid SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')`);
  return {
    namespace: env.TENET_NAMESPACE ?? env.POD_NAMESPACE ?? "tenet-system",
    identity: env.POD_NAME ?? `${os.hostname()}-${process.pid}`,
    trustDomain,
    healthHost: env.TENET_HEALTH_HOST ?? "0.0.0.0",
    healthPort: int("TENET_HEALTH_PORT", 8081),
    leaderElection: env.TENET_LEADER_ELECTION !== "false",
    leaseName: env.TENET_LEASE_NAME ?? "tenet-operator-leader",
    leaseDurationMs: int("TENET_LEASE_DURATION_MS", 15_000),
    renewDeadlineMs: int("TENET_RENEW_DEADLINE_MS", 10_000),
    retryPeriodMs: int("TENET_RETRY_PERIOD_MS", 2_000),
    resyncMs: int("TENET_RESYNC_MS", 10 * 60_000),
    workers: int("TENET_WORKERS", 2),
    secureHost: env.TENET_SECURE_HOST ?? "0.0.0.0",
    securePort: int("TENET_SECURE_PORT", 9443),
    servingDNSNames: list(env.TENET_SERVING_DNS_NAMES),
    servingIPs: list(env.TENET_SERVING_IPS),
    caSecretName: env.TENET_CA_SECRET ?? "tenet-ca",
    servingCASecretName: env.TENET_SERVING_CA_SECRET ?? "tenet-serving-ca",
    clusterDomain: (env.TENET_CLUSTER_DOMAIN || "cluster.local").replace(/^\.+|\.+$/g, ""),
    caValiditySeconds: int("TENET_CA_VALIDITY_SECONDS", 365 * 86_400),
    caRotateBeforeSeconds: int("TENET_CA_ROTATE_BEFORE_SECONDS", 30 * 86_400),
    caPropagationSeconds: int("TENET_CA_PROPAGATION_SECONDS", 120),
    maxCertTTLSeconds: int("TENET_MAX_CERT_TTL_SECONDS", 168 * 3600),
    webhookHost: env.TENET_WEBHOOK_HOST || undefined,
    webhookTimeoutSeconds: int("TENET_WEBHOOK_TIMEOUT_SECONDS", 5),
    clusterRoleName: env.TENET_CLUSTER_ROLE ?? "tenet-operator",
    operatorUsernames: (env.TENET_OPERATOR_USERNAMES ?? `system:serviceaccount:${env.TENET_NAMESPACE ?? env.POD_NAMESPACE ?? "tenet-system"}:tenet-operator`)
      .split(",")
      .map((u) => u.trim())
      .filter(Boolean),
    // The image is resolved at start-up (operator/enforcer-image.ts): it follows the operator's own image.
    injection: injectionConfigFromEnv(env, env.TENET_NAMESPACE ?? env.POD_NAMESPACE ?? "tenet-system"),
    rescanSchedule: env.TENET_RESCAN_SCHEDULE || "0 * * * *",
    postureWorkers: int("TENET_POSTURE_WORKERS", 8),
    signalQueueLimit: int("TENET_SIGNAL_QUEUE_LIMIT", 50_000),
    rescanProgressEvery: int("TENET_RESCAN_PROGRESS_EVERY", 1000),
    jwksAllowedHosts: list(env.TENET_JWKS_ALLOWED_HOSTS),
    scanNamespaces: env.TENET_SCAN_NAMESPACES !== undefined ? list(env.TENET_SCAN_NAMESPACES) : ["trivy-system", env.TENET_NAMESPACE ?? env.POD_NAMESPACE ?? "tenet-system"],
    policyReports: {
      enabled: env.TENET_POLICY_REPORTS !== "false",
      minIntervalMs: int("TENET_REPORT_MIN_INTERVAL_MS", 10_000),
      batchMs: int("TENET_REPORT_BATCH_MS", 2_000),
      discoveryMs: int("TENET_REPORT_DISCOVERY_MS", 5 * 60_000),
    },
  };
}
