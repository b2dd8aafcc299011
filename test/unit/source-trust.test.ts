// Sources that came through the API are checked again as network sources each time one starts
// (issue 12): an `ffmpeg:<name>` reference whose stream is gone fails with the reason, it never
// becomes a file or device read. Sources from config.yaml keep go2rtc's meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { SourceError } from '../../src/core/errors.js';
import { liveObjects } from '../../src/core/objects.js';
import { createSourceFactory } from '../../src/sources/factory.js';
import { FfmpegSource, type FfmpegContext } from '../../src/sources/ffmpeg.js';
import type { RtspServer } from '../../src/rtsp/server.js';

setRootLogger(pino({ level: 'silent' }));

const streams = new Set(['cam']);
const ctx: FfmpegContext = {
  bin: 'ffmpeg',
  grace: { quit: 100, term: 100 },
  // Nothing here starts a source: the server is never reached.
  rtsp: {} as RtspServer,
  args: {},
  isStream: (n) => streams.has(n),
};
const origin = new Map<string, 'api' | 'config'>([['fromApi', 'api'], ['fromConfig', 'config']]);
const make = createSourceFactory(ctx, {}, { fromApi: (name) => origin.get(name) === 'api' });

test('an API source reading a stream that no longer exists fails at start with the reason; no FfmpegSource is made', { timeout: 5000 }, () => {
  const before = liveObjects().FfmpegSource ?? 0;
  const ok = make('ffmpeg:cam#video=h264', 'fromApi');
  assert.ok(ok instanceof FfmpegSource && ok.spec.input.kind === 'stream', 'bound to the stream while it exists');
  ok.close();
  streams.delete('cam');
  try {
    for (const url of ['ffmpeg:cam#video=h264', 'ffmpeg:device?video=0#video=h264', 'ffmpeg:/etc/passwd#video=h264', 'ffmpeg:rtsp://h/x#video=h264#raw=-y', 'rtsp://h/${HOME}']) {
      assert.throws(
        () => make(url, 'fromApi'),
        (e: unknown) => e instanceof SourceError && e.permanent && /^source from the API refused at start: /.test(e.message),
        url,
      );
    }
    assert.equal(liveObjects().FfmpegSource ?? 0, before, 'nothing was made');
  } finally {
    streams.add('cam');
  }
});

test('config sources keep their meaning: a bare name that is no stream is a file', { timeout: 5000 }, () => {
  const s = make('ffmpeg:rec.ts#video=h264', 'fromConfig');
  assert.ok(s instanceof FfmpegSource);
  assert.deepEqual(s.spec.input, { kind: 'file', path: 'rec.ts' });
  s.close();
});
