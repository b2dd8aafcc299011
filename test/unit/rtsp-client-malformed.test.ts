// Issue 3, deliverable 4: a camera that answers badly gives a named error for its stream only, and
// leaves nothing behind (socket, timer, live object). Each case is a scripted camera on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RtspSource } from '../../src/sources/rtsp.js';
import { SourceError } from '../../src/core/errors.js';
import { liveObjects } from '../../src/core/objects.js';
import type { Frame, MediaRequest } from '../../src/core/media.js';
import { serializeInterleaved } from '../../src/rtsp/message.js';
import { ScriptedCamera, H264_SDP, type Script } from '../helpers/scripted-camera.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from '../helpers/captured-log.js';

// Every log line is kept, so a case can assert the named error it logged.
const logs = captureLog('debug');

const WANT: MediaRequest = { video: ['H264', 'H265'], audio: ['AAC', 'OPUS', 'PCMA', 'PCMU'] };
const FAST = { requestTimeoutMs: 300, connectTimeoutMs: 1000, readTimeoutMs: 300, teardownGraceMs: 100 };
const mine = ['RtspSource', 'RtspClient', 'RtspClientConnection', 'RtspUdpPortPair'];

const sdp = (...media: string[]) => ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=x', 't=0 0', ...media, ''].join('\r\n');
const describeWith = (body: string, type = 'application/sdp'): Script => ({
  DESCRIBE: (x) => x.reply(200, { 'Content-Type': type }, body),
});

function rtp(seq: number, ts: number, payload: Buffer, opts: { marker?: boolean; padding?: number } = {}): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80 | (opts.padding ? 0x20 : 0);
  h[1] = (opts.marker ? 0x80 : 0) | 96;
  h.writeUInt16BE(seq, 2);
  h.writeUInt32BE(ts, 4);
  h.writeUInt32BE(0x1234, 8);
  // One padding byte that claims `padding` bytes: more than the packet holds makes it malformed.
  const tail = opts.padding ? Buffer.from([opts.padding]) : Buffer.alloc(0);
  return Buffer.concat([h, payload, tail]);
}
const IDR = Buffer.from([0x65, 0x88, 0x84, 0x00, 0x33]);

/** Sends interleaved frames on channel 0 (the track) right after PLAY's answer. */
const playThen = (...frames: Array<[number, Buffer]>): Script => ({
  PLAY: (x) => {
    x.reply(200, { Session: '12345678' });
    for (const [ch, payload] of frames) x.raw(serializeInterleaved(ch, payload));
  },
});

interface Case {
  name: string;
  script: Script;
  /** What start() rejects with. */
  error?: RegExp;
  permanent?: boolean;
  /** For failures after PLAY: a logged named error; the source keeps running unless `ends`. */
  logged?: { errName: string; err: RegExp };
  /** For failures after PLAY that end the source: its close error. */
  ends?: RegExp;
  url?: (cam: ScriptedCamera) => string;
  /** Connections the camera should have seen. */
  connections?: number;
}

const CASES: Case[] = [
  { name: 'an HTTP answer instead of RTSP', script: { OPTIONS: (x) => x.raw('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') }, error: /^OPTIONS: camera sent a malformed message: BadStartLine: "HTTP\/1.1 200 OK"$/ },
  { name: 'binary garbage', script: { OPTIONS: (x) => x.raw(Buffer.from([0x00, 0xff, 0x13, 0x37])) }, error: /^OPTIONS: camera sent a malformed message: BadStartLine: binary data/ },
  // Issue 12: a bare CR inside a header value is refused by the reader, for cameras as for players.
  { name: 'a bare CR inside a header value', script: { OPTIONS: (x) => x.raw('RTSP/1.0 200 OK\r\nCSeq: 1\rX: y\r\n\r\n') }, error: /^OPTIONS: camera sent a malformed message: BadHeaderValue: CR inside header line "CSeq: 1\\rX: y"$/ },
  { name: 'a NUL inside a header value', script: { OPTIONS: (x) => x.raw('RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS\0DESCRIBE\r\n\r\n') }, error: /^OPTIONS: camera sent a malformed message: BadHeaderValue: NUL inside header line/ },
  { name: 'a Content-Length that is not a number', script: { DESCRIBE: (x) => x.raw('RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 12abc\r\n\r\n') }, error: /^DESCRIBE: camera sent a malformed message: BadContentLength: "12abc"$/ },
  { name: 'a Content-Length over the limit', script: { DESCRIBE: (x) => x.raw('RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 9999999\r\n\r\n') }, error: /^DESCRIBE: camera sent a malformed message: BodyTooLarge: 9999999 bytes/ },
  { name: 'a header that never ends', script: { OPTIONS: (x) => x.raw('RTSP/1.0 200 OK\r\nX-Junk: ' + 'a'.repeat(20000)) }, error: /^OPTIONS: camera sent a malformed message: HeaderTooLarge/ },
  { name: 'a header line without a colon', script: { OPTIONS: (x) => x.raw('RTSP/1.0 200 OK\r\nCSeq: 1\r\nthis is no header\r\n\r\n') }, error: /^OPTIONS: camera sent a malformed message: BadHeaderLine: "this is no header"$/ },
  {
    name: 'a Content-Length longer than the body, then the camera hangs up',
    script: { DESCRIBE: (x) => { x.raw('RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n'); x.socket.end(); } },
    error: /^DESCRIBE: camera closed the connection$/,
  },
  {
    name: 'a Content-Length shorter than the body (the rest is read as the next message)',
    script: { DESCRIBE: (x) => x.raw(`RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\n${H264_SDP}`) },
    error: /^DESCRIBE: camera sent a malformed message: BadStartLine: "o=- 0 0 IN IP4 127\.0\.0\.1"$/,
  },
  { name: 'DESCRIBE 404', script: { DESCRIBE: (x) => x.reply(404) }, error: /^DESCRIBE: 404 Not Found$/ },
  { name: 'DESCRIBE 200 without a body', script: { DESCRIBE: (x) => x.reply(200, { 'Content-Type': 'application/sdp' }) }, error: /^DESCRIBE: empty answer, no SDP$/ },
  { name: 'DESCRIBE answered with HTML', script: describeWith('<html></html>', 'text/html'), error: /^DESCRIBE: answer is text\/html, not SDP$/ },
  // Without v= but with media is a camera's lenient SDP (issue 13 item 10); without either it is not SDP.
  { name: 'SDP with neither v=0 nor media', script: describeWith('o=- 0 0 IN IP4 1.2.3.4\r\ns=x\r\n'), error: /^DESCRIBE: bad SDP: neither v=0 nor any m= line$/ },
  { name: 'SDP with a broken m= line', script: describeWith(sdp('m=video zero RTP/AVP 96')), error: /^DESCRIBE: bad SDP: bad m= line/ },
  { name: 'SDP with a line that is not SDP', script: describeWith('v=0\r\nhello world\r\n'), error: /^DESCRIBE: bad SDP: not an SDP line: "hello world"/ },
  {
    name: 'SDP with only codecs camrelay does not carry (MJPEG, ONVIF metadata, AAC-CELP, H.265 with DON)',
    script: describeWith(
      sdp(
        'm=video 0 RTP/AVP 26', 'a=control:v',
        'm=application 0 RTP/AVP 107', 'a=rtpmap:107 vnd.onvif.metadata/90000', 'a=control:m',
        'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 MPEG4-GENERIC/16000', 'a=fmtp:97 mode=CELP-cbr;config=1408', 'a=control:a',
        'm=video 0 RTP/AVP 98', 'a=rtpmap:98 H265/90000', 'a=fmtp:98 sprop-max-don-diff=2', 'a=control:h',
      ),
    ),
    error: /^camera offers no track the viewers can use \(offered video:JPEG, application:VND\.ONVIF\.METADATA, audio:MPEG4-GENERIC, video:H265; wanted video:H264, video:H265, audio:AAC, audio:OPUS, audio:PCMA, audio:PCMU\)$/,
    permanent: true,
  },
  { name: 'SETUP refused with 461', script: { SETUP: (x) => x.reply(461) }, error: /^SETUP: 461 Unsupported Transport$/ },
  { name: 'SETUP answered without a Session header', script: { SETUP: (x) => x.reply(200, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' }) }, error: /^SETUP: answer without a Session header$/ },
  {
    name: 'SETUP answered with UDP to a TCP request',
    script: { SETUP: (x) => x.reply(200, { Transport: 'RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001', Session: 'abc' }) },
    error: /^SETUP: asked for TCP interleaved, the camera answered "RTP\/AVP;unicast;client_port=5000-5001;server_port=6000-6001"$/,
  },
  { name: 'PLAY refused with 455', script: { PLAY: (x) => x.reply(455) }, error: /^PLAY: 455 Method Not Valid in This State$/ },
  { name: 'an answer with the wrong CSeq', script: { OPTIONS: (x) => x.raw('RTSP/1.0 200 OK\r\nCSeq: 77\r\n\r\n') }, error: /^OPTIONS: no answer within 300 ms$/ },
  { name: 'the camera hangs up after OPTIONS', script: { DESCRIBE: (x) => void x.socket.end() }, error: /^DESCRIBE: camera closed the connection$/ },
  { name: 'a 401 with no credentials in the URL', script: { DESCRIBE: (x) => x.reply(401, { 'WWW-Authenticate': 'Basic realm="cam"' }) }, error: /^DESCRIBE: 401 Unauthorized \(the camera wants a username and password; the URL has none\)$/, permanent: true },
  {
    name: 'a 401 with a challenge camrelay cannot answer',
    script: { DESCRIBE: (x) => x.reply(401, { 'WWW-Authenticate': 'Negotiate abc' }) },
    url: (c) => `rtsp://u:secret@127.0.0.1:${c.port}/cam`,
    error: /^DESCRIBE: 401 Unauthorized \(no challenge camrelay can answer\)$/,
    permanent: true,
  },
  {
    name: 'a redirect loop',
    script: { OPTIONS: (x) => x.reply(302, { Location: `rtsp://127.0.0.1:${(x.socket.localPort ?? 0)}/again` }, undefined, 'Found') },
    error: /^OPTIONS: too many redirects \(more than 3\)$/,
    connections: 4,
  },
  { name: 'a redirect without a Location', script: { DESCRIBE: (x) => x.reply(301, {}, undefined, 'Moved') }, error: /^DESCRIBE: 301 redirect without a Location$/ },
  { name: 'nobody listening', script: {}, url: () => `rtsp://127.0.0.1:${closedPort}/cam`, error: /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/, connections: 0 },
  { name: 'RTP on an interleaved channel never set up', script: playThen([6, rtp(1, 0, IDR, { marker: true })]), logged: { errName: 'RtspProtocolError', err: /^ChannelNotSetUp: interleaved data on channel 6$/ } },
  { name: 'RTP with bad padding', script: playThen([0, rtp(1, 0, IDR, { marker: true, padding: 200 })]), logged: { errName: 'RtpPacketError', err: /^RtpBadPadding: padding 200/ } },
  { name: 'a truncated FU-A', script: playThen([0, rtp(1, 0, Buffer.from([0x7c, 0x85]))]), logged: { errName: 'DepacketizeError', err: /^FuaTruncated: FU-A of 2 bytes$/ } },
  { name: 'garbage after PLAY', script: playThen([0, rtp(1, 0, IDR)]), ends: /^camera sent a malformed message: BadStartLine/ },
  { name: 'silence after PLAY', script: {}, ends: /^camera sent nothing for 0\.3 s$/ },
];

// The "garbage after PLAY" case: interleaved RTP, then text that is no RTSP.
CASES.find((c) => c.name === 'garbage after PLAY')!.script = {
  PLAY: (x) => {
    x.reply(200, { Session: '12345678' });
    x.raw(serializeInterleaved(0, rtp(1, 0, IDR, { marker: true })));
    x.raw('NOT RTSP AT ALL\r\n\r\n');
  },
};

let closedPort = 0;

function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

test(`${CASES.length} malformed camera answers each give their named error and leave nothing behind`, { timeout: 50000 }, async () => {
  assert.ok(CASES.length >= 15);
  const cam = await ScriptedCamera.start();
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  try {
    for (const c of CASES) {
      cam.use(c.script);
      logs.length = 0;
      const before = handles();
      const src = new RtspSource(c.url ? c.url(cam) : cam.url(), 'malformed', FAST);
      const frames: Frame[] = [];
      src.on('frame', (f: Frame) => frames.push(f));
      const closed = new Promise<Error | undefined>((resolve) => src.once('close', resolve));
      const result = await src.start(new AbortController().signal, WANT).then(() => undefined, (e: unknown) => e);

      if (c.error) {
        assert.ok(result instanceof SourceError, `${c.name}: start rejects with a SourceError (got ${String(result)})`);
        assert.match(result.message, c.error, c.name);
        assert.equal(result.permanent, c.permanent ?? false, `${c.name}: permanent`);
        assert.equal(src.closed, true, `${c.name}: a failed start closes the source`);
        assert.equal(await closed, result, `${c.name}: the source closes with the same error`);
      } else {
        assert.equal(result, undefined, `${c.name}: start succeeds (${String(result)})`);
        if (c.logged) {
          const want = c.logged;
          const line = await waitFor(`${c.name}: the logged error`, () => logs.find((l) => l.errName === want.errName), 2000);
          assert.match(String(line.err), want.err, c.name);
          assert.equal(line.stream, 'malformed', `${c.name}: logged for its stream`);
          assert.equal(src.closed, false, `${c.name}: the source keeps running`);
          src.close();
        } else {
          const err = await closed;
          assert.ok(err instanceof SourceError, `${c.name}: the source ends with a SourceError`);
          assert.match(err.message, c.ends!, c.name);
        }
      }
      await src.done;
      if (c.connections !== undefined) assert.equal(cam.connections, c.connections, `${c.name}: connections`);
      for (const k of mine) assert.equal(liveObjects()[k] ?? 0, 0, `${c.name}: ${k} left`);
      await waitFor(`${c.name}: camera sees no connection left`, async () => (await cam.count()) === 0, 2000);
      // Sockets and UDP sockets of the client are gone (their close may take a turn of the loop)...
      await waitFor(`${c.name}: no socket left`, () => {
        const now = handles();
        return ['TCPSocketWrap', 'UDPWrap', 'TLSWrap'].every((k) => (now[k] ?? 0) <= (before[k] ?? 0)) && now;
      }, 2000);
      // ...and its timers were cleared, not left to run out.
      assert.ok((handles()['Timeout'] ?? 0) <= (before['Timeout'] ?? 0), `${c.name}: timers left: ${JSON.stringify(handles())}`);
      assert.ok(!JSON.stringify(logs).includes('secret'), `${c.name}: no password in the logs`);
    }
  } finally {
    await cam.close();
  }
});

test('a URL the client cannot use is refused when the source is made, as a permanent error', () => {
  for (const [url, why] of [
    ['rtsp://', /bad camera URL "rtsp:\/\/": (not a URL|no host)/],
    ['rtsp://cam/x#transport=ws://y', /#transport=ws:\/\/y is not supported \(tcp or udp\)/],
    ['rtsp://u:pw@cam/x#timeout=-1', /^bad camera URL "rtsp:\/\/\*\*\*:\*\*\*@cam\/x#timeout=-1": #timeout=-1/],
  ] as const) {
    assert.throws(() => new RtspSource(url, 's'), (e: unknown) => e instanceof SourceError && e.permanent && why.test(e.message));
  }
  for (const k of mine) assert.equal(liveObjects()[k] ?? 0, 0);
});

test('the SDP of the scripted camera plays (the table is not failing for a boring reason)', { timeout: 10000 }, async () => {
  const cam = await ScriptedCamera.start();
  cam.use(playThen([0, rtp(1, 9000, IDR, { marker: true })]));
  try {
    const src = new RtspSource(cam.url(), 's', FAST);
    const frames: Frame[] = [];
    src.on('frame', (f: Frame) => frames.push(f));
    const tracks = await src.start(new AbortController().signal, WANT);
    assert.equal(tracks.length, 1);
    await waitFor('the IDR as a keyframe with SPS/PPS from the SDP', () => frames.length === 1 && frames[0]!.keyframe && frames[0]!.data.length === 3, 2000);
    assert.deepEqual(cam.requests.map((r) => r.method), ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY']);
    assert.equal(cam.requests[2]!.url, cam.url() + '/track1', 'SETUP names the control URL under Content-Base');
    assert.ok(H264_SDP.includes('a=control:track1'));
    src.close();
    await src.done;
    await waitFor('TEARDOWN', () => cam.requests.some((r) => r.method === 'TEARDOWN'), 2000);
    assert.equal(cam.requests.at(-1)!.url, cam.url() + '/', 'TEARDOWN names the aggregate URL');
  } finally {
    await cam.close();
  }
});

test('aborting the start at each step closes everything; once a session exists the camera gets a TEARDOWN', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  try {
    for (const transport of ['', '#transport=udp']) {
      for (const step of ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY']) {
        let asked!: () => void;
        const reached = new Promise<void>((r) => (asked = r));
        // The camera never answers `step`; the test aborts once it was asked.
        cam.use({ [step]: () => asked() });
        const before = handles();
        const src = new RtspSource(cam.url() + transport, 'abort', FAST);
        const ac = new AbortController();
        const started = src.start(ac.signal, WANT).then(() => undefined, (e: unknown) => e);
        await reached;
        ac.abort();
        src.close(); // as the Stream does when it aborts a start
        const err = await started;
        assert.ok(err instanceof SourceError, `${step}${transport}: rejects with a SourceError`);
        assert.equal(err.message, 'source stopped before it started', `${step}${transport}`);
        await src.done;
        const teardown = cam.requests.some((r) => r.method === 'TEARDOWN');
        // SETUP was sent but not answered: no session yet, so there is nothing to tear down.
        assert.equal(teardown, step === 'PLAY', `${step}${transport}: TEARDOWN only once a session exists`);
        for (const k of mine) assert.equal(liveObjects()[k] ?? 0, 0, `${step}${transport}: ${k} left`);
        await waitFor(`${step}${transport}: camera sees no connection`, async () => (await cam.count()) === 0, 2000);
        const now = handles();
        for (const k of ['TCPSocketWrap', 'UDPWrap', 'Timeout']) assert.ok((now[k] ?? 0) <= (before[k] ?? 0), `${step}${transport}: ${k} left: ${JSON.stringify(now)}`);
      }
    }
  } finally {
    await cam.close();
  }
});
