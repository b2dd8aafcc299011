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

type Gray = { w: number; h: number; px: number[] };

/** One decoded frame of an RTSP URL as 8-bit gray, at its own size (PGM says the size). */
function grabGray(url: string): Promise<Gray> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', url, '-frames:v', '1', '-vf', 'format=gray', '-c:v', 'pgm', '-f', 'image2pipe', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.once('exit', (code) => {
      const b = Buffer.concat(out);
      const m = /^P5\s+(\d+)\s+(\d+)\s+255\s/.exec(b.subarray(0, 32).toString('latin1'));
      if (code !== 0 || !m) return reject(new Error(`grabbing ${url}: exit ${code}, ${b.length} bytes`));
      const w = Number(m[1]);
      const h = Number(m[2]);
      resolve({ w, h, px: [...b.subarray(m[0].length, m[0].length + w * h)] });
    });
  });
}

/** Block averages: `g` made `w` x `h` (each block 20 x 20 pixels here). */
function shrink(g: Gray, w: number, h: number): Gray {
  const bw = Math.floor(g.w / w);
  const bh = Math.floor(g.h / h);
  return make(w, h, (x, y) => {
    let sum = 0;
    for (let j = 0; j < bh; j++) for (let i = 0; i < bw; i++) sum += at(g, x * bw + i, y * bh + j);
    return sum / (bw * bh);
  });
}

/** The picture turned as ffmpeg's filters do it, on a tiny gray image. */
const at = (g: Gray, x: number, y: number) => g.px[y * g.w + x]!;
const make = (w: number, h: number, f: (x: number, y: number) => number): Gray => ({ w, h, px: Array.from({ length: w * h }, (_, i) => f(i % w, Math.floor(i / w))) });
const TURNS: Record<string, (g: Gray) => Gray> = {
  none: (g) => g,
  hflip: (g) => make(g.w, g.h, (x, y) => at(g, g.w - 1 - x, y)),
  vflip: (g) => make(g.w, g.h, (x, y) => at(g, x, g.h - 1 - y)),
  'transpose=1,transpose=1': (g) => make(g.w, g.h, (x, y) => at(g, g.w - 1 - x, g.h - 1 - y)),
  'transpose=1': (g) => make(g.h, g.w, (x, y) => at(g, y, g.h - 1 - x)),
  'transpose=2': (g) => make(g.h, g.w, (x, y) => at(g, g.w - 1 - y, x)),
  'transpose=1,vflip': (g) => TURNS.vflip!(TURNS['transpose=1']!(g)),
  'transpose=2,vflip': (g) => TURNS.vflip!(TURNS['transpose=2']!(g)),
};
const distance = (a: Gray, b: Gray) => a.px.reduce((sum, v, i) => sum + Math.abs(v - b.px[i]!), 0) / a.px.length;

// homeassistant/components/go2rtc: _update_stream_source, and what each orientation must give for a 320x180 camera.
const ORIENTATIONS: [name: string, suffix: string, size: string, turn: string][] = [
  ['mirror', '#raw=-vf hflip', '320x180', 'hflip'],
  ['flip', '#raw=-vf vflip', '320x180', 'vflip'],
  ['rotate_left_and_flip', '#raw=-vf transpose=2,vflip', '180x320', 'transpose=2,vflip'],
  ['rotate_right_and_flip', '#raw=-vf transpose=1,vflip', '180x320', 'transpose=1,vflip'],
  ['rotate_right', '#rotate=90', '180x320', 'transpose=1'],
  ['rotate_180', '#rotate=180', '320x180', 'transpose=1,transpose=1'],
  ['rotate_left', '#rotate=-90', '180x320', 'transpose=2'],
  ['rotate_270', '#rotate=270', '180x320', 'transpose=2'],
];

test('Home Assistant orientation sources PUT through the API play at the turned size; other #raw= get 400', { timeout: 180000 }, async () => {
  // SMPTE bars: a still picture that is neither left-right nor top-bottom symmetric.
  const app = await CamrelayProcess.start(testConfig({ camera: 'ffmpeg:virtual?video=smptebars&size=320x180&rate=15&clock=0#video=h264' }));
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

    const original = shrink(await grabGray(camera), 16, 9);
    for (const [name, , size, turn] of ORIENTATIONS) {
      const url = `rtsp://127.0.0.1:${app.rtspPort}/${name}`;
      const frame = await grabGray(url);
      assert.equal(`${frame.w}x${frame.h}`, size, name);
      // The picture itself is turned that way: of all eight turns of the camera's picture, the expected one is closest.
      const got = shrink(frame, frame.w / 20, frame.h / 20);
      const ranked = Object.entries(TURNS)
        .map(([k, f]) => [k, f(original)] as const)
        .filter(([, g]) => g.w === got.w)
        .map(([k, g]) => [k, distance(got, g)] as const)
        .sort((a, b) => a[1] - b[1]);
      assert.equal(ranked[0]![0], turn, `${name}: ${JSON.stringify(ranked)}`);
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
