// `tenet inspect cert`: the text and JSON it prints, and its exit codes. run() takes its files,
// output and clock as arguments; one test spawns the real command to check the wiring.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { humanDuration, run, type CLIDeps } from "../../cli/tenet.ts";
import { createCA } from "../../operator/ca/keypair.ts";
import { issueLeaf } from "../../operator/ca/leaf.ts";
import { testSVIDs } from "../harness/svids.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const svids = await testSVIDs(); // good and broken X509-SVIDs, generated for this run
const NOW = new Date("2030-05-01T12:00:00Z");

function fakeCLI(files: Record<string, string | Buffer>, now = NOW) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: CLIDeps = {
    readFile: (f) => {
      if (!(f in files)) throw Object.assign(new Error(`ENOENT: ${f}`), { code: "ENOENT" });
      return Buffer.from(files[f]);
    },
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    now: () => now,
  };
  return { deps, out: () => out.join(""), err: () => err.join("") };
}

describe("tenet inspect cert", () => {
  const ca = createCA({ commonName: "Tenet Workload CA", validitySeconds: 30 * 86_400, now: NOW });
  const key = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }) as Buffer;
  const leaf = issueLeaf(ca, {
    publicKeyDer: key,
    spiffeID: "spiffe://cluster.local/ns/shop/sa/orders",
    dnsNames: ["orders.shop.svc"],
    attributes: { tier: "backend", posture: "clean", "image.digest": "sha256:5d4a" },
    ttlSeconds: 86_400,
    now: NOW,
  });

  it("prints the SPIFFE ID, SANs, attributes, serial, issuer, validity and conformance of a leaf", () => {
    const cli = fakeCLI({ "cert.pem": leaf.pem + ca.certPem });
    assert.equal(run(["inspect", "cert", "cert.pem"], cli.deps), 0);
    const text = cli.out();
    assert.match(text, /^certificate {3}cert\.pem \(the first of 2 certificates\)$/m);
    assert.match(text, /^SPIFFE ID {5}spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders$/m);
    assert.match(text, /^DNS names {5}orders\.shop\.svc$/m);
    assert.match(text, /^IP addresses {2}\(none\)$/m);
    assert.match(text, new RegExp(`^serial {8}${leaf.serial}$`, "m"));
    assert.match(text, /^issuer {8}CN=Tenet Workload CA$/m);
    assert.match(text, /^validity {6}2030-05-01T11:59:00\.000Z → 2030-05-02T12:00:00\.000Z \(valid now, expires in 1d 0h\)$/m);
    assert.match(text, /^attributes\n {2}image\.digest {2}sha256:5d4a\n {2}posture {7}clean\n {2}tier {10}backend$/m);
    assert.match(text, /^X509-SVID {5}conforms$/m);
    assert.equal(cli.err(), "");
  });

  it("says when a certificate has expired, by how long", () => {
    const cli = fakeCLI({ "cert.pem": leaf.pem }, new Date("2030-05-04T15:30:00Z"));
    run(["inspect", "cert", "cert.pem"], cli.deps);
    assert.match(cli.out(), /\(EXPIRED 2d 3h ago\)/);
  });

  it("lists the X509-SVID rules a broken SVID breaks", () => {
    const cli = fakeCLI({ "bad.pem": svids["wrong-leaf-ca-true.pem"] });
    assert.equal(run(["inspect", "cert", "bad.pem"], cli.deps), 0);
    assert.match(cli.out(), /^X509-SVID {5}does NOT conform \(\d violations?\):\n {2}- the leaf certificate has basicConstraints cA=true/m);
    assert.match(cli.out(), /^CA {12}yes$/m);
  });

  it("prints one JSON object with --json", () => {
    const cli = fakeCLI({ "-": leaf.der });
    assert.equal(run(["inspect", "cert", "-", "--json"], cli.deps), 0);
    const r = JSON.parse(cli.out());
    assert.deepEqual(
      { file: r.file, spiffeID: r.spiffeID, dnsNames: r.dnsNames, attributes: r.attributes, serial: r.serial, validity: r.validity, violations: r.svidViolations, notAfter: r.notAfter },
      {
        file: "(stdin)",
        spiffeID: "spiffe://cluster.local/ns/shop/sa/orders",
        dnsNames: ["orders.shop.svc"],
        attributes: { "image.digest": "sha256:5d4a", posture: "clean", tier: "backend" },
        serial: leaf.serial,
        validity: "valid",
        violations: [],
        notAfter: "2030-05-02T12:00:00.000Z",
      },
    );
  });

  const failures: [string, string[], Record<string, string>, number, RegExp][] = [
    ["exits 1 when the file does not exist", ["inspect", "cert", "missing.pem"], {}, 1, /^tenet: cannot read missing\.pem: no such file$/m],
    ["exits 1 on a file with no certificate in it", ["inspect", "cert", "key.pem"], { "key.pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" }, 1, /key\.pem holds no readable certificate: no CERTIFICATE PEM block \(found PRIVATE KEY\)/],
    ["exits 1 on text that is neither PEM nor DER", ["inspect", "cert", "notes.txt"], { "notes.txt": "hello" }, 1, /neither PEM .* nor DER/],
    ["exits 1 on an empty stdin", ["inspect", "cert", "-"], { "-": "" }, 1, /\(stdin\) holds no readable certificate: it is empty/],
    ["exits 2 with usage on an unknown command", ["inspect", "key", "x"], {}, 2, /^ +tenet inspect cert <file \| -> \[--json\]$/m],
    ["exits 2 on an unknown option", ["inspect", "cert", "x", "--yaml"], {}, 2, /unknown option --yaml/],
  ];
  for (const [name, argv, files, code, message] of failures) {
    it(name, () => {
      const cli = fakeCLI(files);
      assert.equal(run(argv, cli.deps), code);
      assert.match(cli.err(), message);
      assert.equal(cli.out(), "");
    });
  }

  const durations: [number, string][] = [
    [45_000, "45s"],
    [3_725_000, "1h 2m"],
    [90_061_000, "1d 1h"],
    [0, "0s"],
    [86_400_000, "1d 0h"],
  ];
  for (const [ms, text] of durations) it(`writes ${ms} ms as "${text}"`, () => assert.equal(humanDuration(ms), text));

  it("runs as `npm run tenet -- inspect cert -`, reading stdin", function () {
    this.timeout(30_000);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8"));
    assert.equal(pkg.scripts.tenet, "tsx cli/tenet.ts");
    const res = spawnSync(process.execPath, ["--import", "tsx", "cli/tenet.ts", "inspect", "cert", "-"], { cwd: REPO, input: leaf.pem, encoding: "utf8" });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /SPIFFE ID {5}spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders/);
    const bad = spawnSync(process.execPath, ["--import", "tsx", "cli/tenet.ts", "inspect", "cert", "/nonexistent/cert.pem"], { cwd: REPO, encoding: "utf8" });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /cannot read \/nonexistent\/cert\.pem: no such file/);
  });
});
