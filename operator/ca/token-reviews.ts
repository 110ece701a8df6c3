// TokenReview results, cached for the token's lifetime so an enforcer's policy poll (every
// TENET_REFRESH_SECONDS) and its certificate renewals do not each cost a call to the API server.
// Keyed by a SHA-256 of the token — the token itself is never stored — and bounded (LRU).
// Only accepted reviews are cached; the pod a token is bound to is still looked up on every call,
// so a deleted pod's token stops working at once.
import { createHash } from "node:crypto";

export const TOKEN_REVIEW_CACHE_SIZE = 10_000;
/** Upper bound on how long one review is reused, whatever the token's exp says. */
export const TOKEN_REVIEW_MAX_TTL_MS = 60 * 60_000;

export class TokenReviewCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number }>();

  constructor(
    readonly maxEntries = TOKEN_REVIEW_CACHE_SIZE,
    private readonly now: () => number = Date.now,
  ) {}

  get size() {
    return this.entries.size;
  }

  /** The hashes held (tests: never the tokens). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  get(token: string): T | undefined {
    const key = hashToken(token);
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Caches `value` until the token's exp (at most TOKEN_REVIEW_MAX_TTL_MS); a token without a readable exp is not cached. */
  set(token: string, value: T): void {
    const exp = tokenExpiry(token);
    if (exp === undefined) return;
    const expiresAt = Math.min(exp, this.now() + TOKEN_REVIEW_MAX_TTL_MS);
    if (expiresAt <= this.now()) return;
    const key = hashToken(token);
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/**
 * The exp claim (ms) of a JWT, read without verifying it: only called for tokens the API server
 * has just accepted, whose exp it checked.
 */
export function tokenExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1].length > 8192) return undefined;
  try {
    const exp = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"))?.exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
