// HTTP header rules Tenet's servers share (the CA endpoint, APIPolicy distribution, the
// enforcer's JWT check): one parser for bearer tokens, one for If-None-Match, one strong ETag.
import { createHash } from "node:crypto";

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1: the scheme is
 * case-insensitive, one token, no spaces in it), or undefined for any other header.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+([^\s]+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

/** If-None-Match: a list of (possibly weak) entity tags, or "*" (RFC 9110 §13.1.2). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(",").some((t) => {
    const v = t.trim().replace(/^W\//, "");
    return v === "*" || v === etag;
  });
}

/** A strong entity tag for a body: 22 base64url characters of its SHA-256, quoted. */
export const strongETag = (body: string | Buffer): string => `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
