import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
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

  it("loses no record when the reader of its pipe stays behind (bounded backlog, then it waits)", async function () {
    this.timeout(60_000);
    // A child writes 12 MB of records to stdout, a pipe nobody reads for a second: more than the
    // pipe and the backlog hold, so the writer must wait for the reader instead of dropping lines.
    const code = `import { createAudit } from ${JSON.stringify(path.resolve("enforcer/audit.ts"))};
      const a = createAudit(undefined, { flushMs: 60_000 });
      for (let i = 0; i < 60000; i++) a.write({ direction: "inbound", seq: i, path: "/" + "x".repeat(150) });
      a.flush();`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 1000));
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c)).resume();
    const exit = await new Promise<number | null>((r) => child.on("close", r));
    assert.equal(exit, 0);
    const lines = Buffer.concat(chunks).toString("utf8").split("\n").filter(Boolean);
    assert.equal(lines.length, 60000);
    lines.forEach((l, i) => assert.equal(JSON.parse(l).seq, i));
  });

  it("makes a P-256 CSR the CA's parser accepts, with the subject escaped", async () => {
    const { keyPem, csrPem } = await newKeyAndCSR("orders-1,x=y");
    const csr = parseCSR(csrPem);
    assert.equal(csr.subject, "CN=orders-1_x_y");
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  });
});
