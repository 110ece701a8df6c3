// Command-line flags for the `tenet` subcommands: `--x v`, `--x=v`, repeatable value flags, booleans.

export class UsageError extends Error {}

/** Flags (`--x v`, `--x=v`) and positional arguments; repeated value flags collect. */
export function parseFlags(argv: string[], values: Record<string, string>, bools: Record<string, string>): { flags: Record<string, string[]>; bools: Set<string>; args: string[] } {
  const flags: Record<string, string[]> = {};
  const set = new Set<string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-" || !a.startsWith("-")) {
      args.push(a);
      continue;
    }
    if (a === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (bools[name] && eq < 0) {
      set.add(bools[name]);
      continue;
    }
    const key = values[name];
    if (!key) throw new UsageError(`unknown option ${a.length > 64 ? `${a.slice(0, 64)}…` : a}`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    (flags[key] ??= []).push(value);
  }
  return { flags, bools: set, args };
}

