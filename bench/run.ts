// `npm run bench -- <name>` runs bench/<name>.ts. Each benchmark measures its hot path against
// a baseline in the same run and prints, as its last line, one JSON object:
// {"bench":"<name>","ratio":<n>,"goal":"<text>","details":{...}}
import { readdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = import.meta.dirname;
const available = readdirSync(dir)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith("_"))
  .map((f) => f.slice(0, -3));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>\navailable: ${available.join(", ") || "(none yet)"}`);
  process.exit(name ? 1 : 2);
}
await import(pathToFileURL(path.join(dir, `${name}.ts`)).href);
