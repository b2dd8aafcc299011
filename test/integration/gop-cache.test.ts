// Issue 7, instant start: a viewer joining a live stream gets the current GOP at once instead of
// waiting for the next keyframe. The source here is a file with a keyframe every 10 s, copied
// (camrelay's own transcodes force one a second), so a late joiner that got video quickly while
// the first viewer saw no new keyframe can only have been served from the cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RtpPacket } from 'werift';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { waitFor } from '../helpers/wait.js';

let app: CamrelayProcess;
const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-gop-'));

before(async () => {
  const clip = path.join(dir, 'gop10s.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '30',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-g', '250', '-keyint_min', '250', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', clip]);
  const demo = `ffmpeg:${clip}#video=copy`;
  // testConfig writes each value as JSON, which YAML reads as this stream's object form.
  const nocache = JSON.parse(JSON.stringify({ sources: [demo], gop_cache: { max_bytes: 0 } })) as unknown as string;
  // A viewer waiting for a keyframe receives nothing and so sends no RTCP: the test's usual 2 s
  // disconnect timeout would end it before the control case's 10 s GOP comes round.
  app = await CamrelayProcess.start(testConfig({ demo, nocache }).replace('disconnect: 2s', 'disconnect: 15s'));
});

after(async () => {
  await app.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Timestamps of the IDR pictures among H.264 RTP packets (single NAL, STAP-A or FU-A start). */
function idrTimestamps(video: readonly RtpPacket[]): Set<number> {
  const out = new Set<number>();
  for (const p of video) if (nalTypes(p.payload).includes(5)) out.add(p.header.timestamp);
  return out;
}

function nalTypes(payload: Buffer): number[] {
  const t = payload[0]! & 0x1f;
  if (t === 28) return [payload[1]! & 0x1f];
  if (t !== 24) return [t];
  const out: number[] = [];
  for (let i = 1; i + 2 < payload.length; i += 2 + payload.readUInt16BE(i)) out.push(payload[i + 2]! & 0x1f);
  return out;
}

const frameCount = (video: readonly RtpPacket[]) => new Set(video.map((p) => p.header.timestamp)).size;

/** A first viewer a second or more into the GOP (and so up to 9 s from the next keyframe). */
async function firstViewer(stream: string): Promise<Viewer> {
  const a = new Viewer();
  await a.connect(app.base, stream, 'sdp');
  // Without the cache even the first viewer may wait for the second keyframe (it connects after
  // the source's first one went by): up to 10 s here.
  await waitFor(`the first viewer of ${stream} has a keyframe and 25 frames after it`, () => a.sawKeyframeWithParams() && frameCount(a.video) >= 26, 40_000).catch(async (e: Error) => {
    throw new Error(`${e.message}; it has ${a.video.length} video packets; ${JSON.stringify((await app.json('/api/streams')).body)}`);
  });
  return a;
}

test('a WebRTC viewer joining a live stream starts from the cached GOP: keyframe first, no waiting for the next', { timeout: 60_000 }, async () => {
  const a = await firstViewer('demo');
  const b = new Viewer();
  try {
    await b.connect(app.base, 'demo', 'sdp');
    await waitFor('the late viewer has a whole keyframe', () => b.sawKeyframeWithParams(), 5000);
    const idrA = idrTimestamps(a.video);
    assert.equal(idrA.size, 1, 'the first viewer saw no new keyframe meanwhile: the late one got the cached one');
    const first = b.video[0]!;
    assert.ok(nalTypes(first.payload).some((t) => t === 7 || t === 5), `the late viewer's first packet is the keyframe (NAL types ${nalTypes(first.payload).join(',')})`);
    await waitFor('the late viewer continues with live frames', () => frameCount(b.video) >= 40, 5000);
  } finally {
    await b.hangUp(app.base).catch(() => b.close());
    await a.hangUp(app.base).catch(() => a.close());
  }
});

test('an RTSP player joining a live stream gets the cached keyframe right after PLAY', { timeout: 60_000 }, async () => {
  const a = await firstViewer('demo');
  const p = new RawRtspPlayer(app.rtspPort);
  try {
    await p.play(`rtsp://127.0.0.1:${app.rtspPort}/demo`);
    await waitFor('the player has 10 frames', () => p.frames(0) >= 10, 5000);
    assert.equal(idrTimestamps(a.video).size, 1, 'no new keyframe was produced meanwhile');
    const firstType = p.track(0)[0]!.firstByte & 0x1f;
    assert.ok([5, 7, 24].includes(firstType), `first packet starts a keyframe (NAL type ${firstType})`);
  } finally {
    p.destroy();
    await a.hangUp(app.base).catch(() => a.close());
  }
});

test('with gop_cache.max_bytes 0 a late viewer waits for the next keyframe', { timeout: 90_000 }, async () => {
  const a = await firstViewer('nocache');
  const b = new Viewer();
  try {
    await b.connect(app.base, 'nocache', 'sdp');
    // Frames flow to the first viewer; the late one gets no video until a new keyframe.
    const before = frameCount(a.video);
    await waitFor('the first viewer gets 25 more frames', () => frameCount(a.video) >= before + 25, 10_000);
    if (idrTimestamps(a.video).size === 1) assert.equal(b.video.length, 0, 'no video for the late viewer before the next keyframe');
  } finally {
    await b.hangUp(app.base).catch(() => b.close());
    await a.hangUp(app.base).catch(() => a.close());
  }
});
