// The HTTPS server every replica runs (:9443): the CA endpoint, the admission webhooks and
// APIPolicy distribution register their routes here; the server owns listening and its TLS.
// Its certificate comes from a CertificateSource (Tenet's own CA, operator/ca/) and is
// re-issued at two thirds of its lifetime and whenever the source changes (a CA loaded or
// rotated), without restarting the listener. Until the source can issue, the server does not
// listen, and readiness says why.
import type { FastifyInstance } from "fastify";
import type { Logger } from "../../common/logger.ts";
import { OPERATOR_NAME, SIGNALS_SERVICE } from "../../common/names.ts";
import { spiffeID } from "../../pki/spiffe-id.ts";
import type { OperatorConfig } from "../config.ts";
import { buildSecureServer } from "./app.ts";

/** The names the server's certificate carries. */
export interface ServingIdentity {
  spiffeID: string;
  dnsNames: string[];
  ipAddresses: string[];
  ttlSeconds: number;
}

export interface ServingCert {
  key: string;
  cert: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificateSource {
  /** A fresh key and certificate for `id`, or undefined while none can be issued. */
  issue(id: ServingIdentity): ServingCert | undefined;
  /** Why issue() cannot give a certificate now (for logs and readiness). */
  problem(): string | undefined;
  /** Called whenever what issue() returns would change (a CA loaded or rotated). */
  onChange(cb: () => void): void;
}

/** The operator's serving identity: its Service's names, localhost, and the configured extras. */
export function servingIdentity(cfg: OperatorConfig): ServingIdentity {
  const ns = cfg.namespace;
  return {
    spiffeID: spiffeID(cfg.trustDomain, ns, OPERATOR_NAME),
    dnsNames: [...new Set([OPERATOR_NAME, `${OPERATOR_NAME}.${ns}.svc`, `${OPERATOR_NAME}.${ns}.svc.cluster.local`, `${SIGNALS_SERVICE}.${ns}.svc`, "localhost", ...cfg.servingDNSNames])],
    ipAddresses: [...new Set(["127.0.0.1", ...cfg.servingIPs])],
    ttlSeconds: 24 * 3600,
  };
}

export type RouteRegistrar = (app: FastifyInstance) => void;

export class SecureServer {
  private readonly registrars: RouteRegistrar[] = [];
  private app?: FastifyInstance;
  private starting?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private started = false;
  private stopped = false;
  private readonly log: Logger;

  constructor(
    log: Logger,
    private readonly opts: { host: string; port: number; identity: ServingIdentity },
    private readonly certificates: CertificateSource,
  ) {
    this.log = log.child({ component: "server" });
  }

  /** Registers a feature's routes. Only before start(): fastify fixes its routes when it listens. */
  routes(register: RouteRegistrar): this {
    if (this.started) throw new Error("routes must be registered before the secure server starts");
    this.registrars.push(register);
    return this;
  }

  /** Listens as soon as a certificate can be issued (now, or on the source's next change). */
  async start(): Promise<void> {
    this.started = true;
    this.certificates.onChange(() => {
      if (this.stopped) return;
      if (this.app) this.renew();
      else void this.listen().catch((err) => this.log.error({ err: String(err) }, "could not start the HTTPS endpoint"));
    });
    await this.listen();
  }

  /** The port it listens on; 0 until it does. */
  port(): number {
    return this.app ? (this.app.server.address() as { port: number }).port : 0;
  }

  serving(): boolean {
    return !!this.app;
  }

  /** Why it does not serve yet, for readiness. */
  problem(): string {
    return this.certificates.problem() ?? "starting";
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    await this.starting;
    await this.app?.close();
  }

  private listen(): Promise<void> {
    if (this.app || this.stopped) return Promise.resolve();
    this.starting ??= this.doListen().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doListen() {
    const tls = this.certificates.issue(this.opts.identity);
    if (!tls) {
      this.log.error({ err: this.certificates.problem() }, "no usable CA: the HTTPS endpoint starts once the CA Secret is valid");
      return;
    }
    const app = buildSecureServer(this.log, tls);
    for (const register of this.registrars) register(app);
    await app.listen({ host: this.opts.host, port: this.opts.port });
    this.app = app;
    this.scheduleRenewal(tls);
    // The test harness and the quick start read the port from this line.
    this.log.info({ port: this.port(), spiffeID: this.opts.identity.spiffeID }, "serving the CA endpoint over HTTPS");
  }

  private scheduleRenewal(tls: ServingCert) {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    const due = tls.notBefore.getTime() + ((tls.notAfter.getTime() - tls.notBefore.getTime()) * 2) / 3 - Date.now();
    this.renewTimer = setTimeout(() => this.renew(), Math.max(1000, Math.min(due, 2 ** 31 - 1)));
    this.renewTimer.unref();
  }

  /** A new certificate from the source's current issuer, swapped in without dropping connections. */
  private renew() {
    if (!this.app || this.stopped) return;
    const tls = this.certificates.issue(this.opts.identity);
    if (!tls) return;
    (this.app.server as unknown as { setSecureContext(o: { key: string; cert: string }): void }).setSecureContext({ key: tls.key, cert: tls.cert });
    this.scheduleRenewal(tls);
    this.log.info({ notAfter: tls.notAfter.toISOString() }, "serving certificate renewed");
  }
}
