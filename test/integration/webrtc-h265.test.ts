// Issue 16, deliverable 1: an H.265 camera to a WebRTC viewer whose offer lists H265, on each
// backend. Real parts: a gst-rtsp-server camera (x265enc), camrelay as a process, a werift peer
// offering H265 as Chrome 136+ does; what it receives is depacketized, checked (the first access
// unit a keyframe with VPS, SPS, PPS in front of an IRAP picture) and decoded by ffmpeg.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';
import { H265Depacketizer } from '../../src/rtp/h265-depacketizer.js';
import type { AccessUnit } from '../../src/rtp/nal-assembler.js';
import { parseRtp } from '../../src/rtp/packet.js';
import { h265NalType } from '../../src/codecs/h265.js';

const skipCamera = cameraCanRun('h265') ? false : 'gst-rtsp-server with x265enc not available';
const ndcLoads = await import('node-datachannel').then(
  () => true,
  () => false,
);
let camera: GstCamera | undefined;
let dir: string;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'camrelay-h265-'));
  if (!skipCamera) camera = await GstCamera.start({ pipeline: 'h265' });
});

after(async () => {
  await camera?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** camrelay on one backend, serving the camera as stream "hevc". */
async function camrelay(backend: 'werift' | 'node-datachannel'): Promise<CamrelayProcess> {
  const yaml = testConfig({ hevc: camera!.url() }).replace(/^ {2}backend: .*$/m, `  backend: ${backend}`);
  const app = await CamrelayProcess.start(yaml);
  const l = await app.waitLog((x) => x.msg === 'webrtc backend', 1000);
  assert.equal(l.backend, backend);
  return app;
}

/** The viewer's video RTP as access units, in arrival order (loopback: no reordering). */
function accessUnits(v: Viewer): AccessUnit[] {
  const aus: AccessUnit[] = [];
  const d = new H265Depacketizer((au) => aus.push(au));
  for (const p of v.video) d.push(parseRtp(p.serialize()));
  return aus;
}

const annexB = (aus: readonly AccessUnit[]): Buffer => Buffer.concat(aus.flatMap((au) => au.nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n])));

const isIrap = (t: number) => t >= 16 && t <= 21;

for (const backend of ['werift', 'node-datachannel'] as const) {
  const skip = skipCamera || (backend === 'node-datachannel' && !ndcLoads ? 'node-datachannel does not load here' : false);
  test(`${backend}: a viewer offering H264 and H265 gets the camera's H.265; the first access unit has VPS, SPS, PPS and an IRAP picture; ffmpeg decodes it; a late joiner offering only H265 starts on a keyframe with them too`, { timeout: 60_000, skip }, async () => {
    const app = await camrelay(backend);
    // H265 after H264, as Chrome 136+ lists them: the stream's codec decides, not the order.
    const viewer = new Viewer('audio/opus', { video: ['H264', 'H265'] });
    try {
      const offer = await viewer.offer();
      const h265Pt = Number(/a=rtpmap:(\d+) H265\/90000/.exec(offer)?.[1]);
      assert.ok(h265Pt > 0, 'the viewer offers H265');
      const r = await fetch(`${app.base}/api/webrtc?src=hevc`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer, signal: AbortSignal.timeout(15_000) });
      const answer = await r.text();
      assert.equal(r.status, 201, answer);
      const video = answer.split(/\r\n(?=m=)/).find((m) => m.startsWith('m=video'))!;
      assert.match(video, new RegExp(`^m=video \\d+ \\S+ ${h265Pt}\\r\\n`), 'the H265 payload type alone is answered');
      assert.match(video, /^a=sendonly$/m);
      assert.match(video, new RegExp(`^a=rtpmap:${h265Pt} H265/90000$`, 'm'));
      // x265 at 320x180 25 fps is Main at level 2 (level-id 60): lower than the offered 93, answered as the stream's.
      const fmtp = new RegExp(`^a=fmtp:${h265Pt} (.*)$`, 'm').exec(video)?.[1] ?? '';
      assert.deepEqual(Object.fromEntries(fmtp.split(';').map((kv) => kv.split('='))), { 'level-id': '60', 'profile-id': '1', 'tier-flag': '0', 'tx-mode': 'SRST' });
      await viewer.answer(answer);

      // Two seconds of 25 fps: enough for a decode to mean something.
      await waitFor('50 H.265 access units', () => accessUnits(viewer).length >= 50, 15_000);
      assert.ok(viewer.video.every((p) => p.header.payloadType === h265Pt), 'every packet on the answered payload type');
      // libwebrtc's H.265 packet buffer starts a stream only at a packet holding a VPS.
      assert.equal(h265NalType(viewer.video[0]!.payload), 32, 'the very first packet is the VPS');
      const aus = accessUnits(viewer);
      const first = aus[0]!;
      const types = first.nals.map(h265NalType);
      assert.deepEqual(types.slice(0, 3), [32, 33, 34], `VPS, SPS, PPS first (got ${types.join(',')})`);
      assert.ok(types.slice(3).some(isIrap), `then an IRAP picture (got ${types.join(',')})`);
      assert.ok(first.keyframe);
      // Every keyframe after carries them too: a viewer's decoder may have dropped anything before.
      for (const au of aus.filter((a) => a.keyframe)) assert.deepEqual(au.nals.map(h265NalType).slice(0, 3), [32, 33, 34]);

      const file = path.join(dir, `${backend}.hevc`);
      writeFileSync(file, annexB(aus));
      const decode = spawnSync('ffmpeg', ['-v', 'error', '-f', 'hevc', '-i', file, '-f', 'null', '-'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(decode.status, 0, decode.stderr);
      assert.equal(decode.stderr.trim(), '', 'decodes without errors');
      const probe = spawnSync('ffprobe', ['-v', 'error', '-f', 'hevc', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', file], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(probe.status, 0, probe.stderr);
      const s = (JSON.parse(probe.stdout) as { streams: { codec_name: string; width: number; height: number; nb_read_frames: string }[] }).streams[0]!;
      assert.deepEqual([s.codec_name, s.width, s.height], ['hevc', 320, 180]);
      assert.ok(Number(s.nb_read_frames) >= aus.length - 1, `decoded ${s.nb_read_frames} of ${aus.length} access units`);

      const streams = (await (await fetch(`${app.base}/api/streams?src=hevc`)).json()) as { consumers?: { medias?: string[] }[] };
      assert.ok(
        streams.consumers?.some((c) => c.medias?.some((m) => m === `video, sendonly, H265 pt ${h265Pt} profile-id=1 level-id=60`)),
        `the session says what it sends: ${JSON.stringify(streams.consumers)}`,
      );

      // A late joiner offering only H265: it starts on the stream's
      // cached keyframe (the session's replay), which carries VPS, SPS, PPS too.
      const late = new Viewer('audio/opus', { video: ['H265'] });
      try {
        await late.connect(app.base, 'hevc');
        await waitFor('10 access units to the late joiner', () => accessUnits(late).length >= 10, 15_000);
        const lateFirst = accessUnits(late)[0]!;
        assert.equal(h265NalType(late.video[0]!.payload), 32, 'its first packet is the VPS');
        assert.deepEqual(lateFirst.nals.map(h265NalType).slice(0, 3), [32, 33, 34]);
        assert.ok(lateFirst.keyframe);
      } finally {
        await late.close();
      }
    } finally {
      await viewer.close();
      assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
    }
  });
}
