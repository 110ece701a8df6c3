// http.js METHOD URL [NAME=VALUE ...]: an unmodified app's plain HTTP call (no proxy setting):
// under capture the pod's enforcer carries it. Extra arguments are request headers (host=…
// overrides the Host). Prints "STATUS BODY"; exits 0 when an answer came back, 1 otherwise.
const http = require('http');
const [method, url, ...hdrs] = process.argv.slice(2);
const u = new URL(url);
const headers = {};
for (const h of hdrs) { const i = h.indexOf('='); headers[h.slice(0, i)] = h.slice(i + 1); }
const req = http.request({ host: u.hostname, port: u.port || 80, method, path: u.pathname + u.search, headers, timeout: 5000 }, (res) => {
  let body = '';
  res.on('data', (c) => (body += c));
  res.on('end', () => { process.stdout.write(`${res.statusCode} ${body.trim()}\n`); process.exit(0); });
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => { console.error(`FAIL ${e.code || ''} ${e.message}`); process.exit(1); });
req.end();
