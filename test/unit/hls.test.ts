// HLS with fMP4 segments: the playlist text (go2rtc's master, a live media playlist with a
// sliding window), segments cut at keyframes about 1 s or one GOP long, a new EXT-X-MAP when the
// init changes, and a session that ends when nothing asks for it (releasing the muxer and the
// stream's source) and the bounds on sessions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { Stream } from '../../src/core/stream.js';
import type { Track } from '../../src/core/media.js';
import { findParams, isKeyframe } from '../../src/codecs/h264.js';
import { box } from '../../src/formats/mp4/boxes.js';
import { NON_SYNC_SAMPLE, SYNC_SAMPLE, mdat, moof } from '../../src/formats/mp4/fragment.js';
import { initSegment } from '../../src/formats/mp4/init.js';
import { muxersOf } from '../../src/outputs/fmp4/muxers.js';
import { initTracks, Segmenter } from '../../src/outputs/hls/segmenter.js';
import { masterPlaylist, mediaPlaylist } from '../../src/outputs/hls/playlist.js';
import { HlsSessions } from '../../src/outputs/hls/sessions.js';
import { liveObjects } from '../../src/core/objects.js';
import { ScriptedSource } from '../helpers/fake-parts.js';
import { encodeH264Clip } from '../helpers/h264-clip.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const VIDEO = 1;
const AUDIO = 2;
const init = (width = 320) =>
  initSegment([
    { id: VIDEO, kind: 'video', timescale: 90000, entry: { box: box('avc1'), width, height: 240 } },
    { id: AUDIO, kind: 'audio', timescale: 48000, entry: { box: box('mp4a') } },
  ]);

let seq = 1;
/** One write of a viewer: a moof and its mdat, as Fmp4Viewer.send makes them. */
function sample(trackId: number, decodeTime: number, duration: number, key: boolean): Buffer[] {
  const m = mdat([Buffer.from([trackId, key ? 1 : 0])]);
  return [moof({ sequence: seq++, trackId, decodeTime, duration, size: m.length - 8, flags: key ? SYNC_SAMPLE : NON_SYNC_SAMPLE }), m];
}

/** 25 fps video with a keyframe every `gop` frames and AAC (1024 at 48 kHz) in between, for `seconds`. */
function feed(s: Segmenter, seconds: number, gop: number, from = 0): void {
  const frames = seconds * 25;
  let audio = 0;
  for (let i = from; i < from + frames; i++) {
    s.write(sample(VIDEO, i * 3600, 3600, i % gop === 0));
    while ((audio * 1024) / 48000 < (i + 1) / 25) s.write(sample(AUDIO, audio++ * 1024, 1024, true));
  }
}

test('initTracks reads each track id, timescale and handler from an init segment', { timeout: 5000 }, () => {
  assert.deepEqual([...initTracks(init()).entries()], [
    [VIDEO, { timescale: 90000, video: true }],
    [AUDIO, { timescale: 48000, video: false }],
  ]);
});

test('a 1 s GOP: one segment per GOP, each starting at its keyframe, 1.000 s long', { timeout: 5000 }, () => {
  const s = new Segmenter({ targetSeconds: 1, keep: 6 });
  // Audio before the first video keyframe is not a segment's start: it is left out.
  s.write([init()]);
  s.write(sample(AUDIO, 0, 1024, true));
  feed(s, 4, 25);
  assert.deepEqual(s.segments.map((x) => [x.seq, x.duration]), [[0, 1], [1, 1], [2, 1]], 'the 4th is still being filled');
  for (const seg of s.segments) {
    assert.equal(seg.parts[0]!.readUInt32BE(44), VIDEO, 'starts with a video sample');
    assert.equal(seg.parts[0]!.readUInt32BE(56), SYNC_SAMPLE, 'a keyframe');
    assert.equal(seg.bytes, seg.parts.reduce((n, p) => n + p.length, 0));
    assert.ok(seg.parts.some((p) => p.readUInt32BE(4) === 0x6d6f6f66 && p.readUInt32BE(44) === AUDIO), 'audio inside');
  }
});

test('a 0.4 s GOP is cut at the first keyframe after 1 s; a 3 s GOP makes 3 s segments', { timeout: 5000 }, () => {
  const short = new Segmenter({ targetSeconds: 1, keep: 6 });
  short.write([init()]);
  feed(short, 5, 10);
  assert.deepEqual(short.segments.map((x) => x.duration), [1.2, 1.2, 1.2, 1.2], 'keyframes at 0, 1.2, 2.4, 3.6, 4.8');
  const long = new Segmenter({ targetSeconds: 1, keep: 6 });
  long.write([init()]);
  feed(long, 10, 75);
  assert.deepEqual(long.segments.map((x) => x.duration), [3, 3, 3]);
  assert.equal(long.maxDuration, 3);
  assert.match(mediaPlaylist('x', long.segments, 4, long.maxDuration), /#EXT-X-TARGETDURATION:3\n/);
});

test('segments kept are bounded; the playlist lists the newest few with the sequence of its first', { timeout: 5000 }, () => {
  const s = new Segmenter({ targetSeconds: 1, keep: 6 });
  s.write([init()]);
  feed(s, 11, 25);
  assert.deepEqual(s.segments.map((x) => x.seq), [4, 5, 6, 7, 8, 9]);
  assert.equal(s.nextSeq, 10);
  assert.equal(
    mediaPlaylist('abc', s.segments, 4, s.maxDuration),
    [
      '#EXTM3U',
      '#EXT-X-VERSION:6',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-MEDIA-SEQUENCE:6',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-MAP:URI="init.mp4?id=abc"',
      ...[6, 7, 8, 9].flatMap((n) => ['#EXTINF:1.000,', `segment.m4s?id=abc&n=${n}`]),
      '',
    ].join('\n'),
  );
});

test('a new init (new parameter sets) ends the segment and the playlist names it in a second EXT-X-MAP', { timeout: 5000 }, () => {
  const s = new Segmenter({ targetSeconds: 1, keep: 6 });
  s.write([init(320)]);
  feed(s, 2.4, 25);
  s.write([init(640)]);
  // The muxer sends a new init right before the keyframe that needs it; frames before it are ignored.
  feed(s, 2, 25, 75);
  assert.deepEqual(s.segments.map((x) => [x.seq, x.initVersion, x.duration]), [[0, 0, 1], [1, 0, 1], [2, 0, 0.4], [3, 1, 1]]);
  assert.equal(s.init(0)!.length, init(320).length);
  assert.ok(s.init(1)!.equals(init(640)));
  const text = mediaPlaylist('abc', s.segments, 4, s.maxDuration);
  assert.match(text, /#EXT-X-MAP:URI="init.mp4\?id=abc"\n#EXTINF:1.000,\nsegment.m4s\?id=abc&n=0\n/);
  assert.match(text, /#EXTINF:0.400,\nsegment.m4s\?id=abc&n=2\n#EXT-X-MAP:URI="init.mp4\?id=abc&v=1"\n#EXTINF:1.000,\nsegment.m4s\?id=abc&n=3\n$/);
});

test('the master playlist is go2rtc\'s: BANDWIDTH, CODECS from the MSE type, the session\'s playlist', { timeout: 5000 }, () => {
  assert.equal(masterPlaylist('abc', 'video/mp4; codecs="avc1.640029,mp4a.40.2"'), '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=192000,CODECS="avc1.640029,mp4a.40.2"\nhls/playlist.m3u8?id=abc\n');
});

async function h264Frames(): Promise<{ track: Track; frames: { timestamp: number; keyframe: boolean; data: Buffer[] }[] }> {
  const clip = await encodeH264Clip({ frames: 50, gop: 25 });
  const p = findParams(clip.units[0]!);
  const track: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps: p.sps, pps: p.pps } };
  return { track, frames: clip.units.map((u, i) => ({ timestamp: i * 3600, keyframe: isKeyframe(u), data: u })) };
}

test('a session not asked for within its timeout ends, its muxer closes and the source stops; bounds refuse and count', { timeout: 30_000 }, async () => {
  const { track, frames } = await h264Frames();
  let made: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 5000, backoff: { base: 40, max: 320, stableAfter: 10_000 } }, (url) => (made = new ScriptedSource(url, { outcome: 'ok', after: 0 }, [track])));
  const table = new HlsSessions(2, 3, 300);
  const before = liveObjects()['HlsSession'] ?? 0;
  const a = table.open(stream, { video: ['H264'] }, {})!;
  const b = table.open(stream, { video: ['H264'] }, {})!;
  assert.ok(a && b);
  assert.equal(table.open(stream, { video: ['H264'] }, {}), undefined, 'a third of one stream is refused');
  assert.equal(table.refused, 1);
  assert.equal(muxersOf(stream).length, 1, 'both share one muxer');
  const src = await waitFor('the source', () => made);
  await waitFor('the answer', () => a.mime);
  for (const f of frames) src.emitFrame(f, track);
  assert.deepEqual(a.segmenter.segments.map((x) => x.duration), [1]);
  assert.equal(a.viewer.info().format_name, 'hls/fmp4');
  // b is kept alive by requests; a is not asked for anything and ends at its timeout.
  const keep = setInterval(() => b.touch(), 50);
  try {
    await waitFor('a timed out', () => a.closed, 2000, 10);
    assert.equal(b.closed, false);
    assert.equal(table.get(a.id), undefined);
    assert.equal(stream.consumers.length, 1, 'the muxer stays for b');
  } finally {
    clearInterval(keep);
  }
  await waitFor('b timed out too', () => b.closed, 2000, 10);
  assert.equal(muxersOf(stream).length, 0, 'the last session released the muxer');
  await waitFor('the source stopped', () => src.closed, 2000, 10);
  assert.equal(liveObjects()['HlsSession'] ?? 0, before);
  await stream.close();
});

test('a request waiting on a session (a long first GOP) keeps it past its timeout; it ends a timeout after that request', { timeout: 30_000 }, async () => {
  const { track } = await h264Frames();
  let made: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 5000, backoff: { base: 40, max: 320, stableAfter: 10_000 } }, (url) => (made = new ScriptedSource(url, { outcome: 'ok', after: 0 }, [track])));
  const table = new HlsSessions(2, 3, 200);
  const s = table.open(stream, { video: ['H264'] }, {})!;
  await waitFor('the source', () => made);
  await waitFor('the answer', () => s.mime);
  const t0 = Date.now();
  // No frame comes: the wait runs to its own end, 3 timeouts long.
  await s.wait(() => s.segmenter.segments.length > 0, 600);
  assert.ok(Date.now() - t0 >= 590);
  assert.equal(s.closed, false, 'not closed while the request waited');
  await waitFor('closed a timeout after the wait', () => s.closed, 1000, 10);
  assert.equal(muxersOf(stream).length, 0);
  await stream.close();
});
