// AdmissionReviews, parsed once per template: every replica a ReplicaSet creates reaches /mutate
// and /validate as the same text but for request.uid (the API server writes the review the same
// way each time: no name, no uid in the pod yet), so the parsed review is kept, keyed by that text
// with the uid cut out, and a repeat costs a Map lookup instead of the checks and JSON.parse.
//
// Only texts of the API server's own shape are keyed: they begin with one of REVIEW_PREFIXES, so
// the string right after the prefix is the value of the first member of the top-level "request"
// (its "uid") and nothing else. The key is the text without that one string; two texts with the
// same key differ only in it, so they parse to the same review but for that value. An entry is
// made only when that string is request.uid as JSON.parse sees it (a later duplicate "uid" would
// win): then a hit is exactly what parsing the text gives, with the uid read from the text.
// Any other text (whitespace, another member order, a BOM) is parsed every time, the same way.
//
// A text is kept from its second sighting on (sightings.ts: the text itself is noted, since reviews
// that differ in a few bytes — a pod's random token volume name, its generated name — share most
// fingerprints), so pods that each come once cost nothing but the note. A review that carries a
// ServiceAccount token volume (kube-api-access-xxxxx, random per pod: admission/token-volume.ts) is
// unique to its pod and not even noted; the handlers' caches abstract that name instead. Parsed reviews are deep-frozen (handlers read them; one request must not be able to edit what the
// next receives), and each request gets its own outer object and request object, with its uid.
// Bounded: REVIEW_CACHE_SIZE fingerprints of at most MAX_SAME_PRINT texts each, REVIEW_CACHE_WEIGHT
// in total; texts over MAX_CACHED_REVIEW characters are parsed every time.
import { cacheKey, deepFreeze } from "../../admission/cache-key.ts";
import { Lru } from "../../admission/lru.ts";
import { Sightings } from "../../admission/sightings.ts";

export const REVIEW_CACHE_SIZE = 256;
/** An entry weighs 4 per character of its text: the key plus the parsed objects, roughly. */
export const REVIEW_CACHE_WEIGHT = 4 * 1024 * 1024;
export const MAX_CACHED_REVIEW = 64 * 1024;

/** How the API server (kind first) and most clients (apiVersion first) begin a v1 review. */
export const REVIEW_PREFIXES = [
  '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":',
  '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":',
] as const;

export interface ParsedReview {
  body: unknown;
  /** The text without its request.uid, when the review has the keyed shape: equal keys, equal reviews but for the uid. */
  key?: string;
}

interface Entry {
  /** The prefix's index and the text after the uid: what a hit must equal. */
  prefix: number;
  rest: string;
  body: any;
  key: string;
}

/** Entries whose texts share a fingerprint (the rest are not kept): bounds the compares of a lookup. */
export const MAX_SAME_PRINT = 8;
/** A token volume's name as the API server generates it, as a JSON string: a review with one is never repeated. */
const TOKEN_VOLUME_NAME = /"kube-api-access-[a-z0-9]{5}"/;
const SAMPLES = 32;

export class ReviewCache {
  // By fingerprint: V8 hashes a 3 KB string at ~1.5 ns a character (4–5 µs, more than a
  // cached answer costs), a sample of it costs nothing; equality is then checked in full.
  private readonly lru: Lru<number, Entry[]>;
  hits = 0;
  misses = 0;
  /** Texts parsed without a key: another shape, too large, or a duplicate uid. */
  unkeyed = 0;
  /** Texts seen once (a second review of the same text is kept). */
  private readonly seen = new Sightings();

  /** `at`: where the fingerprint samples a text (fractions of its length), random per process unless a test sets them. */
  constructor(
    private readonly parse: (text: string) => unknown,
    max = REVIEW_CACHE_SIZE,
    maxWeight = REVIEW_CACHE_WEIGHT,
    private readonly at: readonly number[] = Array.from({ length: SAMPLES }, () => Math.random()),
  ) {
    this.lru = new Lru(max, maxWeight);
  }

  /** Texts held. */
  get size(): number {
    let n = 0;
    for (const bucket of this.lru.values()) n += bucket.length;
    return n;
  }

  /** The review `text` holds; throws what `parse` throws. */
  review(text: string): ParsedReview {
    const split = text.length <= MAX_CACHED_REVIEW ? splitUid(text) : undefined;
    if (!split) {
      this.unkeyed++;
      return { body: this.parse(text) };
    }
    const print = this.print(split.prefix, split.rest);
    const bucket = this.lru.get(print);
    const hit = bucket?.find((e) => e.prefix === split.prefix && e.rest === split.rest);
    if (hit) {
      this.hits++;
      return { body: withUid(hit.body, split.uid), key: hit.key };
    }
    // A text's first review is only noted: a flood of distinct pods must not churn the cache
    // (freezing and keeping every one of them costs more than parsing it).
    if (TOKEN_VOLUME_NAME.test(split.rest)) {
      this.misses++;
      return { body: this.parse(text) };
    }
    const key = cacheKey(`${split.prefix}${split.rest}`);
    if (!this.seen.again(key)) {
      this.misses++;
      return { body: this.parse(text) };
    }
    const body = this.parse(text) as any;
    // Kept only when the string cut out is the uid the review carries (see the top of the file).
    if (body?.request?.uid !== split.uid) {
      this.unkeyed++;
      return { body };
    }
    this.misses++;
    deepFreeze(body);
    const entry: Entry = { prefix: split.prefix, rest: split.rest, body, key };
    const next = bucket ? [...bucket, entry].slice(-MAX_SAME_PRINT) : [entry];
    this.lru.set(print, next, next.reduce((w, e) => w + 4 * e.rest.length, 0));
    return { body: withUid(body, split.uid), key };
  }

  private print(prefix: number, rest: string): number {
    const n = rest.length;
    let h = Math.imul(n, 0x9e3779b1) ^ prefix;
    for (const f of this.at) h = Math.imul(h ^ rest.charCodeAt(Math.floor(f * n)), 0x85ebca6b) >>> 0;
    return h & 0x3fffffff;
  }
}

/** The uid string right after a known prefix, and the prefix's index and the text after the uid; undefined for any other text. */
export function splitUid(text: string): { uid: string; prefix: number; rest: string } | undefined {
  const p = REVIEW_PREFIXES.findIndex((prefix) => text.startsWith(prefix));
  if (p < 0) return undefined;
  const start = REVIEW_PREFIXES[p].length;
  if (text.charCodeAt(start) !== 34 /* " */) return undefined;
  // The closing quote: the first one an even run of backslashes precedes.
  let end = start;
  for (;;) {
    end = text.indexOf('"', end + 1);
    if (end < 0) return undefined;
    let k = end - 1;
    while (text.charCodeAt(k) === 92 /* \ */) k--;
    if ((end - 1 - k) % 2 === 0) break;
  }
  let uid: unknown;
  try {
    uid = JSON.parse(text.slice(start, end + 1));
  } catch {
    return undefined; // not a JSON string (a raw control character): the full parse answers
  }
  if (typeof uid !== "string") return undefined;
  return { uid, prefix: p, rest: text.slice(end + 1) };
}

function withUid(body: any, uid: string) {
  return { ...body, request: { ...body.request, uid } };
}
