// grpc-server.js: a gRPC service over h2c on PORT (default 50051), the real wire format without a
// gRPC library: content-type application/grpc, 5-byte length-prefixed messages (flag + uint32),
// grpc-status in the trailers. Messages are protobuf with one string field (1): the request is
// {name}, the reply {message} holding JSON (who answered, the method, the caller its enforcer set).
// Service e2e.v1.Orders, methods GetOrder and DeleteOrder; any other path: UNIMPLEMENTED (12).
const http2 = require('http2');
const os = require('os');
const { frame, unframe } = require('./grpc-wire.js');
const port = Number(process.env.PORT || 50051);
const name = process.env.NAME || 'grpc';
const METHODS = new Set(['/e2e.v1.Orders/GetOrder', '/e2e.v1.Orders/DeleteOrder']);
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('error', () => {});
  stream.on('end', () => {
    if (!String(headers['content-type'] || '').startsWith('application/grpc')) {
      stream.respond({ ':status': 415 });
      return stream.end();
    }
    if (!METHODS.has(path)) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
      return;
    }
    const req = unframe(Buffer.concat(chunks));
    const reply = JSON.stringify({ name, pod: os.hostname(), method: path, request: req, caller: headers['x-tenet-caller'] });
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame(reply));
  });
});
server.listen(port, '0.0.0.0', () => console.log(`${name} serving gRPC (h2c) on :${port}`));
process.on('SIGTERM', () => process.exit(0));
