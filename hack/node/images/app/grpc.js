// grpc.js HOST:PORT METHOD TEXT: an unmodified app's unary gRPC call over h2c (no proxy setting,
// no TLS: under capture the pod's enforcer carries it over mTLS). Prints
// "grpc-status <code> <reply or grpc-message>"; exits 0 when a grpc-status came back, 1 otherwise.
const http2 = require('http2');
const { frame, unframe } = require('./grpc-wire.js');
const [target, method, text] = process.argv.slice(2);
const fail = (m) => { console.error(`FAIL ${m}`); process.exit(1); };
const session = http2.connect(`http://${target}`);
session.on('error', (e) => fail(`${e.code || ''} ${e.message}`));
setTimeout(() => fail('timeout'), 5000).unref();
const req = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
let headers = {};
const chunks = [];
req.on('response', (h) => { headers = h; });
req.on('data', (c) => chunks.push(c));
req.on('trailers', (t) => { headers = { ...headers, ...t }; });
req.on('error', (e) => fail(`${e.code || ''} ${e.message}`));
req.on('end', () => {
  const code = headers['grpc-status'];
  if (code === undefined) fail(`no grpc-status (HTTP ${headers[':status']})`);
  const msg = code === '0' ? unframe(Buffer.concat(chunks)) : decodeURIComponent(String(headers['grpc-message'] || ''));
  process.stdout.write(`grpc-status ${code} ${msg}\n`);
  process.exit(0);
});
req.end(frame(text || ''));
