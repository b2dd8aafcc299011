// Issue 12: what one hostile RTSP client can do to camrelay's RTSP server (real, in this process,
// serving a real ffmpeg stream): bad bytes in a header, too many connections, a request sent one
// byte at a time. Each must cost only that client's connection; the server keeps answering
// everyone else, and the process stays up (the test runner fails a file on an unhandled rejection).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { probeOptions, rawExchange } from '../helpers/rtsp-raw.js';
import { startMiniRelay, type MiniRelay } from '../helpers/rtsp-mini-relay.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';

let relay: MiniRelay;
let port = 0;
const url = (path = 'demo') => relay.url(path);

before(async () => {
  relay = await startMiniRelay({ demo: [DEMO] });
  port = relay.server.port;
});

after(async () => {
  await relay?.close();
});

test('regression: a bare CR inside CSeq is answered 400, and camrelay keeps serving', { timeout: 30_000 }, async () => {
  // Before issue 12 the reader took this, the header writer threw inside the async DESCRIBE
  // handler, and the unhandled rejection ended the process.
  const r = await rawExchange(port, `DESCRIBE ${url()} RTSP/1.0\r\nCSeq: 1\r2\r\nAccept: application/sdp\r\n\r\n`, 10_000);
  assert.equal(r.responses[0]?.status, 400, `answered ${r.responses[0]?.status}`);
  assert.match(r.responses[0]!.reason, /BadHeaderValue: CR inside header line "CSeq: 1\\r2"/);
  assert.equal(r.closed, true, 'the connection is closed after the 400');
  assert.equal(await probeOptions(port), 200, 'another connection is answered');
});

test('LF and NUL in header values, and a CR in the CSeq of a SETUP, are answered 400', { timeout: 30_000 }, async () => {
  for (const bad of ['CSeq: 1\nX-Foo: bar', 'User-Agent: a\0b']) {
    const r = await rawExchange(port, `DESCRIBE ${url()} RTSP/1.0\r\nCSeq: 2\r\n${bad}\r\n\r\n`, 10_000);
    // A bare LF ends a header line (lenient peers), so "X-Foo" is a field; the NUL is refused.
    if (bad.includes('\n')) assert.equal(r.responses[0]?.status, 200, JSON.stringify(bad));
    else assert.equal(r.responses[0]?.status, 400, JSON.stringify(bad));
  }
  // The same connection DESCRIBEs well, then its SETUP carries a CR in CSeq: the SETUP handler
  // is the other async one.
  const player = new RawRtspPlayer(port);
  try {
    const d = await player.request('DESCRIBE', url());
    assert.equal(d.status, 200);
    player.socket.write(`SETUP ${url()}/trackID=0 RTSP/1.0\r\nCSeq: 9\r9\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n`);
    await waitFor('the connection closed after the 400', () => player.socket.destroyed || player.socket.readableEnded, 10_000);
  } finally {
    player.destroy();
  }
  assert.equal(await probeOptions(port), 200);
  // A player that does everything right still plays.
  const good = new RawRtspPlayer(port);
  try {
    await good.play(url());
    await waitFor('frames', () => good.frames(0) >= 5, 15_000);
  } finally {
    good.destroy();
  }
});
