// Issue 12, item 8: with the shipped defaults (no RTSP auth) anyone on the LAN could ANNOUNCE to a
// configured camera stream and replace the camera for every viewer. Now publishing into a stream
// with configured sources needs RTSP credentials or rtsp.allow_publish: true; `sources: []`
// streams (made to be published into) take publishers as before. Real camrelay, real ffmpeg.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { rawExchange } from '../helpers/rtsp-raw.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { waitFor } from '../helpers/wait.js';

// The camera: a test pattern at 320x240. Publishers send 160x120, so a viewer can tell them apart.
const CAMERA = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';

interface Publisher {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

function publish(url: string): Publisher {
  const child = spawn('/usr/bin/ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-g', '25', '-bf', '0',
    '-f', 'rtsp', '-rtsp_transport', 'tcp', url,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  return { child, exited: new Promise((r) => child.once('exit', (code) => r(code))), stderr: () => err };
}

async function exitWithin(p: Publisher, ms: number): Promise<number | null | 'running'> {
  return Promise.race([p.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms))]);
}

const SDP = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=x', 't=0 0', 'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=control:streamid=0', ''].join('\r\n');
const announce = (url: string, extra = '') => `ANNOUNCE ${url} RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n${extra}Content-Length: ${SDP.length}\r\n\r\n${SDP}`;

/** An external publisher (not the camera's own ffmpeg) announced into `name`. */
const externalAnnounced = (name: string) => (l: { msg?: unknown; publish?: unknown }) => l.msg === 'publisher announced' && l.publish === `publisher of ${name}`;

test('no RTSP auth: an ANNOUNCE to a configured camera stream is refused 403 and its viewer keeps the camera; a sources: [] stream takes the publisher', { timeout: 60_000 }, async () => {
  const app = await CamrelayProcess.start(`${testConfig({ cam: CAMERA })}  push:\n    sources: []\n    start_timeout: 20s\n`);
  const viewer = new RawRtspPlayer(app.rtspPort);
  const pubs: Publisher[] = [];
  try {
    await viewer.play(`rtsp://127.0.0.1:${app.rtspPort}/cam`);
    await waitFor('camera frames', () => viewer.frames(0) >= 10, 15_000);
    const ssrc = viewer.track(0).at(-1)!.ssrc;

    const raw = await rawExchange(app.rtspPort, announce(`rtsp://127.0.0.1:${app.rtspPort}/cam`), 5000);
    assert.equal(raw.responses[0]?.status, 403);
    assert.match(raw.responses[0]!.reason, /^Forbidden: the stream has configured sources: publishing into it needs rtsp.username\/password or rtsp.allow_publish: true$/);
    assert.equal(raw.closed, true);

    const intruder = publish(`rtsp://127.0.0.1:${app.rtspPort}/cam`);
    pubs.push(intruder);
    const code = await exitWithin(intruder, 10_000);
    assert.notEqual(code, 'running', 'the refused ffmpeg gives up');
    assert.notEqual(code, 0);
    assert.match(intruder.stderr(), /403/);
    // The viewer still gets the camera: more frames, same source (SSRC), nothing restarted.
    const before = viewer.frames(0);
    await waitFor('more camera frames', () => viewer.frames(0) >= before + 25, 10_000);
    assert.equal(viewer.track(0).at(-1)!.ssrc, ssrc);
    assert.equal(app.logs.filter(externalAnnounced('cam')).length, 0);
    const m = await scrape(app);
    assert.equal(metric(m, 'camrelay_rtsp_refused_total', { reason: 'publish_forbidden' }), 2);

    // A stream made for publishers takes one.
    pubs.push(publish(`rtsp://127.0.0.1:${app.rtspPort}/push`));
    await app.waitLog(externalAnnounced('push'), 10_000);
    const pushViewer = new RawRtspPlayer(app.rtspPort);
    try {
      await pushViewer.play(`rtsp://127.0.0.1:${app.rtspPort}/push`);
      await waitFor('publisher frames', () => pushViewer.frames(0) >= 10, 15_000);
    } finally {
      pushViewer.destroy();
    }
  } finally {
    viewer.destroy();
    for (const p of pubs) p.child.kill('SIGKILL');
    await app.stop();
  }
});

test('rtsp.allow_publish: true lets a publisher replace a configured stream without credentials', { timeout: 60_000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ cam: CAMERA }, '', 'allow_publish: true'));
  const pub = publish(`rtsp://127.0.0.1:${app.rtspPort}/cam`);
  try {
    await app.waitLog(externalAnnounced('cam'), 10_000);
    assert.equal(await exitWithin(pub, 500), 'running');
  } finally {
    pub.child.kill('SIGKILL');
    await app.stop();
  }
});

test('with rtsp.username/password: a publisher with the credentials may publish into a configured stream, one without gets 401', { timeout: 60_000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ cam: CAMERA }, '', 'username: admin, password: s3cret'));
  const pubs: Publisher[] = [];
  try {
    const anonymous = publish(`rtsp://127.0.0.1:${app.rtspPort}/cam`);
    pubs.push(anonymous);
    assert.notEqual(await exitWithin(anonymous, 10_000), 'running');
    assert.match(anonymous.stderr(), /401/);
    const user = publish(`rtsp://admin:s3cret@127.0.0.1:${app.rtspPort}/cam`);
    pubs.push(user);
    await app.waitLog(externalAnnounced('cam'), 10_000);
    assert.equal(await exitWithin(user, 500), 'running');
  } finally {
    for (const p of pubs) p.child.kill('SIGKILL');
    await app.stop();
  }
});
