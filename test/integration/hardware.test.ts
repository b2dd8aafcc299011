import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { liveObjects } from '../../src/core/objects.js';
import type { Frame } from '../../src/core/media.js';
import { RtspServer } from '../../src/rtsp/server.js';
import { FfmpegSource } from '../../src/sources/ffmpeg.js';
import { detectHardware, type HardwareReport } from '../../src/sources/hardware/detect.js';
import { HardwareEncoders } from '../../src/sources/hardware/choice.js';
import { ENCODERS, ENGINES, encoderArgs, hardwarePlan } from '../../src/sources/hardware/engines.js';
import { ffmpegRoutes } from '../../src/api/routes-ffmpeg.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from '../helpers/captured-log.js';

// Hardware detection on this machine (no GPU, no /dev/dri, no V4L2 encoder), for real: it finds
// none, says so once, and a `#hardware` transcode runs with libx264. Then the same detection on a
// device tree that claims every engine's device: this ffmpeg runs each test encode and each fails,
// so nothing wrongly counts as hardware. And every option and filter the engines use is one this
// ffmpeg knows.

const lines = captureLog('info');
const FFMPEG = '/usr/bin/ffmpeg';
const GRACE = { quit: 300, term: 500 };

function ffmpegText(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(FFMPEG, ['-hide_banner', ...args], { maxBuffer: 8 << 20 }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

function noChildLeft(): void {
  assert.equal(liveObjects().ChildProcess ?? 0, 0, 'every detection child was closed');
}

let here: HardwareReport | undefined;

test('detection on this machine: no engine works, logged once as "no hardware encoder found: using libx264"', { timeout: 30000 }, async () => {
  lines.length = 0;
  const t0 = Date.now();
  here = await detectHardware({ bin: FFMPEG, grace: GRACE });
  assert.ok(Date.now() - t0 < 5000, `detection took ${Date.now() - t0} ms`);
  assert.deepEqual(here.pick, {});
  assert.equal(here.tests.length, ENGINES.length * 2);
  for (const t of here.tests) assert.equal(t.ok, false, `${t.engine}/${t.codec}: ${t.info}`);
  assert.equal(here.tests.find((t) => t.engine === 'vaapi')?.info, 'no /dev/dri/renderD* device');
  const said = lines.filter((l) => typeof l.msg === 'string' && /hardware/.test(l.msg));
  assert.deepEqual(said.map((l) => [l.level, l.msg]), [[30, 'no hardware encoder found: using libx264 (and libx265)']]);
  noChildLeft();
});

test('a #video=h264#hardware transcode runs with libx264 (the child\'s own argv) and publishes H.264; #hardware=vaapi too, with one warning', { timeout: 60000 }, async () => {
  const report = here ?? (await detectHardware({ bin: FFMPEG, grace: GRACE }));
  const hardware = new HardwareEncoders(report);
  const rtsp = new RtspServer({ listen: '' });
  await rtsp.listen();
  try {
    for (const url of ['ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264#hardware', 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264#hardware=vaapi']) {
      lines.length = 0;
      const source = new FfmpegSource(url, { bin: FFMPEG, grace: GRACE, rtsp, args: { hardware }, isStream: () => false }, 'hw');
      try {
        let keyframes = 0;
        source.on('frame', (f: Frame) => {
          if (f.keyframe) keyframes++;
        });
        const ac = new AbortController();
        const tracks = await source.start(ac.signal);
        assert.deepEqual(tracks.map((t) => t.codec.name), ['H264'], url);
        const pid = source.info().pid;
        assert.ok(pid, 'ffmpeg runs');
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        assert.equal(argv[argv.indexOf('-c:v') + 1], 'libx264', `${url}: ${argv.join(' ')}`);
        assert.ok(!argv.some((a) => /vaapi|hwaccel|init_hw_device|nvenc|qsv|v4l2m2m/.test(a)), argv.join(' '));
        await waitFor('an H.264 keyframe from the transcode', () => keyframes > 0, 20000);
        const warned = lines.filter((l) => l.level === 40).map((l) => l.msg);
        assert.deepEqual(warned, url.endsWith('=vaapi') ? ['#hardware=vaapi does not work on this machine: encoding h264 in software'] : [], url);
      } finally {
        source.close();
        await source.done;
      }
    }
  } finally {
    rtsp.close();
    await rtsp.done;
  }
  noChildLeft();
});

test('GET /api/ffmpeg/hardware answers go2rtc\'s shape: every engine and codec ERROR here, with why', { timeout: 30000 }, async () => {
  const report = here ?? (await detectHardware({ bin: FFMPEG, grace: GRACE }));
  let finish!: (r: HardwareReport) => void;
  const pending = new HardwareEncoders(new Promise<HardwareReport>((r) => (finish = r)));
  const app = express();
  app.use(ffmpegRoutes({ hardware: pending }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // A request during detection waits for it.
    const answer = fetch(`${base}/api/ffmpeg/hardware`);
    finish(report);
    const res = await answer;
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as { sources: { name: string; info?: string; url: string }[] };
    assert.deepEqual(Object.keys(body), ['sources']);
    assert.deepEqual(body.sources[0], { name: 'ERROR', info: 'no /dev/dri/renderD* device', url: 'ffmpeg:...#video=h264#hardware=vaapi' });
    assert.deepEqual(body.sources.map((s) => s.name), new Array(ENGINES.length * 2).fill('ERROR'));
    for (const s of body.sources) assert.match(s.url, /^ffmpeg:\.\.\.#video=h26[45]#hardware=(vaapi|cuda|qsv|v4l2m2m|rkmpp)$/);
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('a device tree claiming every engine: this ffmpeg runs each test encode, each fails, and none is used', { timeout: 60000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'camrelay-hw-'));
  try {
    const dev = join(root, 'dev');
    mkdirSync(join(dev, 'dri'), { recursive: true });
    for (const p of ['dri/renderD128', 'nvidiactl', 'video11', 'mpp_service']) writeFileSync(join(dev, p), '');
    mkdirSync(join(root, 'sys', 'class', 'video4linux', 'video11'), { recursive: true });
    writeFileSync(join(root, 'sys', 'class', 'video4linux', 'video11', 'name'), 'bcm2835-codec-encode\n');
    lines.length = 0;
    const report = await detectHardware({ bin: FFMPEG, grace: GRACE, devRoot: dev, sysRoot: join(root, 'sys'), timeoutMs: 15000 });
    assert.deepEqual(report.pick, {});
    const info = Object.fromEntries(report.tests.map((t) => [`${t.engine}/${t.codec}`, t.info]));
    // Debian's ffmpeg has the vaapi, nvenc, qsv and v4l2m2m encoders; each test encode ran and failed.
    for (const key of ['vaapi/h264', 'vaapi/h265', 'cuda/h264', 'cuda/h265', 'qsv/h264', 'qsv/h265', 'v4l2m2m/h264', 'v4l2m2m/h265']) {
      assert.match(info[key] ?? '', /^test encode failed: ./, `${key}: ${info[key]}`);
    }
    assert.equal(report.tests.find((t) => t.engine === 'vaapi')?.device, join(dev, 'dri', 'renderD128'));
    // Rockchip's encoders come only with a patched ffmpeg.
    assert.equal(info['rkmpp/h264'], 'h264_rkmpp is not in this ffmpeg (ffmpeg -encoders)');
    assert.equal(lines.filter((l) => l.msg === 'no hardware encoder found: using libx264 (and libx265)').length, 1);
    noChildLeft();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every encoder option and filter the engines use is one this ffmpeg knows', { timeout: 60000 }, async () => {
  // Options of the encoder itself, or of every encoder (AVCodecContext): -g, -bf, -profile, and
  // ffmpeg's own -force_key_frames and -c.
  const generic = new Set(['c', 'g', 'bf', 'profile', 'force_key_frames']);
  for (const engine of ENGINES) {
    for (const codec of ['h264', 'h265'] as const) {
      const encoder = ENCODERS[engine][codec];
      const help = await ffmpegText(['-h', `encoder=${encoder}`]);
      if (/is not recognized/.test(help) || !help.includes(`Encoder ${encoder}`)) {
        assert.equal(engine, 'rkmpp', `${encoder} is missing from Debian's ffmpeg`);
        continue;
      }
      const args = encoderArgs(engine, codec, 'v');
      for (let i = 0; i < args.length; i += 2) {
        const name = args[i]!.replace(/^-/, '').replace(/:v$/, '');
        const value = args[i + 1]!;
        if (generic.has(name)) continue;
        const opt = new RegExp(`^\\s+-${name}\\s+<`, 'm');
        assert.match(help, opt, `${encoder} has -${name}`);
        if (!/^\d+$/.test(value)) assert.match(help, new RegExp(`^\\s+${value}\\s+\\S+\\s+E`, 'm'), `${encoder} -${name} takes ${value}`);
      }
      // Named profiles are the encoder's own constants.
      const at = args.indexOf('-profile:v');
      const profile = at >= 0 ? args[at + 1] : undefined;
      if (profile && !/^\d+$/.test(profile)) assert.match(help, new RegExp(`^\\s+${profile}\\s+\\d+\\s+E`, 'm'), `${encoder} profile ${profile}`);
    }
  }
  const filters = await ffmpegText(['-filters']);
  const used = new Set<string>();
  for (const engine of ENGINES) {
    for (const work of [{ decodable: true, software: [] }, { decodable: true, scale: { w: 640, h: -2 }, software: [] }, { decodable: true, software: ['hflip'] }, { decodable: false, software: [] }]) {
      for (const f of hardwarePlan({ engine }, work).filters) used.add(f.split('=')[0]!);
    }
  }
  for (const f of used) assert.match(filters, new RegExp(`^ [.T][.S][.C] ${f}\\s`, 'm'), `filter ${f}`);
  assert.ok(['hwupload', 'hwmap', 'scale_vaapi', 'scale_qsv', 'scale_cuda', 'format'].every((f) => used.has(f)), [...used].join(' '));
});
