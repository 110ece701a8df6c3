// Bounded copies of what senders give: ids, strings, tag lists and flat field maps.
import { createHash } from "node:crypto";
import { SIGNAL_LIMITS as L, type FieldValue } from "./event.ts";

export class SignalFormatError extends Error {
  override name = "SignalFormatError";
}

export const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** A string cut to `max` characters (undefined for anything that is not a non-empty string). */
export function text(v: unknown, max: number): string | undefined {
  if (typeof v !== "string" || v.length === 0) return undefined;
  return v.length > max ? `${v.slice(0, max)}…` : v;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
/** The sender's id when it looks like one (a uuid, a short token), else undefined. */
export function senderID(v: unknown): string | undefined {
  return typeof v === "string" && v.length <= L.idLength && ID.test(v) ? v : undefined;
}

/** A stable id for an event without one: the same event sent twice gets the same id. */
export function digestID(prefix: string, ...parts: (string | number | undefined)[]): string {
  return `${prefix}:${createHash("sha256").update(parts.map((p) => String(p ?? "")).join("\u0000")).digest("base64url").slice(0, 22)}`;
}

export function tagList(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const t of v) {
    if (out.length >= L.tags) break;
    const s = text(t, L.tagLength);
    if (s && !out.includes(s)) out.push(s);
  }
  return out;
}

/** A flat map of at most L.fields scalar values; nested values become (clipped) JSON text. */
export function fieldMap(v: unknown): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  if (!isObject(v)) return out;
  let n = 0;
  for (const k of Object.keys(v)) {
    if (n >= L.fields) break;
    if (k.length === 0 || k.length > L.fieldNameLength) continue;
    const x = v[k];
    let val: FieldValue;
    if (x === null || typeof x === "number" || typeof x === "boolean") val = x as FieldValue;
    else if (typeof x === "string") val = x.length > L.fieldValueLength ? `${x.slice(0, L.fieldValueLength)}…` : x;
    else if (x === undefined) continue;
    else {
      const s = JSON.stringify(x);
      val = s.length > L.fieldValueLength ? `${s.slice(0, L.fieldValueLength)}…` : s;
    }
    out[k] = val;
    n++;
  }
  return out;
}

/** RFC 3339 with up to nanoseconds → [ms, exact ns as a string]. */
export function rfc3339(v: unknown): [number, string] | undefined {
  if (typeof v !== "string" || v.length > 40) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(v);
  if (!m) return undefined;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(whole)) return undefined;
  const frac = (m[2] ?? "").padEnd(9, "0");
  const ns = BigInt(whole) * 1_000_000n + BigInt(frac);
  return [whole + Math.floor(Number(frac) / 1e6), ns.toString()];
}

/** A nanosecond count (number or digit string) → [ms, exact ns]. */
export function nanos(v: unknown): [number, string] | undefined {
  let s: string;
  if (typeof v === "string" && /^\d{1,20}$/.test(v)) s = v;
  else if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) s = String(v);
  else return undefined;
  const ns = BigInt(s);
  return [Number(ns / 1_000_000n), ns.toString()];
}
