import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createAudit } from "../../enforcer/audit.ts";
import { newKeyAndCSR } from "../../enforcer/identity.ts";
import { parseCSR } from "../../pki/csr.ts";

describe("enforcer: audit writer and CSR", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), "tenet-audit-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes pino-format lines in batches: nothing before the batch is full or flushed, everything after", () => {
    const file = path.join(dir, "sub", "audit.jsonl"); // the directory is created
    const audit = createAudit(file, { bufferBytes: 1000, flushMs: 60_000 }); // ~5 records per batch
    const rec = (i: number) => ({ direction: "inbound" as const, destination: "127.0.0.1:8080", caller: `spiffe://td/ns/a/sa/"q${i}"\n`, decision: "allow" as const, reason: "Allowed", status: 200, latencyMs: i, path: undefined });
    audit.write(rec(0));
    assert.equal(readFileSync(file, "utf8"), "", "one record is buffered, not written per request");
    for (let i = 1; i < 23; i++) audit.write(rec(i)); // 23: not a whole number of batches
    const written = readFileSync(file, "utf8");
    const partial = written.split("\n").filter(Boolean).length;
    assert.ok(partial > 0 && partial < 23 && written.endsWith("\n"), `whole batches of lines are written (${partial} of 23)`);
    audit.flush();
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(lines.length, 23);
    lines.forEach((l, i) => {
      assert.equal(l.level, 30);
      assert.equal(l.log, "audit");
      assert.ok(!Number.isNaN(Date.parse(l.time)));
      assert.equal(l.caller, `spiffe://td/ns/a/sa/"q${i}"\n`, "strings are JSON-escaped, one record per line");
      assert.equal(l.latencyMs, i, "in order");
      assert.ok(!("path" in l), "undefined fields are left out");
    });
    audit.flush(); // nothing left: writes nothing twice
    assert.equal(readFileSync(file, "utf8").split("\n").filter(Boolean).length, 23);
  });

  it("makes a P-256 CSR the CA's parser accepts, with the subject escaped", async () => {
    const { keyPem, csrPem } = await newKeyAndCSR("orders-1,x=y");
    const csr = parseCSR(csrPem);
    assert.equal(csr.subject, "CN=orders-1_x_y");
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  });
});
