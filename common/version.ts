// Tenet's version: written here from package.json by `npm run gen` (hack/gen-deploy.ts), like the
// chart's version and the base's image tag; programs read it from here, never from the environment.
export const TENET_VERSION = "0.1.0";
