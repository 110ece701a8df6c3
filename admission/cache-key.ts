// Cache keys for the admission caches: the JSON of everything an answer is computed from. Short
// keys are used as they are (a Map compares the whole string on a hit, so no two inputs share
// an entry); long ones by their SHA-256, because V8 hashes strings over 16,383 characters by their
// length only, and a caller could fill a cache with same-length keys to make every lookup slow.
import { createHash } from "node:crypto";

/** Keys up to this many characters are used verbatim. */
export const MAX_VERBATIM_KEY = 16_000;

export function cacheKey(text: string): string {
  return text.length <= MAX_VERBATIM_KEY ? text : `sha256:${createHash("sha256").update(text).digest("base64")}`;
}

/** The configuration a cache was filled under: when it differs, the cache starts over. */
export class ConfigStamp {
  private json?: string;

  /** Whether the last configuration mentions `text` (the token volume abstraction needs it not to). */
  mentions(text: string): boolean {
    return this.json !== undefined && this.json.includes(text);
  }

  /** True when `cfg` (compared by its JSON, so an edit in place counts) differs from the last call's. */
  changed(cfg: unknown): boolean {
    const json = JSON.stringify(cfg);
    if (json === this.json) return false;
    this.json = json;
    return true;
  }
}

/** Freezes `v` and everything under it: a cached value one request cannot edit for the next. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}
