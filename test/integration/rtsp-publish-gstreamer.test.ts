// GStreamer's rtspclientsink as an external publisher (found while building the server fuzz's
// corpus): it sends PAUSE before its TEARDOWN, which camrelay answered 455, and GStreamer then
// failed with "Could not read from resource" (exit 1) after publishing everything. The server's
// own log says what it answered: GStreamer can also fail by itself at the same moment
// (test/helpers/gst-publisher.ts), and only that is forgiven, when the server refused nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startMiniRelay } from '../helpers/rtsp-mini-relay.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from '../helpers/captured-log.js';
import { isGstPauseFlushRace } from '../helpers/gst-publisher.js';

const log = captureLog('debug');

test('GStreamer rtspclientsink publishes into a sources: [] stream: a viewer gets its frames, and what it sends as it ends (PAUSE, TEARDOWN) is answered, and its connection goes', { timeout: 40_000 }, async () => {
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
    // What GStreamer sent last may still be on its way when it exits.
    await waitFor('the publisher connection gone', () => relay.server.connectionCount === 1, 5000);
    const requests = log.filter((l) => l.msg === 'request').map((l) => l.method);
    for (const m of ['ANNOUNCE', 'RECORD']) assert.ok(requests.includes(m), `GStreamer sent ${m} (server saw ${requests.join(' ')})`);
    // PAUSE and TEARDOWN do not always leave GStreamer before it exits; what arrives must not be refused.
    const refused = log.filter((l) => l.msg === 'request refused' || l.msg === 'closing connection' || l.msg === 'request handler failed');
    assert.deepEqual(refused, [], 'the server refused nothing and closed nothing on its own');
    if (code !== 0) assert.ok(isGstPauseFlushRace(out), `exit ${code} is not GStreamer's own PAUSE/CLOSE race: ${out}`);
  } finally {
    viewer.destroy();
    await relay.close();
  }
});
