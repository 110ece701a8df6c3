// JSON for signal bodies: one pass over the text that refuses deep nesting (before JSON.parse
// recurses into it) and finds integer literals JSON.parse would round (Falco's evt.time is a
// 19-digit nanosecond count, above 2^53), which are then parsed as strings, exactly as sent.
// Keys __proto__ and constructor are refused (prototype poisoning), as the server's own parser does.

export class SignalJSONError extends Error {
  override name = "SignalJSONError";
}

export const MAX_SIGNAL_JSON_DEPTH = 16;

export function parseSignalJSON(text: string, maxDepth = MAX_SIGNAL_JSON_DEPTH): unknown {
  let depth = 0;
  let inString = false;
  let big: number[] | undefined; // [start, end) pairs of integer literals beyond 2^53
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > maxDepth) throw new SignalJSONError(`JSON nested more than ${maxDepth} levels deep`);
    } else if (c === 125 || c === 93) depth--;
    else if (c === 45 || (c >= 48 && c <= 57)) {
      // A number token: only long integers need care (16+ digits may exceed 2^53 - 1).
      let j = c === 45 ? i + 1 : i;
      const digitsFrom = j;
      while (j < n && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
      const next = j < n ? text.charCodeAt(j) : 0;
      const integer = next !== 46 /* . */ && next !== 101 && next !== 69; /* e E */
      if (integer && j - digitsFrom >= 16 && !Number.isSafeInteger(Number(text.slice(i, j)))) (big ??= []).push(i, j);
      i = j - 1;
      while (i + 1 < n && !isDelimiter(text.charCodeAt(i + 1))) i++; // rest of a float: JSON.parse judges it
    }
  }
  let source = text;
  if (big) {
    const parts: string[] = [];
    let at = 0;
    for (let k = 0; k < big.length; k += 2) {
      parts.push(text.slice(at, big[k]), '"', text.slice(big[k], big[k + 1]), '"');
      at = big[k + 1];
    }
    parts.push(text.slice(at));
    source = parts.join("");
  }
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    throw new SignalJSONError(`body is not valid JSON: ${(err as Error).message}`);
  }
  if (text.includes("__proto__") || text.includes("constructor")) refusePoison(value, 0);
  return value;
}

function isDelimiter(c: number) {
  return c === 44 || c === 125 || c === 93 || c === 32 || c === 10 || c === 13 || c === 9 || c === 58;
}

function refusePoison(v: unknown, depth: number) {
  if (!v || typeof v !== "object" || depth > MAX_SIGNAL_JSON_DEPTH) return;
  if (Array.isArray(v)) return v.forEach((x) => refusePoison(x, depth + 1));
  for (const k of Object.keys(v)) {
    if (k === "__proto__" || k === "constructor") throw new SignalJSONError(`key ${JSON.stringify(k)} is not allowed (prototype poisoning)`);
    refusePoison((v as Record<string, unknown>)[k], depth + 1);
  }
}
