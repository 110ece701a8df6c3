// tcp.js HOST PORT TEXT: a plain TCP client (a cache or database protocol stand-in): sends TEXT
// and a newline, prints the first line answered. Exits 0 on an answer, 1 on a refusal or timeout.
const net = require('net');
const [host, port, text] = process.argv.slice(2);
const s = net.connect({ host, port: Number(port) }, () => s.write(`${text}\n`));
let got = '';
s.setTimeout(5000, () => { console.error('FAIL timeout'); process.exit(1); });
s.on('data', (d) => { got += d; if (got.includes('\n')) { process.stdout.write(got); process.exit(0); } });
s.on('error', (e) => { console.error(`FAIL ${e.code || ''} ${e.message}`); process.exit(1); });
s.on('close', () => { if (!got.includes('\n')) { console.error('FAIL closed without an answer'); process.exit(1); } });
