// stream_defaults.transcode: auto. A viewer that cannot take the camera's codec gets a transcode
// of the stream the stream starts by itself: one for every such viewer, started by the first,
// stopped with the last, never started for viewers that take the camera's codec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Stream, type StreamSettings } from '../../src/core/stream.js';
import { SourceError } from '../../src/core/errors.js';
import { setRootLogger } from '../../src/core/log.js';
import type { Track } from '../../src/core/media.js';
import { autoTranscodes } from '../../src/sources/auto-transcodes.js';
import { sourceReads } from '../../src/sources/factory.js';
import { ScriptedSource, TestViewer, H264, OPUS } from '../helpers/fake-parts.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const H265: Track = { kind: 'video', codec: { name: 'H265', clockRate: 90000 } };
const PCMA: Track = { kind: 'audio', codec: { name: 'PCMA', clockRate: 8000, channels: 1 } };
const AAC: Track = { kind: 'audio', codec: { name: 'AAC', clockRate: 48000, channels: 2 } };

const BROWSER = { video: ['H264' as const], audio: ['OPUS' as const, 'PCMA' as const, 'PCMU' as const] };
const H265_BROWSER = { video: ['H264' as const, 'H265' as const], audio: ['OPUS' as const, 'PCMA' as const] };
const MP4 = { video: ['H264' as const, 'H265' as const], audio: ['AAC' as const] };

/** An H.265 + G.711 camera; each automatic transcode gives what its URL says. */
function h265Camera(over: Partial<StreamSettings> = {}, fail?: SourceError) {
  const made = new Map<string, ScriptedSource[]>();
  const make = (url: string) => {
    const tracks = url.includes('#video=h264') ? [H264] : url.endsWith('#audio=opus') ? [OPUS] : url.endsWith('#audio=aac') ? [AAC] : [H265, PCMA];
    const s = new ScriptedSource(url, { outcome: url.startsWith('ffmpeg:') && fail ? fail : 'ok', after: 2 }, tracks);
    made.set(url, [...(made.get(url) ?? []), s]);
    return s;
  };
  const settings: StreamSettings = { idleTimeout: 0, startTimeout: 2000, backoff: { base: 20, max: 80, stableAfter: 10_000 }, ...over };
  const stream = new Stream('cam', ['rtsp://cam'], settings, { make, reads: sourceReads, transcodes: autoTranscodes });
  const live = (url: string) => (made.get(url) ?? []).filter((s) => !s.closed);
  return { stream, made, live, cam: () => live('rtsp://cam'), h264: () => live('ffmpeg:cam#video=h264#hardware') };
}

test('two H.264-only viewers of an H.265 camera share one transcode; it stops when both leave, the H.265 viewer stays on the camera', { timeout: 5000 }, async () => {
  const { stream, made, cam, h264 } = h265Camera();
  const hevc = new TestViewer('hevc', H265_BROWSER);
  assert.deepEqual((await stream.attach(hevc)).map((t) => t.codec.name), ['H265', 'PCMA']);
  assert.equal(made.size, 1, 'an H.265 viewer starts no transcode');

  const a = new TestViewer('a', BROWSER);
  const b = new TestViewer('b', BROWSER);
  assert.deepEqual((await stream.attach(a)).map((t) => t.codec.name), ['H264', 'PCMA']);
  assert.deepEqual((await stream.attach(b)).map((t) => t.codec.name), ['H264', 'PCMA']);
  assert.equal(h264().length, 1, 'one transcode for both');
  assert.equal(made.get('ffmpeg:cam#video=h264#hardware')!.length, 1);
  assert.equal(cam().length, 1, 'one camera connection');
  assert.equal(stream.bindingOf(a).get('video')?.auto, true);
  assert.equal(stream.bindingOf(a).get('audio')?.auto, false, 'G.711 goes to the browser as it is');
  assert.equal(stream.bindingOf(hevc).get('video')?.url, 'rtsp://cam');

  h264()[0]!.emitFrame({ timestamp: 0, keyframe: true, data: [Buffer.from([0x65])] }, H264);
  cam()[0]!.emitFrame({ timestamp: 0, keyframe: true, data: [Buffer.from([0x26])] }, H265);
  await waitFor('frames delivered', () => a.frames.length === 1 && hevc.frames.length === 1, 2000);
  assert.equal(a.frames[0]!.track.codec.name, 'H264');
  assert.equal(hevc.frames[0]!.track.codec.name, 'H265', 'the H.265 viewer gets the camera, not the transcode');

  a.close();
  assert.equal(h264().length, 1, 'still used by b');
  b.close();
  assert.equal(h264().length, 0, 'the last H.264 viewer leaving stops the transcode at once');
  assert.equal(cam().length, 1, 'the camera stays for the H.265 viewer');

  const c = new TestViewer('c', BROWSER);
  assert.deepEqual((await stream.attach(c)).map((t) => t.codec.name), ['H264', 'PCMA'], 'a new H.264 viewer starts it again');
  assert.equal(made.get('ffmpeg:cam#video=h264#hardware')!.length, 2);
  hevc.close();
  c.close();
  assert.equal(cam().length + h264().length, 0);
  stream.close();
});

test('an MP4 viewer of a G.711 camera gets AAC from a transcode; a WebRTC viewer of an AAC camera gets Opus', { timeout: 5000 }, async () => {
  const { stream, live } = h265Camera();
  const mp4 = new TestViewer('mp4', MP4);
  assert.deepEqual((await stream.attach(mp4)).map((t) => t.codec.name), ['H265', 'AAC']);
  assert.equal(live('ffmpeg:cam#audio=aac').length, 1);
  assert.equal(live('ffmpeg:cam#audio=opus').length, 0, 'Opus is not what this viewer takes');
  assert.equal(live('ffmpeg:cam#video=h264#hardware').length, 0, 'it takes H.265: no video transcode');
  mp4.close();
  stream.close();

  const made: ScriptedSource[] = [];
  const aacCam = new Stream('cam', ['rtsp://cam'], { idleTimeout: 0, startTimeout: 2000, backoff: { base: 20, max: 80, stableAfter: 10_000 } }, {
    make: (url) => {
      const s = new ScriptedSource(url, { outcome: 'ok', after: 2 }, url.startsWith('ffmpeg:') ? (url.endsWith('opus') ? [OPUS] : url.endsWith('aac') ? [AAC] : [H264]) : [H264, AAC]);
      made.push(s);
      return s;
    },
    reads: sourceReads,
    transcodes: autoTranscodes,
  });
  const browser = new TestViewer('b', BROWSER);
  assert.deepEqual((await aacCam.attach(browser)).map((t) => t.codec.name), ['H264', 'OPUS']);
  assert.deepEqual(made.map((s) => s.url), ['rtsp://cam', 'ffmpeg:cam#audio=opus']);
  browser.close();
  aacCam.close();
});

test('transcode: never starts nothing: the viewer gets what there is', { timeout: 5000 }, async () => {
  const { stream, made } = h265Camera({ transcode: 'never' });
  const a = new TestViewer('a', BROWSER);
  assert.deepEqual((await stream.attach(a)).map((t) => t.codec.name), ['PCMA']);
  assert.deepEqual([...made.keys()], ['rtsp://cam']);
  a.close();
  stream.close();
});

test('a transcode that cannot start is tried once; the viewer goes on with what there is', { timeout: 5000 }, async () => {
  const { stream, made } = h265Camera({}, new SourceError('ffmpeg exited with code 1', false));
  const a = new TestViewer('a', BROWSER);
  assert.deepEqual((await stream.attach(a)).map((t) => t.codec.name), ['PCMA']);
  assert.equal(made.get('ffmpeg:cam#video=h264#hardware')!.length, 1, 'tried once, not in a loop');
  a.close();
  stream.close();
});

test('a publish-only stream (no sources) gets its transcodes after the publisher, not in its place', { timeout: 5000 }, async () => {
  const made: string[] = [];
  const stream = new Stream('pub', [], { idleTimeout: 0, startTimeout: 2000, backoff: { base: 20, max: 80, stableAfter: 10_000 } }, {
    make: (url) => {
      made.push(url);
      return new ScriptedSource(url, { outcome: 'ok', after: 2 }, [H264]);
    },
    reads: sourceReads,
    transcodes: autoTranscodes,
  });
  const a = new TestViewer('a', BROWSER);
  const tracks = stream.attach(a);
  stream.acceptPublisher(new ScriptedSource('publisher', { outcome: 'ok', after: 1 }, [H265, PCMA]));
  assert.deepEqual((await tracks).map((t) => t.codec.name), ['H264', 'PCMA']);
  assert.deepEqual(made, ['ffmpeg:pub#video=h264#hardware']);
  a.close();
  stream.close();
});
