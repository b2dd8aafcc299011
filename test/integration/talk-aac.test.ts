// Issue 18: talking to a camera whose ONVIF backchannel takes AAC (MPEG4-GENERIC AAC-hbr, 16 kHz
// mono). gst-rtsp-server's ONVIF camera describes it and decodes what it gets with faad; a werift
// viewer sends a 1 kHz Opus tone through camrelay (a real process), which decodes it and has one
// ffmpeg per talker encode it to AAC. The camera must hear the tone; exactly one ffmpeg runs while
// the viewer talks, none a second after it left, and everything is back to the baseline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { assertBaseline, baseline, type Baseline } from '../helpers/fault-resources.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { opusTone } from '../helpers/ogg-opus.js';
import { childrenNamed } from '../helpers/proc-children.js';
import { assertTone } from '../helpers/tone.js';
import { Talker } from '../helpers/werift-talker.js';
import { waitFor } from '../helpers/wait.js';

const skip = cameraCanRun('h264', 'aac') ? false : 'gst-rtsp-server with its ONVIF classes, rtpmp4gdepay and faad not available';
let camera: GstCamera;
let app: CamrelayProcess;
let base: Baseline;
const TONE = skip ? [] : opusTone({ frequency: 1000, seconds: 2 }).packets;

interface StreamsView {
  producers: { url: string; backchannel?: { codec: string; packets: number; bytes: number } }[];
  consumers: { id: string; talking?: boolean; medias?: string[] }[];
}
const view = async (): Promise<StreamsView> => (await app.json<Record<string, StreamsView>>('/api/streams')).body.door!;
const ffmpegs = (): number[] => childrenNamed(app.pid, ['ffmpeg']);

/** CPU ticks (user + system) and resident kB (all, and its own: not the shared libraries) of a process, from /proc. */
function usage(pid: number): { ticks: number; rssKb: number; anonKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { ticks: Number(f[11]) + Number(f[12]), rssKb: kb('VmRSS'), anonKb: kb('RssAnon') };
}

before(async () => {
  if (skip) return;
  camera = await GstCamera.start({ pipeline: 'h264', backchannel: 'aac' });
  app = await CamrelayProcess.start(testConfig({ door: `${camera.url()}#backchannel=1` }));
  base = await baseline(app);
});

after(async () => {
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
});

test('a viewer talks to an AAC camera: one ffmpeg encodes its Opus tone to AAC-hbr RTP, the camera decodes the 1 kHz tone; the ffmpeg is gone within 1 s of the talker leaving', { skip, timeout: 60000 }, async () => {
  const talker = new Talker({ watch: true });
  let pid: number | undefined;
  try {
    assert.deepEqual(ffmpegs(), [], 'no ffmpeg before anyone talks');
    await talker.connect(app.base, 'door');
    await waitFor('talker connected', () => talker.connected, 10000);
    const v = await view();
    assert.equal(v.producers[0]?.backchannel?.codec, 'audio:AAC/16000');
    const me = v.consumers.find((c) => c.talking);
    assert.ok(me?.medias?.some((m) => m.startsWith('audio, recvonly, audio:OPUS/48000') && m.includes("camera's audio:AAC/16000")), JSON.stringify(me?.medias));
    const running = ffmpegs();
    assert.equal(running.length, 1, `one ffmpeg while talking: ${running.join(' ')}`);
    pid = running[0]!;

    const from = camera.backchannelAudio().length;
    const u0 = usage(pid);
    const t0 = Date.now();
    await talker.speak(TONE);
    const u1 = usage(pid);
    const secs = (Date.now() - t0) / 1000;
    // 2 s at 16 kHz is 31 access units; ffmpeg holds its last ones while the talker is silent.
    const ev = await camera.waitBackchannel(25, 10000, from + 24 * 1024);
    assert.equal(ev.pt, 97, 'the SDP\'s payload type');
    assert.match(ev.caps ?? '', /MPEG4-GENERIC/);
    assert.equal(ffmpegs().length, 1, 'still one ffmpeg');
    const b = camera.backchannelAudio().subarray(from);
    const heard = new Int16Array(b.buffer, b.byteOffset, Math.floor(b.length / 2));
    const report = assertTone(heard, { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000], skip: 800 });
    const cpu = (u1.ticks - u0.ticks) / 100 / secs;
    console.log(`# talk AAC: camera got ${camera.backchannelPackets()} AAC packets, ${heard.length} samples decoded; ffmpeg ${(cpu * 100).toFixed(1)}% of a core over ${secs.toFixed(1)} s, ${u1.rssKb} kB resident (${u1.anonKb} kB its own); ${JSON.stringify(report)}`);

    const back = (await view()).producers[0]?.backchannel;
    assert.ok(back && back.packets >= 25, JSON.stringify(back));
    const m = await scrape(app);
    assert.equal(metric(m, 'camrelay_talkers'), 1);
    assert.ok(metric(m, 'camrelay_talk_packets_total', { stream: 'door' }) >= 25);

    assert.equal(await talker.hangUp(app.base), 200);
    const left = Date.now();
    await waitFor('no ffmpeg', () => ffmpegs().length === 0, 1000, 5);
    console.log(`# talk AAC: ffmpeg gone ${Date.now() - left} ms after the talker left`);
  } finally {
    await talker.close();
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the AAC talker');
});

test('a second talk to the AAC camera starts a fresh ffmpeg and is heard too; nothing is left after it', { skip, timeout: 60000 }, async () => {
  const talker = new Talker({ watch: false });
  try {
    await talker.connect(app.base, 'door');
    await waitFor('talker connected', () => talker.connected, 10000);
    assert.equal(ffmpegs().length, 1);
    const from = camera.backchannelAudio().length;
    const packets = camera.backchannelPackets();
    await talker.speak(TONE.slice(0, 50));
    await camera.waitBackchannel(packets + 10, 10000, from + 10 * 1024);
    const b = camera.backchannelAudio().subarray(from);
    assertTone(new Int16Array(b.buffer, b.byteOffset, Math.floor(b.length / 2)), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000], skip: 800 });
    assert.equal(await talker.hangUp(app.base), 200);
    await waitFor('no ffmpeg', () => ffmpegs().length === 0, 1000, 5);
  } finally {
    await talker.close();
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline(app, base, 'after the second AAC talker');
});
