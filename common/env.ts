// Reading settings from the environment, the same way in every program.

/** A non-negative integer setting: `dflt` when unset or empty; a malformed value throws, naming the variable. */
export function intFromEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${JSON.stringify(v)} must be a non-negative integer`);
  return n;
}
