// Issue 18, deliverable 1: the RTSP client asks for the ONVIF backchannel only with
// `#backchannel=1`, sets up the camera's sendonly audio media, and sends RTP on its channel; a
// camera that refuses the feature tag or the SETUP still plays. Scripted cameras on 127.0.0.1
// (gst-rtsp-server's ONVIF server is the real camera of the integration tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtspSource } from '../../src/sources/rtsp.js';
import { liveObjects } from '../../src/core/objects.js';
import type { MediaRequest } from '../../src/core/media.js';
import { parseRtp } from '../../src/rtp/packet.js';
import { ScriptedCamera, type Script } from '../helpers/scripted-camera.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from '../helpers/captured-log.js';

const logs = captureLog('debug');
const REQUIRE = 'www.onvif.org/ver20/backchannel';
const WANT: MediaRequest = { video: ['H264'], audio: ['AAC', 'OPUS', 'PCMA', 'PCMU'] };
const FAST = { requestTimeoutMs: 500, connectTimeoutMs: 1000, readTimeoutMs: 400, teardownGraceMs: 100 };
const mine = ['RtspSource', 'RtspClient', 'RtspClientConnection'];

const sdp = (...media: string[]) => ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=onvif', 't=0 0', ...media, ''].join('\r\n');
const VIDEO = ['m=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==', 'a=control:video', 'a=recvonly'];
const BACK_PCMA = ['m=audio 0 RTP/AVP 8', 'a=rtpmap:8 PCMA/8000', 'a=control:back', 'a=sendonly'];

/** A camera that describes its backchannel only when asked with the feature tag, as ONVIF says. */
function onvif(back: string[] = BACK_PCMA, extra: Script = {}): Script {
  return {
    DESCRIBE: (x) => {
      const asked = x.req.headers.get('require') === REQUIRE;
      x.reply(200, { 'Content-Type': 'application/sdp', 'Content-Base': `rtsp://127.0.0.1/cam/` }, sdp(...VIDEO, ...(asked ? back : [])));
    },
    ...extra,
  };
}

function objectsOf(): Record<string, number> {
  const all = liveObjects();
  return Object.fromEntries(mine.map((k) => [k, all[k] ?? 0]));
}

async function closeAll(src: RtspSource, cam: ScriptedCamera): Promise<void> {
  src.close();
  await src.done;
  await cam.close();
  assert.deepEqual(objectsOf(), Object.fromEntries(mine.map((k) => [k, 0])), 'nothing left alive');
}

test('#backchannel=1: Require on DESCRIBE, SETUP and PLAY (without Range); the sendonly audio media is set up after the tracks; RTP goes out on its channel', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  cam.use(onvif());
  const src = new RtspSource(`${cam.url()}#backchannel=1`, 'door', FAST);
  try {
    const tracks = await src.start(new AbortController().signal, WANT);
    assert.deepEqual(tracks.map((t) => t.codec.name), ['H264'], 'the backchannel is no track of the stream');
    const byMethod = (m: string) => cam.requests.filter((r) => r.method === m);
    assert.equal(byMethod('DESCRIBE')[0]!.headers.get('require'), REQUIRE);
    const setups = byMethod('SETUP');
    assert.deepEqual(setups.map((r) => r.url), ['rtsp://127.0.0.1/cam/video', 'rtsp://127.0.0.1/cam/back']);
    assert.equal(setups[0]!.headers.get('require'), undefined, 'the video SETUP is plain');
    assert.equal(setups[1]!.headers.get('require'), REQUIRE);
    assert.match(setups[1]!.headers.get('transport') ?? '', /^RTP\/AVP\/TCP;unicast;interleaved=2-3$/);
    assert.equal(byMethod('PLAY')[0]!.headers.get('require'), REQUIRE);
    // No Range: gst-rtsp-server's ONVIF server answers a seek of a session with a backchannel 503.
    assert.equal(byMethod('PLAY')[0]!.headers.get('range'), undefined);

    const back = src.backchannel;
    assert.ok(back, 'a backchannel');
    assert.deepEqual([back.codec.name, back.codec.clockRate], ['PCMA', 8000]);
    assert.equal((src.info().backchannel as { codec: string }).codec, 'audio:PCMA/8000');
    for (let i = 0; i < 10; i++) back.send(Buffer.alloc(160, 0xd5 + i), 1000 + i * 160, i === 0);
    await waitFor('ten packets at the camera', () => cam.received.length >= 10, 5000);
    const pkts = cam.received.map((r) => ({ channel: r.channel, ...parseRtp(r.payload) }));
    assert.deepEqual([...new Set(pkts.map((p) => p.channel))], [2]);
    assert.deepEqual([...new Set(pkts.map((p) => p.payloadType))], [8]);
    assert.equal(new Set(pkts.map((p) => p.ssrc)).size, 1, 'one SSRC');
    assert.deepEqual(pkts.map((p) => (p.sequenceNumber - pkts[0]!.sequenceNumber) & 0xffff), [...Array(10).keys()]);
    assert.deepEqual(pkts.map((p) => p.timestamp), [...Array(10).keys()].map((i) => 1000 + i * 160));
    assert.deepEqual(pkts.map((p) => p.marker), [true, ...Array(9).fill(false)]);
    assert.deepEqual(pkts.map((p) => p.payload[0]), [...Array(10).keys()].map((i) => 0xd5 + i));
    assert.deepEqual(back.counters, { packets: 10, bytes: 1600, dropped: 0 });
  } finally {
    await closeAll(src, cam);
  }
  assert.equal(src.backchannel, undefined, 'gone with the source');
});

test('without #backchannel=1 the camera is never asked, and its sendonly media is not set up', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  // A camera that lists its backchannel whether asked or not (some do).
  cam.use({ DESCRIBE: (x) => x.reply(200, { 'Content-Type': 'application/sdp', 'Content-Base': 'rtsp://127.0.0.1/cam/' }, sdp(...VIDEO, ...BACK_PCMA)) });
  const src = new RtspSource(cam.url(), 'door', FAST);
  try {
    await src.start(new AbortController().signal, WANT);
    assert.ok(cam.requests.every((r) => r.headers.get('require') === undefined));
    assert.deepEqual(cam.requests.filter((r) => r.method === 'SETUP').map((r) => r.url), ['rtsp://127.0.0.1/cam/video']);
    assert.equal(src.backchannel, undefined);
  } finally {
    await closeAll(src, cam);
  }
});

test('a camera that answers the feature tag with 551 is described again without it, on the same connection, and plays', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  cam.use({
    DESCRIBE: (x) => {
      if (x.req.headers.get('require')) return x.reply(551, { Unsupported: REQUIRE }, undefined, 'Option not supported');
      x.reply(200, { 'Content-Type': 'application/sdp', 'Content-Base': 'rtsp://127.0.0.1/cam/' }, sdp(...VIDEO));
    },
  });
  const src = new RtspSource(`${cam.url()}#backchannel=1`, 'door', FAST);
  try {
    const tracks = await src.start(new AbortController().signal, WANT);
    assert.deepEqual(tracks.map((t) => t.codec.name), ['H264']);
    assert.deepEqual(cam.requests.filter((r) => r.method === 'DESCRIBE').map((r) => r.headers.get('require') ?? 'none'), [REQUIRE, 'none']);
    assert.equal(cam.connections, 1, 'one connection');
    assert.equal(src.backchannel, undefined);
    assert.ok(logs.some((l) => l.msg === 'camera refused the ONVIF backchannel; describing without it' && l.status === 551));
  } finally {
    await closeAll(src, cam);
  }
});

test('a refused backchannel SETUP, or a backchannel in a codec camrelay cannot make, leaves the camera playing without one', { timeout: 20000 }, async () => {
  for (const [name, script] of [
    ['SETUP 453', onvif(BACK_PCMA, { SETUP: (x) => (x.req.url.endsWith('/back') ? (x.reply(453, {}, undefined, 'Not Enough Bandwidth'), true) : false) })],
    ['G.726 backchannel', onvif(['m=audio 0 RTP/AVP 97', 'a=rtpmap:97 G726-32/8000', 'a=control:back', 'a=sendonly'])],
  ] as const) {
    const cam = await ScriptedCamera.start();
    cam.use(script);
    const src = new RtspSource(`${cam.url()}#backchannel=1`, 'door', FAST);
    try {
      const tracks = await src.start(new AbortController().signal, WANT);
      assert.deepEqual(tracks.map((t) => t.codec.name), ['H264'], name);
      assert.equal(src.backchannel, undefined, name);
    } finally {
      await closeAll(src, cam);
    }
  }
  assert.ok(logs.some((l) => l.msg === 'camera refused the backchannel SETUP; playing without it' && l.status === 453));
  assert.ok(logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('camera backchannel in a codec camrelay cannot make')));
});

test('a talker alone: nothing to receive, only the backchannel is set up; the session lives on keep-alives, not on RTP it never gets', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  cam.use(onvif(BACK_PCMA, { SETUP: (x) => (x.reply(200, { Transport: x.req.headers.get('transport') ?? '', Session: '42;timeout=1' }), true) }));
  const src = new RtspSource(`${cam.url()}#backchannel=1`, 'door', FAST);
  try {
    const tracks = await src.start(new AbortController().signal, {});
    assert.deepEqual(tracks, []);
    assert.deepEqual(cam.requests.filter((r) => r.method === 'SETUP').map((r) => r.url), ['rtsp://127.0.0.1/cam/back']);
    assert.ok(src.backchannel);
    // Several read timeouts (400 ms) pass while two keep-alives (every 500 ms) come and go.
    await waitFor('two keep-alives', () => cam.requests.filter((r) => r.method === 'GET_PARAMETER' || (r.method === 'OPTIONS' && r.headers.get('session'))).length >= 2, 5000);
    assert.equal(src.closed, false, 'no read timeout for a session that only talks');
  } finally {
    await closeAll(src, cam);
  }
});

test('a camera that does not read its backchannel: packets are dropped and counted once the socket holds 32 KiB, memory stays bounded', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  cam.use(onvif());
  const src = new RtspSource(`${cam.url()}#backchannel=1`, 'door', FAST);
  try {
    await src.start(new AbortController().signal, WANT);
    for (const s of cam.sockets) s.pause();
    const back = src.backchannel!;
    // 60000 packets of 160 bytes (~10 MB) fill the loopback socket buffers many times over.
    for (let i = 0; i < 60000; i++) back.send(Buffer.alloc(160), i * 160, false);
    assert.ok(back.counters.dropped > 0, `dropped ${back.counters.dropped}`);
    assert.ok(back.counters.bytes < 9_000_000, `sent ${back.counters.bytes} bytes into a socket nobody reads`);
  } finally {
    await closeAll(src, cam);
  }
});

test('a talker alone whose camera refuses the backchannel SETUP gets an error naming it, not a PLAY of nothing; RTCP from the camera on the backchannel channels is no warning', { timeout: 20000 }, async () => {
  const cam = await ScriptedCamera.start();
  cam.use(onvif(BACK_PCMA, { SETUP: (x) => (x.req.url.endsWith('/back') ? (x.reply(453, {}, undefined, 'Not Enough Bandwidth'), true) : false) }));
  const src = new RtspSource(`${cam.url()}#backchannel=1`, 'door', FAST);
  try {
    await assert.rejects(src.start(new AbortController().signal, {}), /camera refused the backchannel, the only thing asked of it/);
    assert.equal(cam.requests.filter((r) => r.method === 'PLAY').length, 0, 'no PLAY');
  } finally {
    await closeAll(src, cam);
  }

  const cam2 = await ScriptedCamera.start();
  cam2.use(
    onvif(BACK_PCMA, {
      PLAY: (x) => {
        x.reply(200, { Session: '12345678' });
        // A receiver report on the backchannel's RTCP channel (3), as cameras send them.
        x.raw(Buffer.concat([Buffer.from([0x24, 3, 0, 8]), Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1])]));
        return true;
      },
    }),
  );
  const src2 = new RtspSource(`${cam2.url()}#backchannel=1`, 'door', FAST);
  const warnedBefore = logs.filter((l) => l.msg === 'dropped RTP data').length;
  try {
    await src2.start(new AbortController().signal, WANT);
    src2.backchannel!.send(Buffer.alloc(160), 0, true);
    await waitFor('the packet at the camera (after its RTCP was read)', () => cam2.received.length >= 1, 5000);
    assert.equal(logs.filter((l) => l.msg === 'dropped RTP data').length, warnedBefore);
  } finally {
    await closeAll(src2, cam2);
  }
});
