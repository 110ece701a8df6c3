// Operator entrypoint: configuration, signals and exit codes. Wiring lives in manager.ts.
import { Kube } from "../common/kube.ts";
import { createLogger } from "../common/logger.ts";
import { configFromEnv } from "./config.ts";
import { captureImageFor, resolveEnforcerImage } from "./enforcer-image.ts";
import { startOperator } from "./manager.ts";

const log = createLogger("tenet-operator");

async function main() {
  const cfg = configFromEnv();
  const kube = Kube.fromEnv();
  const enforcer = await resolveEnforcerImage(kube);
  cfg.injection.image = enforcer.image;
  cfg.injection.capture.image = process.env.TENET_CAPTURE_IMAGE || captureImageFor(enforcer.image);
  log.info({ identity: cfg.identity, namespace: cfg.namespace, apiServer: kube.serverURL, trustDomain: cfg.trustDomain, enforcerImage: enforcer.image, enforcerImageFrom: enforcer.source, capture: cfg.injection.capture.enabled, captureImage: cfg.injection.capture.image }, "starting Tenet operator");
  const operator = await startOperator(kube, cfg, log, () => {
    // Another replica may already be acting as leader: stop at once rather than race it.
    log.error("exiting after losing leadership; the Deployment restarts this replica");
    process.exit(1);
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: finishing in-flight work and releasing the lease");
    const force = setTimeout(() => {
      log.error("shutdown took longer than 20s; exiting");
      process.exit(1);
    }, 20_000);
    force.unref();
    await operator.stop();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err) => {
  log.fatal({ err: String(err?.message ?? err) }, "operator failed to start");
  process.exit(1);
});
