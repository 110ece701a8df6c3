// The secure server's JSON body parser: strict, and refusing deep nesting before JSON.parse
// recurses into it (AdmissionReviews, CSR requests: every JSON body the server accepts).
import type { FastifyInstance } from "fastify";

/** Real Kubernetes objects nest a few dozen levels; hostile JSON nests thousands. */
export const MAX_JSON_DEPTH = 64;

/**
 * Registers a JSON parser that refuses deep nesting before JSON.parse recurses into it, then parses
 * with fastify's own secure parser: a body with a `__proto__` key or a `constructor.prototype`
 * (prototype poisoning) is refused with 400, as fastify's default parser does.
 */
export function strictJSONParser(app: FastifyInstance) {
  const secure = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = body as string;
    const depth = maxDepth(text);
    if (depth > MAX_JSON_DEPTH) {
      const err = Object.assign(new Error(`JSON nested ${depth} levels deep; the limit is ${MAX_JSON_DEPTH}`), { statusCode: 400 });
      return done(err, undefined);
    }
    secure(req, text, (err, parsed) => {
      if (err) return done(Object.assign(new Error(`body is not valid JSON, or carries __proto__ / constructor.prototype keys: ${err.message}`), { statusCode: 400 }), undefined);
      done(null, parsed);
    });
  });
}

function maxDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Strings are most of a body: jump to the next quote that an even run of backslashes precedes
      // (indexOf is native). Each backslash is looked at once, so the scan stays linear.
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j < 0) return max; // unterminated: JSON.parse refuses it
        let k = j - 1;
        while (text.charCodeAt(k) === 92 /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      i = j;
    } else if (c === 123 || c === 91) {
      if (++depth > max) max = depth;
      if (max > MAX_JSON_DEPTH) return max;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}
