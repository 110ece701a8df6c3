// The injection settings from the environment: one reading for the operator (operator/config.ts)
// and `tenet check`, so both inject, and recognise, the same enforcer.
import { intFromEnv } from "../common/env.ts";
import { TENET_VERSION } from "../common/version.ts";
import type { InjectionConfig } from "./inject.ts";

/** The enforcer image when nothing says otherwise (the operator resolves its real one at start-up, operator/enforcer-image.ts). */
export const DEFAULT_ENFORCER_IMAGE = "tenet.local/tenet-enforcer:dev";
/** The capture init container's image when nothing says otherwise (resolved like the enforcer's). */
export const DEFAULT_CAPTURE_IMAGE = "tenet.local/tenet-capture:dev";

/** `namespace`: Tenet's namespace, where the CA endpoint's Service lives. Throws on a malformed number. */
export function injectionConfigFromEnv(env: NodeJS.ProcessEnv, namespace: string): InjectionConfig {
  const int = (name: string, dflt: number) => intFromEnv(env, name, dflt);
  return {
    image: env.TENET_ENFORCER_IMAGE ?? DEFAULT_ENFORCER_IMAGE,
    args: [],
    caEndpoint: env.TENET_CA_ENDPOINT ?? `https://tenet-operator.${namespace}.svc:443`,
    signalsEndpoint: env.TENET_SIGNALS_ENDPOINT ?? `https://tenet-signals.${namespace}.svc:443`,
    inboundPort: int("TENET_ENFORCER_INBOUND_PORT", 15443),
    outboundPort: int("TENET_ENFORCER_OUTBOUND_PORT", 15001),
    healthPort: int("TENET_ENFORCER_HEALTH_PORT", 15021),
    resources: {
      requests: { cpu: env.TENET_ENFORCER_CPU_REQUEST ?? "50m", memory: env.TENET_ENFORCER_MEMORY_REQUEST ?? "64Mi" },
      limits: { memory: env.TENET_ENFORCER_MEMORY_LIMIT ?? "256Mi" },
    },
    tokenExpirationSeconds: int("TENET_ENFORCER_TOKEN_SECONDS", 3600),
    version: env.TENET_VERSION ?? TENET_VERSION,
    capture: {
      // Transparent capture (docs/capture.md): on unless TENET_CAPTURE=false.
      enabled: (env.TENET_CAPTURE ?? "true").trim().toLowerCase() !== "false",
      image: env.TENET_CAPTURE_IMAGE ?? DEFAULT_CAPTURE_IMAGE,
      inboundPort: int("TENET_CAPTURE_INBOUND_PORT", 15006),
      outboundPort: int("TENET_CAPTURE_OUTBOUND_PORT", 15002),
      enforcerUID: int("TENET_ENFORCER_UID", 15900),
    },
  };
}
