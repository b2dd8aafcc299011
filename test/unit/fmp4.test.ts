// The fragmented-MP4 writer and the shared muxer, read back by ffprobe: every codec (H.264,
// H.265 as hvc1, AAC, Opus), one moof+mdat per frame, viewers sharing one muxer, the MSE codec
// list as go2rtc reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { Stream } from '../../src/core/stream.js';
import type { Track } from '../../src/core/media.js';
import { findParams, isKeyframe } from '../../src/codecs/h264.js';
import { findH265Params, isH265Keyframe } from '../../src/codecs/h265.js';
import { Fmp4Viewer, type Fmp4Sink } from '../../src/outputs/fmp4/viewer.js';
import { muxersOf, watchFmp4 } from '../../src/outputs/fmp4/muxers.js';
import { mimeType, parseMp4Query, parseMseCodecs } from '../../src/outputs/fmp4/codecs.js';
import { hlsMessage, mseMessage, parseMediaMessage } from '../../src/api/ws-messages.js';
import { parseMediaQuery } from '../../src/rtsp/play-url.js';
import { avc1CodecString } from '../../src/formats/mp4/codec-use.js';
import { h264PictureSize, h265SpsInfo } from '../../src/formats/mp4/sps.js';
import { ScriptedSource } from '../helpers/fake-parts.js';
import { encodeH264Clip } from '../helpers/h264-clip.js';
import { aacUnits, h265Units, opusPackets } from '../helpers/media-clips.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

class MemorySink implements Fmp4Sink {
  mime: string | undefined;
  chunks: Buffer[] = [];
  writes = 0;
  start(mime: string): void {
    this.mime = mime;
  }
  write(parts: readonly Buffer[]): void {
    this.writes++;
    this.chunks.push(...parts);
  }
  buffered(): number {
    return 0;
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

interface Probe {
  streams: { codec_type: string; codec_name: string; codec_tag_string: string; width?: number; height?: number; nb_read_frames?: string; sample_rate?: string }[];
}

function ffprobe(bytes: Buffer): Probe {
  const dir = mkdtempSync(path.join(tmpdir(), 'fmp4-'));
  try {
    const file = path.join(dir, 'out.mp4');
    writeFileSync(file, bytes);
    const r = spawnSync('/usr/bin/ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A stream whose source has `tracks`, and the frames it then emits (in time order). */
function streamOf(tracks: Track[]): { stream: Stream; source: () => ScriptedSource | undefined } {
  let made: ScriptedSource | undefined;
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 5000, backoff: { base: 40, max: 320, stableAfter: 10_000 } }, (url) => {
    made = new ScriptedSource(url, { outcome: 'ok', after: 0 }, tracks);
    return made;
  });
  return { stream, source: () => made };
}

/** Emits every frame in time order (each list's timestamps in its own clock). */
function emitAll(src: ScriptedSource, lists: { track: Track; frames: { timestamp: number; keyframe: boolean; data: Buffer[] }[] }[]): void {
  // Each list's own clock starts anywhere (as RTP's do): times are compared from each one's first.
  const all = lists.flatMap((l) => l.frames.map((f) => ({ f, track: l.track, at: (f.timestamp - l.frames[0]!.timestamp) / l.track.codec.clockRate })));
  all.sort((a, b) => a.at - b.at);
  for (const { f, track } of all) src.emitFrame(f, track);
}

async function muxed(tracks: Track[], lists: Parameters<typeof emitAll>[1], codecs: string): Promise<{ sink: MemorySink; probe: Probe }> {
  const { stream, source } = streamOf(tracks);
  const sink = new MemorySink();
  const viewer = new Fmp4Viewer('mp4', sink);
  watchFmp4(stream, parseMseCodecs(codecs), viewer);
  const src = await waitFor('the source', () => source());
  await waitFor('the answer', () => sink.mime);
  emitAll(src, lists);
  const total = lists.reduce((n, l) => n + l.frames.length, 0);
  await waitFor('every fragment', () => sink.writes >= total + 1, 10_000);
  viewer.close();
  await stream.close();
  return { sink, probe: ffprobe(sink.bytes) };
}

async function h264Video(): Promise<{ track: Track; frames: { timestamp: number; keyframe: boolean; data: Buffer[] }[] }> {
  const clip = await encodeH264Clip({ frames: 50, gop: 25 });
  const p = findParams(clip.units[0]!);
  const track: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps: p.sps, pps: p.pps } };
  return { track, frames: clip.units.map((u, i) => ({ timestamp: 1_000_000 + i * 3600, keyframe: isKeyframe(u), data: u })) };
}

async function aacAudio(): Promise<{ track: Track; frames: { timestamp: number; keyframe: boolean; data: Buffer[] }[] }> {
  const { units, config } = await aacUnits(2);
  const track: Track = { kind: 'audio', codec: { name: 'AAC', clockRate: 48000, channels: 1, fmtp: `streamtype=5;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=${config}` } };
  return { track, frames: units.map((u, i) => ({ timestamp: 5_000 + i * 1024, keyframe: true, data: [u] })) };
}

test('H.264 + AAC: ffprobe reads every frame, tag avc1 and mp4a; one moof+mdat per frame', { timeout: 60_000 }, async () => {
  const video = await h264Video();
  const audio = await aacAudio();
  const { sink, probe } = await muxed([video.track, audio.track], [video, audio], 'avc1.640029,mp4a.40.2');
  assert.equal(sink.mime, 'video/mp4; codecs="avc1.42C00D,mp4a.40.2"'.replace('42C00D', avc1CodecString(video.track).slice(5)));
  const v = probe.streams.find((s) => s.codec_type === 'video')!;
  const a = probe.streams.find((s) => s.codec_type === 'audio')!;
  assert.equal(v.codec_name, 'h264');
  assert.equal(v.codec_tag_string, 'avc1');
  assert.equal([v.width, v.height].join('x'), '320x180');
  assert.equal(Number(v.nb_read_frames), 50);
  assert.equal(a.codec_name, 'aac');
  assert.equal(a.codec_tag_string, 'mp4a');
  assert.equal(a.sample_rate, '48000');
  assert.ok(Number(a.nb_read_frames) >= audio.frames.length - 2, `audio frames ${a.nb_read_frames} of ${audio.frames.length}`);
  const text = sink.bytes.toString('latin1');
  assert.equal(text.split('moof').length - 1, 50 + Number(a.nb_read_frames));
  assert.ok(text.startsWith('\0\0\0\x1cftypiso5'), 'ftyp iso5 first');
});

test('H.265: codec hevc, tag hvc1, every frame decodes', { timeout: 60_000 }, async () => {
  const units = await h265Units(50, 25);
  const p = findH265Params(units[0]!);
  const track: Track = { kind: 'video', codec: { name: 'H265', clockRate: 90000 }, params: p };
  const frames = units.map((u, i) => ({ timestamp: i * 3600, keyframe: isH265Keyframe(u), data: u }));
  const { sink, probe } = await muxed([track], [{ track, frames }], 'hvc1.1.6.L153.B0');
  assert.equal(sink.mime, 'video/mp4; codecs="hvc1.1.6.L153.B0"');
  const v = probe.streams[0]!;
  assert.equal(v.codec_name, 'hevc');
  assert.equal(v.codec_tag_string, 'hvc1');
  assert.equal([v.width, v.height].join('x'), '320x180');
  assert.equal(Number(v.nb_read_frames), 50);
  assert.deepEqual({ ...h265SpsInfo(p.sps!), profileTierLevel: undefined }, { width: 320, height: 180, profileTierLevel: undefined, chromaFormat: 1, bitDepthLuma: 8, bitDepthChroma: 8, maxSubLayers: 1, temporalIdNested: 1 });
});

test('H.264 + Opus: tag Opus, every packet', { timeout: 60_000 }, async () => {
  const video = await h264Video();
  const packets = await opusPackets(2);
  const track: Track = { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2 } };
  const frames = packets.map((d, i) => ({ timestamp: i * 960, keyframe: true, data: [d] }));
  const { sink, probe } = await muxed([video.track, track], [video, { track, frames }], 'avc1.640029,opus');
  assert.match(sink.mime!, /^video\/mp4; codecs="avc1\.[0-9A-F]{6},opus"$/);
  const a = probe.streams.find((s) => s.codec_type === 'audio')!;
  assert.equal(a.codec_name, 'opus');
  assert.equal(a.codec_tag_string, 'Opus');
  assert.ok(Number(a.nb_read_frames) >= frames.length - 2, `opus frames ${a.nb_read_frames} of ${frames.length}`);
});

test('viewers of one codec set share one muxer; a late one starts at the cached keyframe with its own timeline near 0', { timeout: 60_000 }, async () => {
  const video = await h264Video();
  const { stream, source } = streamOf([video.track]);
  const first = new MemorySink();
  const v1 = new Fmp4Viewer('mse', first);
  watchFmp4(stream, parseMseCodecs('avc1.640029'), v1);
  const src = await waitFor('the source', () => source());
  await waitFor('the answer', () => first.mime);
  // Up to the middle of the second GOP (frames 0..29: keyframes at 0 and 25).
  for (const f of video.frames.slice(0, 30)) src.emitFrame(f, video.track);
  await waitFor('30 fragments', () => first.writes >= 31);
  const late = new MemorySink();
  const v2 = new Fmp4Viewer('mse', late);
  watchFmp4(stream, parseMseCodecs('avc1.640029'), v2);
  assert.equal(muxersOf(stream).length, 1, 'one muxer for both');
  assert.equal(stream.consumers.length, 1, 'one consumer attached to the stream');
  // At once: init + the 5 frames since the keyframe at 25.
  assert.equal(late.writes, 1 + 5);
  for (const f of video.frames.slice(30)) src.emitFrame(f, video.track);
  await waitFor('the rest', () => late.writes >= 1 + 25);
  const probe = ffprobe(late.bytes);
  assert.equal(Number(probe.streams[0]!.nb_read_frames), 25);
  // The late viewer's first tfdt (moof + 8 mfhd + 8 traf + 28 tfhd + 12 tfdt header) is 0.
  const firstMoof = late.chunks[1]!;
  assert.equal(firstMoof.subarray(4, 8).toString('latin1'), 'moof');
  assert.equal(firstMoof.readBigUInt64BE(8 + 16 + 8 + 28 + 12), 0n);
  assert.equal(firstMoof.readUInt32BE(8 + 12), 1, 'its own sequence numbers from 1');
  // The mdat bytes are the very same Buffer for both viewers.
  assert.equal(first.chunks.at(-1), late.chunks.at(-1));
  v1.close();
  assert.equal(muxersOf(stream).length, 1);
  v2.close();
  assert.equal(muxersOf(stream).length, 0, 'the last viewer closes the muxer');
  assert.equal(stream.consumers.length, 0);
  await stream.close();
});

test('a viewer that does not read is dropped as slow_consumer', { timeout: 60_000 }, async () => {
  const video = await h264Video();
  const { stream, source } = streamOf([video.track]);
  const sink = new MemorySink();
  let queued = 0;
  sink.buffered = () => (queued += 10_000);
  const viewer = new Fmp4Viewer('mse', sink, { maxBuffered: 100_000 });
  const closed = new Promise<Error | undefined>((resolve) => viewer.once('close', resolve));
  watchFmp4(stream, parseMseCodecs(''), viewer);
  const src = await waitFor('the source', () => source());
  for (const f of video.frames) src.emitFrame(f, video.track);
  const reason = (await closed) as Error & { code?: string };
  assert.equal(reason.code, 'slow_consumer');
  await stream.close();
});

test('MSE codec list as go2rtc reads it: exact tokens, defaults when nothing is known', () => {
  assert.deepEqual(parseMseCodecs('avc1.640029,avc1.64002A,hvc1.1.6.L153.B0,mp4a.40.2,mp4a.40.5,flac,opus'), { video: ['H264', 'H265'], audio: ['AAC', 'OPUS'] });
  assert.deepEqual(parseMseCodecs('avc1.64002A,mp4a.40.5'), { video: ['H264', 'H265'], audio: ['AAC'] });
  assert.deepEqual(parseMseCodecs(''), { video: ['H264', 'H265'], audio: ['AAC'] });
  assert.deepEqual(parseMseCodecs('opus'), { audio: ['OPUS'] });
  const h264 = (sps: number[]): Track => ({ kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps: Buffer.from([0x67, ...sps]) } });
  assert.equal(avc1CodecString(h264([0x42, 0xe0, 30])), 'avc1.42E01E');
  assert.equal(avc1CodecString(h264([0x64, 0x00, 51])), 'avc1.640029');
  assert.equal(avc1CodecString(h264([0x4d, 0x40, 31])), 'avc1.4D401F');
  assert.equal(avc1CodecString({ kind: 'video', codec: { name: 'H264', clockRate: 90000 } }), 'avc1.640029');
  assert.equal(mimeType([h264([0x64, 0, 40]), { kind: 'audio', codec: { name: 'AAC', clockRate: 48000 } }]), 'video/mp4; codecs="avc1.640028,mp4a.40.2"');
  // 1920x1080 with cropping from a real x264 SPS (High, 8 bottom rows cropped).
  const sps = Buffer.from('6764002aacd940780227e5c04400000303040000030ca3c60c9658', 'hex');
  assert.deepEqual(h264PictureSize(sps), { width: 1920, height: 1080 });
});

test('the socket\'s mse, hls and mjpeg messages; stream.mp4\'s query as go2rtc reads it', () => {
  assert.deepEqual(parseMediaMessage('{"type":"mse","value":"avc1.640029,opus"}'), { type: 'mse', codecs: 'avc1.640029,opus' });
  assert.deepEqual(parseMediaMessage('{"type":"mse"}'), { type: 'mse', codecs: '' });
  assert.deepEqual(parseMediaMessage('{"type":"mjpeg"}'), { type: 'mjpeg' });
  assert.deepEqual(parseMediaMessage('{"type":"hls","value":"avc1.640029,mp4a.40.2"}'), { type: 'hls', codecs: 'avc1.640029,mp4a.40.2' });
  assert.deepEqual(parseMediaMessage('{"type":"hls"}'), { type: 'hls', codecs: '' });
  assert.equal(hlsMessage('#EXTM3U\n'), '{"type":"hls","value":"#EXTM3U\\n"}');
  assert.equal(parseMediaMessage('nope'), undefined);
  assert.equal(mseMessage('video/mp4; codecs="avc1.640029"'), '{"type":"mse","value":"video/mp4; codecs=\\"avc1.640029\\""}');
  const q = (s: string) => parseMp4Query(new URLSearchParams(s), parseMediaQuery);
  assert.deepEqual(q('src=x'), { video: ['H264', 'H265'], audio: ['AAC'] });
  assert.deepEqual(q('src=x&mp4'), { video: ['H264', 'H265'], audio: ['AAC'] });
  assert.deepEqual(q('src=x&mp4=all'), { video: ['H264', 'H265'], audio: ['AAC', 'OPUS'] });
  assert.deepEqual(q('src=x&video=h264'), { video: ['H264'] });
  assert.deepEqual(q('src=x&video&audio=pcma'), { video: ['H264', 'H265'], audio: [] });
});
