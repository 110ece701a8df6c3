// Tests run what the images run: the compiled operator and the bundled enforcer (npm run build;
// hack/test.sh builds first).
import { existsSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");

export function built(file: string): string {
  const p = path.join(root, file);
  if (!existsSync(p)) throw new Error(`${file} is missing: run \`npm run build\` first (hack/test.sh does)`);
  return p;
}
