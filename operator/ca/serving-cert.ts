// The secure server's own certificate, issued by the active CA to a key generated in memory.
import crypto from "node:crypto";
import type { ServingCert, ServingIdentity } from "../server/index.ts";
import type { LoadedAuthorities } from "./authorities.ts";
import { issueLeaf } from "./leaf.ts";

export function issueServingCert(ca: LoadedAuthorities, id: ServingIdentity, now = new Date()): ServingCert {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = issueLeaf(ca.active, {
    publicKeyDer: publicKey.export({ type: "spki", format: "der" }) as Buffer,
    spiffeID: id.spiffeID,
    dnsNames: id.dnsNames,
    ipAddresses: id.ipAddresses,
    ttlSeconds: id.ttlSeconds,
    now,
    serverAuth: true,
  });
  return { key: privateKey.export({ type: "pkcs8", format: "pem" }) as string, cert: leaf.pem, notAfter: leaf.notAfter, notBefore: leaf.notBefore };
}

