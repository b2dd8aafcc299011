// Issue 13 item 7: Home Assistant's camera orientation sources, PUT through the API exactly as its
// go2rtc integration writes them, play as a transcode of the right size (quarter turns swap width
// and height); any other #raw= is still refused with 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';

/** How yarl (aiohttp) writes a query value: form encoding, a space as '+'. */
const form = (v: string): string => encodeURIComponent(v).replace(/%20/g, '+');

function probeSize(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0:s=x', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`ffprobe ${url} exited ${code}: ${err.slice(0, 300)}`))));
  });
}

// homeassistant/components/go2rtc: _update_stream_source, and what each orientation must give for a 320x180 camera.
const ORIENTATIONS: [name: string, suffix: string, size: string][] = [
  ['mirror', '#raw=-vf hflip', '320x180'],
  ['flip', '#raw=-vf vflip', '320x180'],
  ['rotate_left_and_flip', '#raw=-vf transpose=2,vflip', '180x320'],
  ['rotate_right_and_flip', '#raw=-vf transpose=1,vflip', '180x320'],
  ['rotate_right', '#rotate=90', '180x320'],
  ['rotate_180', '#rotate=180', '320x180'],
  ['rotate_left', '#rotate=-90', '180x320'],
  ['rotate_270', '#rotate=270', '180x320'],
];

test('Home Assistant orientation sources PUT through the API play at the turned size; other #raw= get 400', { timeout: 180000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ camera: 'ffmpeg:virtual?video=testsrc2&size=320x180&rate=15&clock=0#video=h264' }));
  try {
    const camera = `rtsp://127.0.0.1:${app.rtspPort}/camera`;
    for (const [name, suffix] of ORIENTATIONS) {
      const src = `ffmpeg:${camera}#video=h264#audio=copy${suffix}`;
      const put = await app.json<{ error?: string } | undefined>(`/api/streams?name=${name}&src=${form(src)}&src=${form(`ffmpeg:${name}#audio=opus#query=log_level=debug`)}`, { method: 'PUT' });
      assert.equal(put.status, 200, `${name}: ${put.body?.error ?? ''}`);
    }
    // The same source with the space as %20 (another client's encoding) is the same source.
    const pct = await app.json(`/api/streams?name=mirror_pct&src=${encodeURIComponent(`ffmpeg:${camera}#video=h264#audio=copy#raw=-vf hflip`)}`, { method: 'PUT' });
    assert.equal(pct.status, 200);
    const listed = (await app.json<Record<string, { producers: { url: string }[] }>>('/api/streams')).body;
    assert.equal(listed.mirror!.producers[0]!.url, `ffmpeg:${camera}#video=h264#audio=copy#raw=-vf hflip`, 'the space arrives as a space');

    for (const [name, , size] of ORIENTATIONS) {
      assert.equal(await probeSize(`rtsp://127.0.0.1:${app.rtspPort}/${name}`), size, name);
    }

    const before = readFileSync(app.configFile, 'utf8');
    for (const raw of ['-vf hflip -f null', '-i /etc/passwd', '-vf movie=/etc/passwd', '-vf hflip,vflip,transpose=1']) {
      const r = await app.json<{ error: string }>(`/api/streams?name=bad&src=${form(`ffmpeg:${camera}#video=h264#audio=copy#raw=${raw}`)}`, { method: 'PUT' });
      assert.equal(r.status, 400, raw);
      assert.match(r.body.error, /#raw= is accepted only from config\.yaml/, raw);
    }
    assert.equal(readFileSync(app.configFile, 'utf8'), before, 'a refused PUT writes nothing');
  } finally {
    await app.stop();
  }
});
