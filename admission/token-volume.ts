// The pod's ServiceAccount token volume, abstracted out of the admission caches' keys. Before the
// webhooks run, the API server's ServiceAccount admission plugin adds a projected volume with a
// random name (kube-api-access-xxxxx) to every pod that automounts its token, and mounts it in
// every container: so the replicas of one template reach /mutate and /validate as different JSON
// and every cache keyed by the pod's JSON would miss. The key replaces that one name by
// TOKEN_PLACEHOLDER; an answer that names the volume is not shared under it.
//
// Only the exact shape the plugin writes is abstracted (a projected volume whose sources are the
// serviceAccountToken, the kube-root-ca.crt configMap and the namespace downwardAPI, in that order,
// named kube-api-access- and five characters), and only when the name occurs in the pod's JSON
// nowhere but in that volume's name and in volumeMounts' names: then the key, with the placeholder
// put back, is the pod's JSON exactly, so two pods share a key only when they differ in that name
// alone. Everything else (the projection's fields, the mounts' paths, any other byte) stays in the key.
export const TOKEN_PLACEHOLDER = "kube-api-access-<token>"; // not a valid volume name: no real pod carries it
const NAME = /^kube-api-access-[a-z0-9]{5}$/;

/** The name of the spec's ServiceAccount token volume when it has the plugin's exact shape (and is the only kube-api-access-* volume). */
export function tokenVolumeName(spec: any): string | undefined {
  const volumes = spec?.volumes;
  if (!Array.isArray(volumes)) return undefined;
  let found: any;
  for (const v of volumes) {
    if (typeof v?.name === "string" && v.name.startsWith("kube-api-access-")) {
      if (found) return undefined;
      found = v;
    }
  }
  return found && NAME.test(found.name) && isPluginProjection(found) ? found.name : undefined;
}

function isPluginProjection(v: any): boolean {
  if (!onlyKeys(v, ["name", "projected"]) || !onlyKeys(v.projected, ["sources", "defaultMode"])) return false;
  const s = v.projected.sources;
  return (
    Array.isArray(s) &&
    s.length === 3 &&
    onlyKeys(s[0], ["serviceAccountToken"]) &&
    s[0].serviceAccountToken?.path === "token" &&
    onlyKeys(s[1], ["configMap"]) &&
    s[1].configMap?.name === "kube-root-ca.crt" &&
    onlyKeys(s[2], ["downwardAPI"]) &&
    Array.isArray(s[2].downwardAPI?.items)
  );
}

function onlyKeys(o: unknown, keys: string[]): boolean {
  return !!o && typeof o === "object" && !Array.isArray(o) && Object.keys(o).every((k) => keys.includes(k));
}

/** How many containers (of every kind) mount the volume `name`. */
function mountsOf(spec: any, name: string): number {
  let n = 0;
  for (const list of [spec.containers, spec.initContainers, spec.ephemeralContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) if (Array.isArray(c?.volumeMounts)) for (const m of c.volumeMounts) if (m?.name === name) n++;
  }
  return n;
}

function occurrences(text: string, part: string): number {
  let n = 0;
  for (let at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + part.length)) n++;
  return n;
}

/**
 * `json` (the JSON of something that holds `spec`, the pod spec) with the token volume's name
 * replaced by TOKEN_PLACEHOLDER, and that name; undefined when the spec has no such volume or the
 * name (or the placeholder) occurs anywhere else in `json`.
 */
export function abstractTokenVolume(json: string, spec: any): { key: string; name: string } | undefined {
  const name = tokenVolumeName(spec);
  if (name === undefined || json.includes(TOKEN_PLACEHOLDER)) return undefined;
  if (occurrences(json, name) !== 1 + mountsOf(spec, name)) return undefined;
  return { key: json.replaceAll(name, TOKEN_PLACEHOLDER), name };
}
