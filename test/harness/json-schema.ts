// A small JSON Schema validator for the keywords our fixture schemas use (test/fixtures/schemas):
// type, properties, required, additionalProperties, items, enum, minimum, maximum, minItems,
// uniqueItems, pattern, format (uri, uri-reference, date-time), $ref to #/definitions, anyOf,
// oneOf. Any other keyword is an error, so a schema cannot silently ask for more than is checked.
import { isDeepStrictEqual } from "node:util";

const KNOWN = new Set(["$schema", "$comment", "title", "description", "default", "definitions", "type", "properties", "required", "additionalProperties", "items", "enum", "minimum", "maximum", "minItems", "uniqueItems", "pattern", "format", "$ref", "anyOf", "oneOf"]);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

const FORMATS: Record<string, (s: string) => boolean> = {
  uri: (s) => /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/.test(s),
  "uri-reference": (s) => !/[\s<>"{}|\\^`]/.test(s) && !/%(?![0-9A-Fa-f]{2})/.test(s),
  "date-time": (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !isNaN(Date.parse(s)),
};

/** Every violation, as "path: problem"; [] when the value conforms. */
export function validateJSON(schema: any, value: unknown): string[] {
  const errors: string[] = [];
  const walk = (s: any, v: unknown, at: string) => {
    for (const k of Object.keys(s)) if (!KNOWN.has(k)) throw new Error(`schema keyword ${k} at ${at} is not supported by this validator`);
    if (s.$ref) {
      const name = /^#\/definitions\/(.+)$/.exec(s.$ref)?.[1];
      if (!name || !schema.definitions?.[name]) throw new Error(`unresolvable $ref ${s.$ref}`);
      walk(schema.definitions[name], v, at);
    }
    const t = typeOf(v);
    if (s.type !== undefined) {
      const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
      if (!types.some((x) => x === t || (x === "number" && t === "integer"))) return void errors.push(`${at}: is ${t}, expected ${types.join(" or ")}`);
    }
    if (s.enum && !s.enum.some((e: unknown) => isDeepStrictEqual(e, v))) errors.push(`${at}: ${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
    if (typeof v === "number") {
      if (s.minimum !== undefined && v < s.minimum) errors.push(`${at}: ${v} < minimum ${s.minimum}`);
      if (s.maximum !== undefined && v > s.maximum) errors.push(`${at}: ${v} > maximum ${s.maximum}`);
    }
    if (typeof v === "string") {
      if (s.pattern && !new RegExp(s.pattern, "u").test(v)) errors.push(`${at}: ${JSON.stringify(v)} does not match ${s.pattern}`);
      if (s.format) {
        const f = FORMATS[s.format];
        if (!f) throw new Error(`format ${s.format} is not supported`);
        if (!f(v)) errors.push(`${at}: ${JSON.stringify(v)} is not a ${s.format}`);
      }
    }
    if (Array.isArray(v)) {
      if (s.minItems !== undefined && v.length < s.minItems) errors.push(`${at}: fewer than ${s.minItems} items`);
      if (s.uniqueItems) v.forEach((x, i) => v.slice(0, i).some((y) => isDeepStrictEqual(x, y)) && errors.push(`${at}[${i}]: duplicate item`));
      if (s.items) v.forEach((x, i) => walk(s.items, x, `${at}[${i}]`));
    }
    if (t === "object") {
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) if (!(r in o)) errors.push(`${at}: lacks required ${r}`);
      for (const [k, x] of Object.entries(o)) {
        if (s.properties && k in s.properties) walk(s.properties[k], x, `${at}.${k}`);
        else if (s.additionalProperties === false) errors.push(`${at}: has ${k}, which the schema does not allow`);
        else if (typeof s.additionalProperties === "object") walk(s.additionalProperties, x, `${at}.${k}`);
      }
    }
    for (const [kw, want] of [["anyOf", (n: number) => n >= 1], ["oneOf", (n: number) => n === 1]] as const) {
      if (!s[kw]) continue;
      const passing = s[kw].filter((sub: any) => validateJSON({ definitions: schema.definitions, ...sub }, v).length === 0).length;
      if (!want(passing)) errors.push(`${at}: matches ${passing} of the ${kw} alternatives`);
    }
  };
  walk(schema, value, "$");
  return errors;
}
