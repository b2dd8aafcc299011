// Issue 13 item 2: go2rtc's own player (www/video-rtc.js, default mode webrtc,mse,hls,mjpeg) over
// /api/ws. It asks for MSE first, then MJPEG when MSE is refused, and closes its peer on any error
// containing "webrtc/offer"; once WebRTC plays it closes the WebSocket. Against a real camrelay,
// the demo (ffmpeg test pattern) and a gst-rtsp-server camera.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera } from '../helpers/gst-camera.js';
import { Go2rtcPlayer } from '../helpers/go2rtc-player.js';
import { Signalling } from '../helpers/signalling.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';
let app: CamrelayProcess;
let camera: GstCamera;

before(async () => {
  camera = await GstCamera.start({ pipeline: 'h264' });
  app = await CamrelayProcess.start(testConfig({ demo: DEMO, cam: camera.url() }).replace('disconnect: 2s', 'disconnect: 5s'));
});

after(async () => {
  assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera.stop();
});

/** Every error camrelay sent names the type it answers, and only webrtc/offer's contain "webrtc/offer". */
function checkErrors(p: Go2rtcPlayer): string[] {
  const errors = p.messages.filter((m) => m.type === 'error').map((m) => m.value);
  for (const v of errors) {
    assert.equal(typeof v, 'string', 'an error carries a string value (video-rtc.js calls value.indexOf)');
    assert.match(String(v), /^(mse|mjpeg|webrtc\/offer|webrtc\/candidate): /);
  }
  return errors as string[];
}

async function plays(src: string): Promise<void> {
  const p = await new Go2rtcPlayer(app.port, src).start();
  try {
    await waitFor(`${src}: video over WebRTC`, () => p.viewer.video.length > 20, 15000);
    await waitFor(`${src}: the player closed its socket`, () => p.wsClosedBecausePlaying, 2000);
    await p.closed;
    assert.equal(p.pcClosedByError, undefined, 'no error made the player close its peer');
    const errors = checkErrors(p);
    // MSE is answered now (issue 15): no error, so the player never falls back to MJPEG; WebRTC
    // carries the same media and wins by video-rtc.js's weights.
    assert.deepEqual(errors, [], 'no error for any mode');
    assert.match(p.mseType ?? '', /^video\/mp4; codecs="avc1\./, 'the MSE answer names the H.264 codec');
    assert.ok(!p.sent.some((m) => m.type === 'mjpeg'), 'no MJPEG fallback asked for');
    assert.equal(p.sent[0]?.type, 'mse', 'mse first, as video-rtc.js sends it');
    assert.ok(p.sent.some((m) => m.type === 'webrtc/offer'));
    assert.ok(p.sent.some((m) => m.type === 'webrtc/candidate' && m.value === ''), 'the end of candidates was sent as ""');
    // The session outlives the signalling socket (go2rtc registers no close hook for WebRTC).
    const before = p.viewer.video.length;
    await waitFor(`${src}: RTP after the socket closed`, () => p.viewer.video.length > before + 20, 5000);
    assert.equal(p.viewer.pc.connectionState, 'connected');
  } finally {
    await p.close();
  }
}

test("go2rtc's player plays the demo: mse answered, WebRTC wins and plays, RTP continues after it closed the socket", { timeout: 60000 }, async () => {
  await plays('demo');
});

test("go2rtc's player plays a gst-rtsp-server camera the same way", { timeout: 60000 }, async () => {
  await plays('cam');
});

test('unknown stream: go2rtc\'s words for each offer form, and the socket stays open for the next message', { timeout: 30000 }, async () => {
  const p = await new Go2rtcPlayer(app.port, 'nope').start();
  try {
    await waitFor('the offer answered', () => p.messages.some((m) => m.type === 'error' && String(m.value).startsWith('webrtc/offer')), 5000);
    const errors = checkErrors(p);
    assert.ok(errors.includes('webrtc/offer: stream not found'), JSON.stringify(errors));
    assert.equal(p.pcClosedByError, 'webrtc/offer: stream not found', 'the player gives up its peer, as with go2rtc');
    assert.equal(p.ws.readyState, WebSocket.OPEN);
  } finally {
    await p.close();
  }
  const sig = await new Signalling(app.port, 'nope').open();
  try {
    sig.send({ type: 'webrtc', value: { type: 'offer', sdp: 'v=0\r\n' } });
    assert.equal((await sig.next((m) => m.type === 'error')).value, 'webrtc: stream not found');
    sig.send({ type: 'hls', value: 'avc1.640029' });
    assert.equal((await sig.next((m) => m.type === 'error', 3000, 1)).value, 'hls: stream not found');
    sig.send({ type: 'mp4' });
    assert.equal((await sig.next((m) => m.type === 'error', 3000, 2)).value, 'mp4: not supported by camrelay yet');
    // A type that itself holds the text must not make go2rtc's player drop a peer.
    sig.send({ type: 'webrtc/offer2' });
    const e = String((await sig.next((m) => m.type === 'error', 3000, 3)).value);
    assert.ok(!e.includes('webrtc/offer'), e);
    assert.equal(sig.ws.readyState, WebSocket.OPEN);
  } finally {
    await sig.close();
  }
});
