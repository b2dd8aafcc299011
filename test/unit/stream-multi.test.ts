// A stream with several sources: later sources start only for kinds the earlier ones lack, and a
// transcode reading the stream back (an internal consumer) never keeps it alive nor starts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Stream } from '../../src/core/stream.js';
import { SourceError } from '../../src/core/errors.js';
import { setRootLogger } from '../../src/core/log.js';
import type { Track } from '../../src/core/media.js';
import { sourceReads } from '../../src/sources/factory.js';
import { ScriptedSource, TestViewer, H264, OPUS } from '../helpers/fake-parts.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const AAC: Track = { kind: 'audio', codec: { name: 'AAC', clockRate: 48000, channels: 2 } };

/** cam: H.264 + AAC (browsers take no AAC); ffmpeg:cam#audio=opus: Opus. */
function homeAssistantStyle(opts: { secondary?: 'ok' | SourceError } = {}) {
  const made = new Map<string, ScriptedSource[]>();
  const make = (url: string) => {
    const isTranscode = url.startsWith('ffmpeg:');
    const s = new ScriptedSource(url, { outcome: isTranscode ? (opts.secondary ?? 'ok') : 'ok', after: 2 }, isTranscode ? [OPUS] : [H264, AAC]);
    made.set(url, [...(made.get(url) ?? []), s]);
    return s;
  };
  // The factory's knowledge of the URL syntax tells the stream which source is its own transcode.
  const stream = new Stream('cam', ['rtsp://cam', 'ffmpeg:cam#audio=opus'], { idleTimeout: 0, startTimeout: 2000, backoff: { base: 20, max: 80, stableAfter: 10_000 } }, { make, reads: sourceReads });
  return { stream, made, cam: () => made.get('rtsp://cam') ?? [], transcode: () => made.get('ffmpeg:cam#audio=opus') ?? [] };
}

test('video from the camera and Opus from the second source, which starts only when wanted', { timeout: 5000 }, async () => {
  const { stream, cam, transcode } = homeAssistantStyle();
  const videoOnly = new TestViewer('v', { video: ['H264'] });
  assert.deepEqual((await stream.attach(videoOnly)).map((t) => t.codec.name), ['H264']);
  assert.equal(transcode().length, 0, 'nobody wants audio yet: no transcode');
  assert.deepEqual(cam()[0]!.want?.audio, ['OPUS', 'AAC', 'PCMA', 'PCMU'], 'the camera sets up its audio for the transcode that reads it');

  const browser = new TestViewer('b', { video: ['H264'], audio: ['OPUS', 'PCMA'] });
  const tracks = await stream.attach(browser);
  assert.deepEqual(tracks.map((t) => t.codec.name), ['H264', 'OPUS']);
  assert.equal(cam().length, 1, 'one camera connection');
  assert.equal(transcode().length, 1);
  assert.deepEqual(transcode()[0]!.want, { audio: ['OPUS', 'PCMA'] }, 'the transcode is asked only for the missing kind');

  cam()[0]!.emitFrame({ timestamp: 0, keyframe: true, data: [Buffer.from([0x65])] });
  cam()[0]!.emitFrame({ timestamp: 0, keyframe: false, data: [Buffer.from([0xaa])] }, AAC);
  transcode()[0]!.emitFrame({ timestamp: 0, keyframe: false, data: [Buffer.from([0xfc])] }, OPUS);
  assert.deepEqual(browser.frames.map((f) => f.track.codec.name), ['H264', 'OPUS'], 'AAC never reaches a viewer that did not take it');

  videoOnly.close();
  browser.close();
  assert.ok(cam()[0]!.closed && transcode()[0]!.closed, 'the last viewer leaving stops both');
  stream.close();
});

test('a transcode that cannot start leaves the viewer with video only', { timeout: 5000 }, async () => {
  const { stream, transcode } = homeAssistantStyle({ secondary: new SourceError('ffmpeg exited with code 1', false) });
  const browser = new TestViewer('b', { video: ['H264'], audio: ['OPUS'] });
  assert.deepEqual((await stream.attach(browser)).map((t) => t.codec.name), ['H264']);
  assert.equal(transcode().length, 1, 'tried once, not in a loop');
  browser.close();
  stream.close();
});

test('a transcode that dies while used comes back on its own; video keeps flowing', { timeout: 5000 }, async () => {
  const { stream, cam, transcode } = homeAssistantStyle();
  const browser = new TestViewer('b', { video: ['H264'], audio: ['OPUS'] });
  await stream.attach(browser);
  transcode()[0]!.fail('ffmpeg killed by SIGKILL');
  assert.equal(stream.state, 'live');
  await waitFor('transcode restarted', () => transcode().length === 2 && !transcode()[1]!.closed && stream.tracks.some((t) => t.codec.name === 'OPUS'), 2000);
  transcode()[1]!.emitFrame({ timestamp: 0, keyframe: false, data: [Buffer.from([0xfc])] }, OPUS);
  assert.equal(browser.frames.filter((f) => f.track.codec.name === 'OPUS').length, 1);
  assert.equal(cam().length, 1, 'the camera was not touched');
  browser.close();
  stream.close();
});

test('after the camera reconnects, the transcode the viewer used comes back too', { timeout: 5000 }, async () => {
  const { stream, cam, transcode } = homeAssistantStyle();
  const browser = new TestViewer('b', { video: ['H264'], audio: ['OPUS'] });
  await stream.attach(browser);
  cam()[0]!.fail();
  await waitFor('both back', () => cam().length === 2 && transcode().length === 2 && stream.state === 'live' && stream.tracks.length === 3, 2000);
  assert.equal(browser.closed, false);
  browser.close();
  stream.close();
});

class Internal extends TestViewer {
  readonly internal = true;
}

test('an internal consumer (our own transcode reading the stream) cannot start it nor keep it alive', { timeout: 5000 }, async () => {
  const { stream, cam } = homeAssistantStyle();
  const reader = new Internal('ffmpeg-reader', { video: ['H264'], audio: ['AAC', 'OPUS'] });
  await assert.rejects(stream.attach(reader), /not running/);
  assert.equal(cam().length, 0, 'it did not start the camera');

  const browser = new TestViewer('b', { video: ['H264'] });
  await stream.attach(browser);
  const tracks = await stream.attach(reader);
  assert.deepEqual(tracks.map((t) => t.codec.name), ['H264', 'AAC'], 'takes the camera tracks, never its own output');
  browser.close();
  assert.equal(cam()[0]!.closed, true, 'only the internal reader left: the stream stops');
  assert.equal(reader.closed, true, 'and the reader is closed with it');
  stream.close();
});
