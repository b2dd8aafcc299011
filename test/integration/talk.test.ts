// Issue 18: talking to a camera. gst-rtsp-server's ONVIF server (RTSPOnvifServer) is the camera,
// with a PCMA backchannel; a werift viewer sends a 1 kHz Opus tone as its microphone through
// camrelay (a real process); what the camera decodes from its backchannel must be that tone. One
// talker at a time; the camera connection ends within 500 ms once nobody watches or talks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { assertBaseline, baseline, connectionsTo, type Baseline } from '../helpers/fault-resources.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { opusTone } from '../helpers/ogg-opus.js';
import { assertTone } from '../helpers/tone.js';
import { HttpError, Viewer } from '../helpers/werift-viewer.js';
import { Talker } from '../helpers/werift-talker.js';
import { waitFor } from '../helpers/wait.js';
import { g711Encode } from '../../src/codecs/g711.js';

const skip = cameraCanRun('h264', 'pcma') ? false : 'gst-rtsp-server with its ONVIF classes and alawdec not available';
let camera: GstCamera;
let app: CamrelayProcess;
let base: Baseline;
/** Two seconds of a 1 kHz tone, as a browser's microphone sends it (Opus, 20 ms packets). */
const TONE = skip ? [] : opusTone({ frequency: 1000, seconds: 2 }).packets;

interface StreamsView {
  producers: { url: string; backchannel?: { codec: string; packets: number } }[];
  consumers: { id: string; talking?: boolean; not_talking?: string; medias?: string[] }[];
}
const view = async (): Promise<StreamsView> => (await app.json<Record<string, StreamsView>>('/api/streams')).body.door!;

before(async () => {
  if (skip) return;
  camera = await GstCamera.start({ pipeline: 'h264', backchannel: 'pcma' });
  app = await CamrelayProcess.start(testConfig({ door: `${camera.url()}#backchannel=1`, plain: camera.url() }));
  base = await baseline(app);
});

after(async () => {
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
});

/** 20 ms A-law packets of a 1 kHz tone at 8 kHz: what a browser sends when PCMA is answered. */
function pcmaTone(seconds: number): Buffer[] {
  const pcm = Int16Array.from({ length: seconds * 8000 }, (_, i) => Math.round(12000 * Math.sin((2 * Math.PI * 1000 * i) / 8000)));
  const law = g711Encode('PCMA', pcm);
  return Array.from({ length: seconds * 50 }, (_, i) => Buffer.from(law.subarray(i * 160, (i + 1) * 160)));
}

/** The camera's decoded backchannel audio from byte `from` on, as samples. */
function heard(from: number): Int16Array {
  const b = camera.backchannelAudio().subarray(from);
  return new Int16Array(b.buffer, b.byteOffset, Math.floor(b.length / 2));
}

test('a viewer talks (go2rtc player offer: sendonly mic + recvonly video/audio): the camera gets PCMA RTP on its backchannel, and it decodes to the 1 kHz tone', { skip, timeout: 60000 }, async () => {
  const talker = new Talker({ watch: true });
  try {
    await talker.connect(app.base, 'door');
    await waitFor('talker connected', () => talker.connected, 10000);
    const describe = camera.requests('DESCRIBE');
    assert.equal(describe.at(-1)?.require, 'www.onvif.org/ver20/backchannel', 'camrelay asked for the backchannel');
    const v = await view();
    assert.equal(v.producers[0]?.backchannel?.codec, 'audio:PCMA/8000');
    const me = v.consumers.find((c) => c.talking);
    assert.ok(me, `a talking consumer in /api/streams: ${JSON.stringify(v.consumers)}`);
    assert.ok(me.medias?.some((m) => m.startsWith('audio, recvonly, audio:OPUS/48000') && m.includes("camera's audio:PCMA/8000")), JSON.stringify(me.medias));

    const from = camera.backchannelAudio().length;
    await talker.speak(TONE);
    // 100 packets of 20 ms: the camera decodes 16000 samples (32000 bytes); most must arrive.
    const ev = await camera.waitBackchannel(80, 10000, from + 80 * 320);
    assert.equal(ev.pt, 8, 'PCMA RTP');
    const report = assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000] });
    console.log(`# talk: camera got ${camera.backchannelPackets()} PCMA packets; ${JSON.stringify(report)}`);
    await waitFor('video at the talker too', () => talker.video.length > 0, 10000);

    const m = await scrape(app);
    assert.ok(metric(m, 'camrelay_talk_packets_total', { stream: 'door' }) >= 80);
    assert.equal(metric(m, 'camrelay_talkers'), 1);
    assert.equal(await talker.hangUp(app.base), 200);
    await waitFor('no talker', async () => metric(await scrape(app), 'camrelay_talkers') === 0, 5000);
  } finally {
    await talker.close();
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the talker');
});

test('one talker per camera: a second gets 409 naming why while the first talks, and talks once the first left; the camera connection ends within 500 ms of the last leaving', { skip, timeout: 60000 }, async () => {
  const first = new Talker({ watch: false });
  const second = new Talker({ watch: false });
  const third = new Talker({ watch: false });
  try {
    await first.connect(app.base, 'door');
    await waitFor('first connected', () => first.connected, 10000);
    const refused = await second.connect(app.base, 'door').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof HttpError, `second talker refused: ${String(refused)}`);
    assert.equal(refused.status, 409);
    assert.match(refused.body, /someone else is talking \(one talker per camera\)/);
    assert.equal(camera.openConnections(), 1, 'the talker alone holds the camera');
    await first.speak(TONE.slice(0, 10));
    assert.equal(await first.hangUp(app.base), 200);

    await third.connect(app.base, 'door');
    await waitFor('third connected', () => third.connected, 10000);
    const from = camera.backchannelAudio().length;
    await third.speak(TONE);
    await camera.waitBackchannel(1, 10000, from + 60 * 320);
    assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000] });

    const t0 = Date.now();
    assert.equal(await third.hangUp(app.base), 200);
    await waitFor('camera connection closed', () => camera.openConnections() === 0, 2000, 5);
    const took = Date.now() - t0;
    console.log(`# talk: camera connection closed ${took} ms after the last talker left`);
    assert.ok(took < 500, `camera connection closed after ${took} ms`);
  } finally {
    await Promise.all([first.close(), second.close(), third.close()]);
  }
  await assertBaseline(app, base, 'after the talkers');
});

test('talking to a stream without a backchannel: a talker alone gets 400 naming #backchannel=1; a watching viewer with a mic just watches', { skip, timeout: 60000 }, async () => {
  const alone = new Talker({ watch: false });
  const watcher = new Talker({ watch: true });
  try {
    const e = await alone.connect(app.base, 'plain').then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(e instanceof HttpError && e.status === 400, String(e));
    assert.match(e.body, /has no backchannel.*#backchannel=1/);
    await watcher.connect(app.base, 'plain');
    await waitFor('video at the watcher', () => watcher.video.length > 0, 10000);
    const c = (await app.json<Record<string, StreamsView>>('/api/streams')).body.plain!.consumers[0];
    assert.match(c?.not_talking ?? '', /has no backchannel/);
    assert.equal(c?.talking, undefined);
  } finally {
    await Promise.all([alone.close(), watcher.close()]);
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the plain stream');
});

test("over /api/ws as go2rtc's player talks: the tone reaches the camera; a second talker gets the error message; closing the socket leaves the talk on (the session outlives it) until DELETE", { skip, timeout: 60000 }, async () => {
  const first = new Talker({ watch: true });
  const second = new Talker({ watch: false });
  try {
    const sig = await first.connectWs(app.port, 'door');
    await waitFor('talker connected', () => first.connected, 10000);
    const err = await second.connectWs(app.port, 'door').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.match(String(err), /someone else is talking \(one talker per camera\)/);
    const from = camera.backchannelAudio().length;
    await first.speak(TONE.slice(0, 50));
    await camera.waitBackchannel(1, 10000, from + 40 * 320);
    assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000] });
    const id = (await view()).consumers.find((c) => c.talking)?.id;
    assert.ok(id, 'talking');
    await sig.close();
    assert.equal((await view()).consumers.find((c) => c.talking)?.id, id, 'still talking after the socket closed');
    assert.equal((await app.json(`/api/webrtc?id=${id}`, { method: 'DELETE' })).status, 200);
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the WebSocket talker');
});

test('a microphone flooding packets: beyond 400 a second they are dropped before the decoder, counted in /api/streams; the camera gets no more than that', { skip, timeout: 60000 }, async () => {
  const talker = new Talker({ watch: false });
  try {
    await talker.connect(app.base, 'door');
    await waitFor('talker connected', () => talker.connected, 10000);
    const t0 = Date.now();
    const packets = Array.from({ length: 30 }, () => TONE).flat();
    await talker.flood(packets);
    const medias = async () => (await view()).consumers.find((c) => c.talking)?.medias?.at(-1) ?? '';
    const line = await waitFor('drops counted', async () => {
      const m = await medias();
      return /(\d+) dropped as too fast/.test(m) ? m : undefined;
    }, 10000, 100);
    const secs = (Date.now() - t0) / 1000;
    const into = Number(/, (\d+) packets in/.exec(line)?.[1]);
    const dropped = Number(/(\d+) dropped as too fast/.exec(line)?.[1]);
    console.log(`# talk flood: ${packets.length} packets in ${secs.toFixed(2)} s; ${into} decoded, ${dropped} dropped`);
    assert.ok(into <= 400 * (Math.ceil(secs) + 1), `${into} packets reached the decoder in ${secs} s`);
    assert.ok(dropped > 0);
    assert.equal(await talker.hangUp(app.base), 200);
  } finally {
    await talker.close();
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the flood');
});

test('a watcher whose audio line is only sendrecv takes the talk when it speaks, not before; a talker alone who started the camera leaves its tracks to the viewers who come next', { skip, timeout: 60000 }, async () => {
  const talker = new Talker({ watch: false });
  const watcher = new Talker({ watch: true, sendrecv: true });
  const viewer = new Viewer();
  try {
    // The talker alone starts the camera; a plain viewer after it still gets video.
    await talker.connect(app.base, 'door');
    await waitFor('talker connected', () => talker.connected, 10000);
    await viewer.connect(app.base, 'door', 'sdp');
    await waitFor('video at the viewer who came after the talker', () => viewer.sawKeyframeWithParams(), 10000);

    // A sendrecv watcher connects while the talker holds the talk: it watches, holds nothing.
    const busyBefore = metric(await scrape(app), 'camrelay_api_refused_total', { reason: 'talk_busy' });
    await watcher.connect(app.base, 'door');
    await waitFor('video at the sendrecv watcher', () => watcher.video.length > 0, 10000);
    let v = await view();
    assert.equal(v.consumers.filter((c) => c.talking).length, 1, 'still one talker');
    assert.equal(metric(await scrape(app), 'camrelay_api_refused_total', { reason: 'talk_busy' }), busyBefore, 'a silent sendrecv line is no refused talker');
    // It speaks while the other talks: refused, and /api/streams says why.
    await watcher.speak(TONE.slice(0, 5));
    await waitFor('not_talking said', async () => (await view()).consumers.some((c) => /someone else is talking/.test(c.not_talking ?? '')), 5000);
    assert.equal(await talker.hangUp(app.base), 200);
    // Now it speaks and takes the talk.
    const from = camera.backchannelAudio().length;
    await watcher.speak(TONE);
    await camera.waitBackchannel(1, 10000, from + 60 * 320);
    assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000] });
    v = await view();
    // This camera has no audio of its own: the shared line only receives.
    assert.ok(v.consumers.find((c) => c.talking)?.medias?.some((m) => m.startsWith('audio, recvonly, audio:OPUS/48000')), JSON.stringify(v.consumers));
    assert.equal(await watcher.hangUp(app.base), 200);
    assert.equal(await viewer.hangUp(app.base), 200);
  } finally {
    await Promise.all([talker.close(), watcher.close(), viewer.close()]);
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the sendrecv watcher');
});

test('a microphone offering PCMA to a PCMA camera gets PCMA answered and passed through (no conversion); the talk survives a camera reboot', { skip, timeout: 90000 }, async () => {
  const talker = new Talker({ watch: false, mic: ['opus', 'PCMA'] });
  try {
    await talker.connect(app.base, 'door');
    await waitFor('talker connected', () => talker.connected, 10000);
    assert.equal(talker.micCodec, 'PCMA', 'the camera\'s codec answered for the microphone');
    const c = (await view()).consumers.find((x) => x.talking);
    assert.ok(c?.medias?.some((m) => m.startsWith('audio, recvonly, audio:PCMA/8000')), JSON.stringify(c?.medias));
    let from = camera.backchannelAudio().length;
    await talker.speak(pcmaTone(1), 160);
    await camera.waitBackchannel(1, 10000, from + 40 * 320);
    assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000] });

    // The camera reboots: camrelay reconnects (the talker keeps the stream), and the talk goes on to the new session.
    const before = camera.connections();
    await camera.restart();
    await waitFor('camrelay back on the camera with a backchannel', async () => camera.connections() > before && (await view()).producers[0]?.backchannel !== undefined, 20000, 100);
    from = camera.backchannelAudio().length;
    await talker.speak(pcmaTone(1), 160);
    await camera.waitBackchannel(1, 10000, from + 40 * 320);
    assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000] });
    assert.equal(await talker.hangUp(app.base), 200);
  } finally {
    await talker.close();
  }
  // The camera process that was killed never reported its connection closed: ask our side.
  await waitFor('camera connection gone', () => connectionsTo(app.pid, camera.port).length === 0, 5000);
  await assertBaseline(app, base, 'after the reboot');
});
