// GStreamer's rtspclientsink as an external publisher (found while building the server fuzz's
// corpus): it sends PAUSE before its TEARDOWN, which camrelay answered 455, and GStreamer then
// failed with "Could not read from resource" (exit 1) after publishing everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { startMiniRelay } from '../helpers/rtsp-mini-relay.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

test('GStreamer rtspclientsink publishes into a sources: [] stream: a viewer gets its frames, and it ends cleanly (PAUSE, TEARDOWN)', { timeout: 40_000 }, async () => {
  const relay = await startMiniRelay({ pub: [] });
  const viewer = new RawRtspPlayer(relay.server.port);
  try {
    const child = spawn('/usr/bin/gst-launch-1.0', [
      '-q', 'videotestsrc', 'is-live=true', 'num-buffers=100', '!', 'video/x-raw,width=160,height=120,framerate=25/1',
      '!', 'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', 'key-int-max=10', '!', 'rtspclientsink', `location=${relay.url('pub')}`, 'protocols=tcp',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    for (const s of [child.stdout, child.stderr]) s.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // The viewer waits for the publisher (a sources: [] stream is fed by publishers only).
    await viewer.play(relay.url('pub'));
    await waitFor('frames from GStreamer', () => viewer.frames(0) >= 10, 15_000);
    const code = await exited;
    clearTimeout(t);
    assert.equal(code, 0, out);
  } finally {
    viewer.destroy();
    await relay.close();
  }
});
