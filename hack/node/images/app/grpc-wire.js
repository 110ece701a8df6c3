// grpc-wire.js: gRPC message framing (1 byte compressed flag, 4 bytes big-endian length) around a
// protobuf message with one string field number 1 (tag 0x0a, varint length, UTF-8 bytes).
function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}
/** A string as a length-prefixed gRPC message. */
function frame(text) {
  const s = Buffer.from(text, 'utf8');
  const msg = Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}
/** The string field of the first message in a gRPC body ('' when there is none). */
function unframe(body) {
  if (body.length < 5) return '';
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  if (msg[0] !== 0x0a) return '';
  let n = 0, shift = 0, i = 1;
  for (; i < msg.length; i++) { n |= (msg[i] & 0x7f) << shift; shift += 7; if (!(msg[i] & 0x80)) { i++; break; } }
  return msg.subarray(i, i + n).toString('utf8');
}
module.exports = { frame, unframe };
