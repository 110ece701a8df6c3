// The injection configuration unit tests inject with (the operator's defaults, local images;
// capture off: test/unit/capture.test.ts covers it, the other tests compare fixed pods).
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
  capture: { enabled: false, image: "tenet.local/tenet-capture:dev", inboundPort: 15006, outboundPort: 15002, enforcerUID: 15900 },
};
