// call.js METHOD URL [PROXY_PORT]: an app's plain HTTP call through its enforcer's outbound
// proxy on 127.0.0.1 (absolute-form request, as to any HTTP proxy). Prints "STATUS BODY";
// exits 0 when an answer came back (whatever its status), 1 on a connection error or timeout.
const http = require('http');
const [method, url, proxyPort] = process.argv.slice(2);
const req = http.request(
  { host: '127.0.0.1', port: Number(proxyPort || 15001), method, path: url, headers: { host: new URL(url).host }, timeout: 5000 },
  (res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => { process.stdout.write(`${res.statusCode} ${body.trim()}\n`); process.exit(0); });
  },
);
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => { console.error(`FAIL ${e.code || ''} ${e.message}`); process.exit(1); });
req.end();
