// tcp-echo.js: a line-echo TCP server on PORT (default 6379), a stand-in for a cache or database:
// answers each line with "<NAME> <line>".
const net = require('net');
const port = Number(process.env.PORT || 6379);
const name = process.env.NAME || 'echo';
net.createServer((s) => {
  let buf = '';
  s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { s.write(`${name} ${buf.slice(0, i)}\n`); buf = buf.slice(i + 1); } });
  s.on('error', () => s.destroy());
}).listen(port, '0.0.0.0', () => console.log(`${name} echoing on :${port}`));
process.on('SIGTERM', () => process.exit(0));
