// JSON Patch (RFC 6902) by diffing: the mutating webhook edits a deep copy of the object and
// sends the difference, so no handler ever assembles patch paths by hand (STYLE.md §8).
//
// Output is add/remove/replace only. Objects are diffed key by key (so a missing parent such
// as `metadata.annotations` becomes one `add` of the whole map, never an add below a path that
// does not exist). Arrays keep their common head and tail; the changed middle becomes inserts
// (`add` at an index, or at `/-` when appending), removals, element-wise edits when the lengths
// match, or else one `replace` of the whole array: small where that is safe, correct always.

export type Operation =
  | { op: "add"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "replace"; path: string; value: unknown };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** RFC 6901 escaping of one reference token: `~` → `~0` first, then `/` → `~1`. */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** RFC 6901 unescaping, in the reverse order (`~01` must decode to `~1`, not `/`). */
export function unescapePointerToken(token: string): string {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

/** The operations that turn `original` into `mutated`. Both are read as JSON would send them:
 * `undefined` properties are absent. Values in the operations are copies, never aliases into
 * `mutated`. Subtrees the two share by reference are skipped at once, so a mutation that copies
 * only what it changes (as injectPod does) costs a walk of the changed paths, not of the pod. */
export function jsonPatch(original: unknown, mutated: unknown): Operation[] {
  const ops: Operation[] = [];
  diff((original ?? null) as Json, (mutated ?? null) as Json, "", ops);
  return ops;
}

function toJson(value: unknown): Json {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as Json;
}

/** A JSON copy of a value about to be emitted (drops undefined, detaches it from `mutated`): what
 * JSON.parse(JSON.stringify(value)) gives for plain data, in one walk instead of a text round trip
 * (the enforcer container alone is 3.7 KB of JSON, copied on every injection). */
function copy(value: Json): Json {
  if (typeof value === "number") return Number.isFinite(value) ? value + 0 : null; // -0 becomes 0, as in JSON
  if (typeof value !== "object" || value === null) return value;
  if (typeof (value as any).toJSON === "function") return JSON.parse(JSON.stringify(value)) as Json;
  if (Array.isArray(value)) {
    const out: Json[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const x = value[i];
      out[i] = x === undefined || typeof x === "function" || typeof x === "symbol" ? null : copy(x);
    }
    return out;
  }
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(value)) {
    const x = value[key];
    if (x === undefined || typeof x === "function" || typeof x === "symbol") continue;
    // An own "__proto__" member (JSON.parse makes one) stays a member, as JSON.parse would make it.
    if (key === "__proto__") Object.defineProperty(out, key, { value: copy(x), enumerable: true, writable: true, configurable: true });
    else out[key] = copy(x);
  }
  return out;
}

function isObject(v: Json): v is { [key: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function diff(a: Json, b: Json, path: string, ops: Operation[]): void {
  if (a === b) return;
  // Containers are walked, not compared first: equal subtrees yield no operations anyway, and a
  // deep comparison at every level would make the diff quadratic in the depth of the pod.
  if (isObject(a) && isObject(b)) return diffObjects(a, b, path, ops);
  if (Array.isArray(a) && Array.isArray(b)) return diffArrays(a, b, path, ops);
  if (!deepEqual(a, b)) ops.push({ op: "replace", path, value: copy(b) });
}

function diffObjects(a: { [key: string]: Json }, b: { [key: string]: Json }, path: string, ops: Operation[]): void {
  for (const key of Object.keys(a)) {
    if (a[key] === undefined) continue;
    const child = `${path}/${escapePointerToken(key)}`;
    if (b[key] === undefined || !Object.hasOwn(b, key)) ops.push({ op: "remove", path: child });
    else diff(a[key], b[key], child, ops);
  }
  for (const key of Object.keys(b)) {
    if (b[key] === undefined) continue;
    if (a[key] === undefined || !Object.hasOwn(a, key)) ops.push({ op: "add", path: `${path}/${escapePointerToken(key)}`, value: copy(b[key]) });
  }
}

function diffArrays(a: Json[], b: Json[], path: string, ops: Operation[]): void {
  const shorter = Math.min(a.length, b.length);
  let head = 0;
  while (head < shorter && deepEqual(a[head], b[head])) head++;
  let tail = 0;
  while (tail < shorter - head && deepEqual(a[a.length - 1 - tail], b[b.length - 1 - tail])) tail++;
  const removed = a.length - head - tail; // elements of `a` in the changed middle
  const inserted = b.length - head - tail; // elements of `b` in the changed middle

  if (removed === 0) {
    // Pure insertion: each add shifts what follows, so successive indices line up with `b`.
    const appending = tail === 0;
    for (let i = head; i < head + inserted; i++) {
      ops.push({ op: "add", path: appending ? `${path}/-` : `${path}/${i}`, value: copy(b[i]) });
    }
  } else if (inserted === 0) {
    // Pure removal, from the highest index down so earlier indices stay valid.
    for (let i = head + removed - 1; i >= head; i--) ops.push({ op: "remove", path: `${path}/${i}` });
  } else if (removed === inserted) {
    for (let i = head; i < head + removed; i++) diff(a[i], b[i], `${path}/${i}`, ops);
  } else {
    ops.push({ op: "replace", path, value: copy(b) });
  }
}

/** Structural equality of JSON values (object key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}

export class PatchError extends Error {
  override name = "PatchError";
}

/** A strict RFC 6902 applier for add/remove/replace, for tests to prove that a patch does
 * what it claims. Returns a new document; throws PatchError where a real server would refuse
 * the patch (a missing parent, an index out of range, removing what is not there). */
export function applyPatch<T = unknown>(doc: unknown, ops: readonly Operation[]): T {
  let root = toJson(doc);
  for (const [n, operation] of ops.entries()) {
    const fail = (why: string): never => {
      throw new PatchError(`operation ${n} (${operation.op} ${JSON.stringify(operation.path)}): ${why}`);
    };
    const tokens = parsePointer(operation.path, fail);
    if (tokens.length === 0) {
      if (operation.op === "remove") fail("cannot remove the document root");
      root = toJson((operation as { value: unknown }).value);
      continue;
    }
    let parent: Json = root;
    for (const token of tokens.slice(0, -1)) parent = child(parent, token, fail);
    const last = tokens[tokens.length - 1];
    if (Array.isArray(parent)) {
      const index = last === "-" && operation.op === "add" ? parent.length : arrayIndex(last, fail);
      const limit = operation.op === "add" ? parent.length : parent.length - 1;
      if (index > limit) fail(`index ${index} is out of range for an array of ${parent.length}`);
      if (operation.op === "add") parent.splice(index, 0, toJson(operation.value));
      else if (operation.op === "remove") parent.splice(index, 1);
      else parent[index] = toJson(operation.value);
    } else if (isObject(parent)) {
      if (operation.op !== "add" && !Object.hasOwn(parent, last)) fail(`no member ${JSON.stringify(last)}`);
      if (operation.op === "remove") delete parent[last];
      else parent[last] = toJson(operation.value);
    } else {
      fail("the parent is not an object or an array");
    }
  }
  return root as T;
}

function parsePointer(pointer: string, fail: (why: string) => never): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) fail("a JSON Pointer must be empty or start with /");
  if (/~(?![01])/.test(pointer)) fail("~ must be followed by 0 or 1 in a JSON Pointer");
  return pointer.slice(1).split("/").map(unescapePointerToken);
}

function arrayIndex(token: string, fail: (why: string) => never): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) fail(`${JSON.stringify(token)} is not an array index`);
  return Number(token);
}

function child(node: Json, token: string, fail: (why: string) => never): Json {
  if (Array.isArray(node)) {
    const i = arrayIndex(token, fail);
    if (i >= node.length) fail(`index ${i} is out of range for an array of ${node.length}`);
    return node[i];
  }
  if (isObject(node) && Object.hasOwn(node, token)) return node[token];
  return fail(`no member ${JSON.stringify(token)} on the path`);
}
