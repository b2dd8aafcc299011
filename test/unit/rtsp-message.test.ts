import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RtspHeaders,
  RtspMessageReader,
  interleavedHeader,
  serializeInterleaved,
  serializeRequest,
  serializeResponse,
  type RtspItem,
} from '../../src/rtsp/message.js';
import { RtspParseError } from '../../src/rtsp/errors.js';

const SDP = 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n';
const ANNOUNCE =
  'ANNOUNCE rtsp://127.0.0.1:8554/_publish/ab RTSP/1.0\r\n' +
  'Content-Type: application/sdp\r\n' +
  'CSeq: 2\r\n' +
  'User-Agent: Lavf59.27.100\r\n' +
  `Content-Length: ${Buffer.byteLength(SDP)}\r\n\r\n` +
  SDP;
const RTP = Buffer.from([0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x65, 0x88]);
const STREAM = Buffer.concat([
  Buffer.from('OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n'),
  Buffer.from(ANNOUNCE),
  serializeInterleaved(0, RTP),
  Buffer.from('\r\n'), // stray keep-alive between items
  serializeInterleaved(1, Buffer.alloc(0)),
  Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1234;timeout=60\r\n\r\n'),
]);

function summary(items: RtspItem[]): string[] {
  return items.map((i) => {
    if (i.type === 'request') return `${i.method} ${i.url} cseq=${i.headers.get('cseq')} body=${i.body.length}`;
    if (i.type === 'response') return `${i.status} ${i.reason} session=${i.headers.get('SESSION')}`;
    return `$${i.channel} ${i.payload.toString('hex')}`;
  });
}

const EXPECTED = [
  'OPTIONS rtsp://h/x cseq=1 body=0',
  `ANNOUNCE rtsp://127.0.0.1:8554/_publish/ab cseq=2 body=${Buffer.byteLength(SDP)}`,
  `$0 ${RTP.toString('hex')}`,
  '$1 ',
  '200 OK session=1234;timeout=60',
];

test('reads requests, responses and interleaved frames from one stream', { timeout: 5000 }, () => {
  const r = new RtspMessageReader();
  assert.deepEqual(summary(r.push(STREAM)), EXPECTED);
  assert.equal(r.buffered, 0);
});

for (const size of [1, 2, 3, 7, 64]) {
  test(`the same stream split into ${size}-byte chunks gives the same items`, { timeout: 5000 }, () => {
    const r = new RtspMessageReader();
    const items: RtspItem[] = [];
    for (let i = 0; i < STREAM.length; i += size) items.push(...r.push(STREAM.subarray(i, i + size)));
    assert.deepEqual(summary(items), EXPECTED);
    assert.equal(r.buffered, 0);
  });
}

test('bare LF line endings and folded header lines are accepted', { timeout: 5000 }, () => {
  const r = new RtspMessageReader();
  const [req] = r.push(Buffer.from('SETUP rtsp://h/x/streamid=0 RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP/TCP;\n  interleaved=0-1\n\n'));
  assert.equal(req?.type, 'request');
  if (req?.type !== 'request') return;
  assert.equal(req.headers.get('transport'), 'RTP/AVP/TCP; interleaved=0-1');
  assert.equal(req.body.length, 0);
});

test('the body is held until Content-Length bytes arrived', { timeout: 5000 }, () => {
  const r = new RtspMessageReader();
  const whole = Buffer.from(ANNOUNCE);
  assert.deepEqual(r.push(whole.subarray(0, whole.length - 1)), []);
  const items = r.push(whole.subarray(whole.length - 1));
  assert.equal(items.length, 1);
  const a = items[0];
  assert.ok(a?.type === 'request');
  assert.equal(a.body.toString(), SDP);
});

const bad: Array<{ name: string; input: string | Buffer; code: string; limits?: { maxHeaderBytes: number; maxBodyBytes: number } }> = [
  { name: 'binary garbage', input: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x0a]), code: 'BadStartLine' },
  { name: 'binary garbage without a line end', input: Buffer.from([0x80, 0x60, 0x00, 0x01, 0x02]), code: 'BadStartLine' },
  { name: 'an HTTP request', input: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', code: 'BadStartLine' },
  { name: 'a header line without colon', input: 'OPTIONS * RTSP/1.0\r\nCSeq 1\r\n\r\n', code: 'BadHeaderLine' },
  { name: 'a continuation before any header', input: 'OPTIONS * RTSP/1.0\r\n  x\r\n\r\n', code: 'BadHeaderLine' },
  { name: 'Content-Length not a number', input: 'ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: abc\r\n\r\n', code: 'BadContentLength' },
  { name: 'negative Content-Length', input: 'ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -5\r\n\r\n', code: 'BadContentLength' },
  { name: 'Content-Length in exponent form', input: 'ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1e3\r\n\r\n', code: 'BadContentLength' },
  {
    name: 'a body over the limit',
    input: 'ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1000\r\n\r\n',
    code: 'BodyTooLarge',
    limits: { maxHeaderBytes: 1024, maxBodyBytes: 999 },
  },
  // Issue 12: the header writer refused these only when echoing them, inside async handlers.
  { name: 'a bare CR inside CSeq', input: 'DESCRIBE rtsp://h/s RTSP/1.0\r\nCSeq: 1\r2\r\n\r\n', code: 'BadHeaderValue' },
  { name: 'a CR before the CRLF', input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\r\n\r\n', code: 'BadHeaderValue' },
  { name: 'a NUL inside a header value', input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: a\0b\r\n\r\n', code: 'BadHeaderValue' },
  { name: 'a CR inside a folded continuation line', input: 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-A: a\r\n b\rc\r\n\r\n', code: 'BadHeaderValue' },
  {
    name: 'a header over the limit',
    input: 'OPTIONS * RTSP/1.0\r\n' + 'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(40),
    code: 'HeaderTooLarge',
    limits: { maxHeaderBytes: 1024, maxBodyBytes: 1024 },
  },
  {
    name: 'a start line that never ends',
    input: 'OPTIONS ' + 'a'.repeat(2000),
    code: 'HeaderTooLarge',
    limits: { maxHeaderBytes: 1024, maxBodyBytes: 1024 },
  },
];

for (const c of bad) {
  test(`rejects ${c.name} with ${c.code}, and stays failed`, { timeout: 5000 }, () => {
    const r = new RtspMessageReader(c.limits);
    const input = typeof c.input === 'string' ? Buffer.from(c.input) : c.input;
    assert.throws(() => r.push(input), (e: unknown) => e instanceof RtspParseError && e.name === 'RtspParseError' && e.code === c.code);
    assert.throws(() => r.push(Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n')), RtspParseError);
    assert.equal(r.buffered, 0, 'nothing kept after a failure');
  });
}

test('held bytes never exceed the header limit while waiting', { timeout: 5000 }, () => {
  const r = new RtspMessageReader({ maxHeaderBytes: 512, maxBodyBytes: 512 });
  assert.throws(() => {
    for (let i = 0; i < 100; i++) {
      r.push(Buffer.from(i === 0 ? 'OPTIONS * RTSP/1.0\r\n' : 'X-A: bbbbbbbbbb\r\n'));
      assert.ok(r.buffered <= 512);
    }
  }, /HeaderTooLarge/);
});

test('headers are case-insensitive, keep order and repeats', { timeout: 5000 }, () => {
  const h = new RtspHeaders({ CSeq: 4, 'WWW-Authenticate': 'Digest realm="a"' });
  h.append('www-authenticate', 'Basic realm="a"');
  assert.equal(h.get('cseq'), '4');
  assert.deepEqual(h.getAll('WWW-AUTHENTICATE'), ['Digest realm="a"', 'Basic realm="a"']);
  h.set('Cseq', 5);
  assert.deepEqual(h.entries()[h.entries().length - 1], ['Cseq', '5']);
  assert.equal(h.getAll('cseq').length, 1);
});

test('serialized messages read back the same', { timeout: 5000 }, () => {
  const body = Buffer.from(SDP);
  const req = serializeRequest({ method: 'ANNOUNCE', url: 'rtsp://h/p', headers: new RtspHeaders({ CSeq: 2, 'Content-Type': 'application/sdp' }), body });
  const res = serializeResponse({ status: 461, headers: new RtspHeaders({ CSeq: 3 }) });
  assert.match(res.toString(), /^RTSP\/1\.0 461 Unsupported Transport\r\nCSeq: 3\r\n\r\n$/);
  const items = new RtspMessageReader().push(Buffer.concat([req, res]));
  assert.equal(items.length, 2);
  const [a, b] = items;
  assert.ok(a?.type === 'request' && b?.type === 'response');
  assert.equal(a.headers.get('content-length'), String(body.length));
  assert.deepEqual(a.body, body);
  assert.equal(b.status, 461);
});

test('serializer refuses header values that would inject lines', { timeout: 5000 }, () => {
  assert.throws(() => serializeResponse({ status: 200, headers: new RtspHeaders({ CSeq: '1\r\nX-Evil: 1' }) }), /line break/);
  assert.throws(() => serializeResponse({ status: 200, headers: new RtspHeaders({ CSeq: '1\0' }) }), /NUL/);
  // A reason phrase is free text: its line breaks become spaces rather than a second line.
  assert.match(serializeResponse({ status: 404, reason: 'no\r\nX-Evil: 1', headers: new RtspHeaders() }).toString(), /^RTSP\/1\.0 404 no X-Evil: 1\r\n\r\n$/);
});

test('interleaved header: $, channel, 16-bit length; out-of-range is refused', { timeout: 5000 }, () => {
  assert.deepEqual(interleavedHeader(3, 0x1234), Buffer.from([0x24, 3, 0x12, 0x34]));
  assert.throws(() => interleavedHeader(256, 1), RangeError);
  assert.throws(() => interleavedHeader(0, 0x10000), RangeError);
});
