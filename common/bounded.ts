// Bounds for anything that comes from a request and ends up in a metric label or a log line.
// A label value is kept forever by prom-client, so every label set must be finite: values from
// a fixed list pass, everything else becomes OTHER. Log fields are cut to a fixed length.

/** The label value for anything outside a label's allow-list (or past its cap). */
export const OTHER = "other";

/** `value` when it is one of `allowed`, else OTHER. */
export function oneOf(value: unknown, allowed: ReadonlySet<string>): string {
  return typeof value === "string" && allowed.has(value) ? value : OTHER;
}

/**
 * A label whose values are not known in advance but are meant to be few (reason codes, namespace
 * names): a value passes when it looks like one (`pattern`) and fewer than `max` distinct values
 * have been seen; after that every new value is OTHER. The set of label values stays at most max+1.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(
    private readonly max: number,
    private readonly pattern: RegExp = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/,
  ) {}

  value(v: unknown): string {
    if (typeof v !== "string" || !this.pattern.test(v)) return OTHER;
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return OTHER;
    this.seen.add(v);
    return v;
  }
}

/** A log field from request data: a string of at most `max` characters (undefined stays undefined). */
export function clip(v: unknown, max = 256): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === "string" ? v : safeString(v);
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

function safeString(v: unknown): string {
  try {
    return typeof v === "object" ? (JSON.stringify(v) ?? String(v)) : String(v);
  } catch {
    return "[unprintable]";
  }
}

/** At most `maxItems` strings of at most `maxLength` characters each. */
export function clipList(v: readonly unknown[] | undefined, maxItems = 20, maxLength = 400): string[] | undefined {
  if (!v) return undefined;
  const out = v.slice(0, maxItems).map((x) => clip(x, maxLength)!);
  if (v.length > maxItems) out.push(`…and ${v.length - maxItems} more`);
  return out;
}
