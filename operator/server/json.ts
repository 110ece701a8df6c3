// The secure server's JSON body parser: strict, and refusing deep nesting before JSON.parse
// recurses into it (AdmissionReviews, CSR requests: every JSON body the server accepts).
// One pass over the text does both checks that come before the parse: the nesting depth, and
// whether any string could be a `__proto__` or `constructor` key; only then is the text parsed,
// once. A text with such a string (rare: fastify's parser looks for them with two regular
// expressions on every body) or one JSON.parse refuses goes through fastify's own secure parser,
// so its answers — 400, and the message — are exactly fastify's.
import type { FastifyInstance, FastifyRequest } from "fastify";

/** Real Kubernetes objects nest a few dozen levels; hostile JSON nests thousands. */
export const MAX_JSON_DEPTH = 64;

/** Parses a body as the secure server does; throws an Error with statusCode 400 when it refuses it. */
export type JSONParse = (text: string) => unknown;

/**
 * Registers a JSON parser that refuses deep nesting before JSON.parse recurses into it, and a
 * body with a `__proto__` key or a `constructor.prototype` (prototype poisoning) with 400, as
 * fastify's default parser does.
 */
export function strictJSONParser(app: FastifyInstance) {
  const parse = strictJSON(app);
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    let parsed: unknown;
    try {
      parsed = parse(body as string);
    } catch (err) {
      return done(err as Error, undefined);
    }
    done(null, parsed);
  });
}

/** The strict parse itself, for routes that register their own parser on top of it (operator/admission/review-cache.ts). */
export function strictJSON(app: FastifyInstance): JSONParse {
  const secure = app.getDefaultJsonParser("error", "error");
  // fastify's parser does not read the request.
  const slow: JSONParse = (text) => {
    let out: { err: Error | null; parsed?: unknown } | undefined;
    secure(undefined as unknown as FastifyRequest, text, (err, parsed) => (out = { err, parsed })); // calls back synchronously
    if (!out || out.err) throw Object.assign(new Error(`body is not valid JSON, or carries __proto__ / constructor.prototype keys: ${out?.err?.message ?? "no answer"}`), { statusCode: 400 });
    return out.parsed;
  };
  return (text) => {
    const scan = scanJSON(text);
    if (scan.depth > MAX_JSON_DEPTH) throw Object.assign(new Error(`JSON nested ${scan.depth} levels deep; the limit is ${MAX_JSON_DEPTH}`), { statusCode: 400 });
    if (scan.suspect || text.length === 0) return slow(text);
    let parsed: unknown;
    let ok = false;
    const { stackTraceLimit } = Error;
    Error.stackTraceLimit = 0; // a refused body needs no stack (fastify's parser does the same)
    try {
      parsed = JSON.parse(text);
      ok = true;
    } catch {
      // answered below, by the secure parser, in fastify's words
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    return ok ? parsed : slow(text);
  };
}

const PROTO = "__proto__";
const CONSTRUCTOR = "constructor";
/** The longest raw string that can decode to "constructor": every character \u-escaped. */
const MAX_ESCAPED_KEY = CONSTRUCTOR.length * 6;

/**
 * Nesting depth outside strings (stops counting past the limit), and `suspect`: some string
 * decodes, or may decode, to `__proto__` or `constructor` (escapes included). Linear: strings are
 * jumped over with indexOf, and each backslash is looked at a bounded number of times.
 */
export function scanJSON(text: string): { depth: number; suspect: boolean } {
  let depth = 0;
  let max = 0;
  let suspect = false;
  let backslash = text.indexOf("\\");
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Strings are most of a body: jump to the next quote that an even run of backslashes precedes
      // (indexOf is native).
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j < 0) return { depth: max, suspect }; // unterminated: JSON.parse refuses it
        let k = j - 1;
        while (text.charCodeAt(k) === 92 /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      if (!suspect) {
        const len = j - i - 1;
        if (backslash >= 0 && backslash < i) backslash = text.indexOf("\\", i);
        const escaped = backslash >= 0 && backslash < j;
        if (len === PROTO.length && !escaped) suspect = text.startsWith(PROTO, i + 1);
        else if (len === CONSTRUCTOR.length && !escaped) suspect = text.startsWith(CONSTRUCTOR, i + 1);
        else if (escaped && len <= MAX_ESCAPED_KEY) suspect = decodesToKey(text.slice(i, j + 1));
      }
      i = j;
    } else if (c === 123 || c === 91) {
      if (++depth > max) max = depth;
      if (max > MAX_JSON_DEPTH) return { depth: max, suspect };
    } else if (c === 125 || c === 93) depth--;
  }
  return { depth: max, suspect };
}

function decodesToKey(literal: string): boolean {
  try {
    const s = JSON.parse(literal);
    return s === PROTO || s === CONSTRUCTOR;
  } catch {
    return true; // not a valid string: let the secure parser give its answer
  }
}
