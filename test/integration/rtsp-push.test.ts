// Issue 3: external publishers (here ffmpeg -f rtsp, as OBS or a pushing camera would) publish to
// a configured stream name; viewers wait for them, survive a publisher leaving, and a new
// publisher replaces the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';

function publisher(url: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn('/usr/bin/ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-g', '25', '-bf', '0',
    '-f', 'rtsp', '-rtsp_transport', 'tcp', url,
  ], { stdio: ['pipe', 'ignore', 'ignore'] });
  return { child, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

test('an external publisher feeds a configured stream; viewers wait for it, outlive it, and a new one replaces the old', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(`${testConfig({})}  push:\n    sources: []\n    start_timeout: 20s\n`);
  const pubs: ReturnType<typeof publisher>[] = [];
  const viewer = new Viewer();
  try {
    const url = `rtsp://127.0.0.1:${app.rtspPort}/push`;
    // The viewer comes first and waits for a publisher.
    const connecting = viewer.connect(app.base, 'push');
    await app.waitLog((l) => l.stream === 'push' && l.msg === 'stream state' && l.state === 'starting', 5000);
    pubs.push(publisher(url));
    await connecting;
    await waitFor('video from the publisher', () => viewer.sawKeyframeWithParams() && viewer.video.length > 30, 10000);

    // A second publisher replaces the first, which is disconnected (its ffmpeg exits).
    let before = viewer.video.length;
    pubs.push(publisher(url));
    const firstExit = await Promise.race([pubs[0]!.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 8000))]);
    assert.notEqual(firstExit, 'still running', 'the replaced publisher is disconnected');
    await waitFor('video from the second publisher', () => viewer.video.length > before + 30, 10000);

    // The publisher leaves: the viewer stays, and continues when a new one comes.
    pubs[1]!.child.kill('SIGKILL');
    await app.waitLog((l) => l.stream === 'push' && l.msg === 'publisher left', 5000);
    assert.equal((await app.json<{ consumers: unknown[] }>('/api/streams?src=push')).body.consumers.length, 1);
    before = viewer.video.length;
    pubs.push(publisher(url));
    await waitFor('video again', () => viewer.video.length > before + 30, 10000);

    // Nobody watches: the publisher is not ours to stop; it keeps its connection.
    await viewer.close();
    await waitFor('viewer dropped', async () => (await app.json<{ consumers: unknown[] }>('/api/streams?src=push')).body.consumers.length === 0, 5000);
    assert.equal(pubs[2]!.child.exitCode, null, 'the publisher is still connected');

    // An unknown name is refused.
    const stranger = publisher(`rtsp://127.0.0.1:${app.rtspPort}/nope`);
    pubs.push(stranger);
    assert.notEqual(await stranger.exited, 0);
  } finally {
    for (const p of pubs) p.child.kill('SIGKILL');
    await viewer.close();
    assert.equal(await app.stop(), 0);
  }
});
