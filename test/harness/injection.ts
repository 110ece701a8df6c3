// The injection configuration unit tests inject with (the operator's defaults, local images).
import type { InjectionConfig } from "../../admission/inject.ts";

export const testInjectionConfig: InjectionConfig = {
  image: "tenet.local/tenet-enforcer:dev",
  args: [],
  caEndpoint: "https://tenet-operator.tenet-system.svc:443",
  inboundPort: 15443,
  outboundPort: 15001,
  healthPort: 15021,
  resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  tokenExpirationSeconds: 3600,
  version: "0.1.0",
};
