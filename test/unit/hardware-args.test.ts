import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFfmpegUrl } from '../../src/sources/ffmpeg-url.js';
import { buildFfmpegArgs, hardwareReady } from '../../src/sources/ffmpeg-args.js';
import { checkSourceUrl } from '../../src/sources/validate.js';
import { encoderArgs, hardwarePlan, testEncodeArgs, ENGINES, type EngineUse } from '../../src/sources/hardware/engines.js';
import { candidates, parseEncoders, summary, type EngineTest, type HardwareReport } from '../../src/sources/hardware/detect.js';
import { HardwareEncoders } from '../../src/sources/hardware/choice.js';
import { hardwareSources } from '../../src/api/routes-ffmpeg.js';
import { captureLog } from '../helpers/captured-log.js';

// The argument building of every hardware engine, and how #hardware picks one. No GPU is needed:
// these are the command lines; test/integration/hardware.test.ts runs detection for real.

const lines = captureLog('info');
const warnings = () => lines.filter((l) => l.level === 40).map((l) => String(l.msg));

const PUB = 'rtsp://127.0.0.1:8554/pub';
const KEY = 'expr:gte(t,n_forced*1)';
const isStream = (n: string) => n === 'cam';
const streamUrl = (name: string) => `rtsp://127.0.0.1:8554/${name}?video`;

/** A report where exactly the given engine/codec pairs passed their test encode. */
function report(ok: Record<string, string | undefined>): HardwareReport {
  const tests: EngineTest[] = [];
  for (const engine of ENGINES) {
    for (const codec of ['h264', 'h265'] as const) {
      const key = `${engine}/${codec}`;
      const passed = key in ok;
      const device = ok[key];
      tests.push({ engine, codec, ok: passed, ...(device !== undefined && { device }), info: passed ? 'OK' : 'test encode failed: Device creation failed: -22.' });
    }
  }
  const pick: HardwareReport['pick'] = {};
  for (const codec of ['h264', 'h265'] as const) {
    const t = ['cuda', 'vaapi', 'qsv', 'v4l2m2m', 'rkmpp'].map((e) => tests.find((x) => x.engine === e && x.codec === codec && x.ok)).find(Boolean);
    if (t) pick[codec] = t.device === undefined ? { engine: t.engine } : { engine: t.engine, device: t.device };
  }
  return { tests, pick };
}

const RENDER = '/dev/dri/renderD128';
const VAAPI_ONLY = report({ 'vaapi/h264': RENDER, 'vaapi/h265': RENDER, 'qsv/h264': RENDER, 'qsv/h265': RENDER });
const NONE = report({});

function args(url: string, hardware: HardwareEncoders | undefined): string[] {
  return buildFfmpegArgs(parseFfmpegUrl(url, isStream), PUB, { streamUrl, ...(hardware && { hardware }) });
}

test('encoder options per engine and codec: no B-frames, an IDR every second, browsers\' profiles', { timeout: 5000 }, () => {
  const table: [EngineUse['engine'], 'h264' | 'h265', string[]][] = [
    ['vaapi', 'h264', ['-c:v', 'h264_vaapi', '-profile:v', 'constrained_baseline', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY, '-sei:v', '0']],
    ['vaapi', 'h265', ['-c:v', 'hevc_vaapi', '-profile:v', 'main', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY, '-sei:v', '0']],
    ['qsv', 'h264', ['-c:v', 'h264_qsv', '-profile:v', 'baseline', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY, '-forced_idr:v', '1', '-async_depth:v', '1']],
    ['qsv', 'h265', ['-c:v', 'hevc_qsv', '-profile:v', 'main', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY, '-forced_idr:v', '1', '-async_depth:v', '1']],
    ['cuda', 'h264', ['-c:v', 'h264_nvenc', '-profile:v', 'baseline', '-preset:v', 'p2', '-tune:v', 'll', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY, '-forced-idr:v', '1']],
    ['cuda', 'h265', ['-c:v', 'hevc_nvenc', '-profile:v', 'main', '-preset:v', 'p2', '-tune:v', 'll', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY, '-forced-idr:v', '1']],
    ['v4l2m2m', 'h264', ['-c:v', 'h264_v4l2m2m', '-profile:v', '578', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY]],
    ['v4l2m2m', 'h265', ['-c:v', 'hevc_v4l2m2m', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY]],
    ['rkmpp', 'h264', ['-c:v', 'h264_rkmpp', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY]],
    ['rkmpp', 'h265', ['-c:v', 'hevc_rkmpp', '-bf:v', '0', '-g:v', '50', '-force_key_frames:v', KEY]],
  ];
  for (const [engine, codec, expected] of table) assert.deepEqual(encoderArgs(engine, codec, 'v'), expected, `${engine}/${codec}`);
  // Several outputs: each option names its own output stream.
  assert.deepEqual(encoderArgs('vaapi', 'h264', 'v:1').slice(0, 4), ['-c:v:1', 'h264_vaapi', '-profile:v:1', 'constrained_baseline']);
});

test('vaapi: GPU decode, upload of what the decoder could not take, scale on the GPU; software filters in between when needed', { timeout: 5000 }, () => {
  const use = { engine: 'vaapi', device: '/dev/dri/renderD129' } as const;
  const global = ['-init_hw_device', 'vaapi=hw:/dev/dri/renderD129', '-filter_hw_device', 'hw'];
  const gpuInput = ['-hwaccel', 'vaapi', '-hwaccel_device', 'hw', '-hwaccel_output_format', 'vaapi', '-hwaccel_flags', 'allow_profile_mismatch'];
  assert.deepEqual(hardwarePlan(use, { decodable: true, software: [] }), {
    engine: 'vaapi', global, input: gpuInput,
    filters: ['format=vaapi|nv12', 'hwupload', 'scale_vaapi=format=nv12:out_range=tv'],
  });
  assert.deepEqual(hardwarePlan(use, { decodable: true, scale: { w: 1280, h: -2 }, software: [] }).filters, ['format=vaapi|nv12', 'hwupload', 'scale_vaapi=w=1280:h=-2:format=nv12:out_range=tv']);
  // A rotation: decoded on the GPU into system memory, turned in software, uploaded.
  assert.deepEqual(hardwarePlan(use, { decodable: true, scale: { w: 640, h: -2 }, software: ['transpose=1'] }), {
    engine: 'vaapi', global,
    input: ['-hwaccel', 'vaapi', '-hwaccel_device', 'hw', '-hwaccel_flags', 'allow_profile_mismatch'],
    filters: ['scale=640:-2', 'transpose=1', 'format=nv12', 'hwupload', 'scale_vaapi=format=nv12:out_range=tv'],
  });
  // A test pattern or a webcam: nothing to decode on the GPU.
  assert.deepEqual(hardwarePlan(use, { decodable: false, software: [] }).input, []);
});

test('qsv, cuda, v4l2m2m, rkmpp plans', { timeout: 5000 }, () => {
  const gpu = { decodable: true, software: [] };
  const scaled = { decodable: true, scale: { w: -2, h: 720 }, software: [] };
  const turned = { decodable: true, software: ['hflip'] };
  const qsv = { engine: 'qsv', device: RENDER } as const;
  const qsvGlobal = ['-init_hw_device', `vaapi=va:${RENDER}`, '-init_hw_device', 'qsv=hw@va', '-filter_hw_device', 'hw'];
  assert.deepEqual(hardwarePlan(qsv, scaled), {
    engine: 'qsv', global: qsvGlobal,
    input: ['-hwaccel', 'vaapi', '-hwaccel_device', 'va', '-hwaccel_output_format', 'vaapi'],
    filters: ['hwmap=derive_device=qsv', 'format=qsv', 'scale_qsv=w=-2:h=720'],
  });
  assert.deepEqual(hardwarePlan(qsv, turned), { engine: 'qsv', global: qsvGlobal, input: ['-hwaccel', 'vaapi', '-hwaccel_device', 'va'], filters: ['hflip', 'format=nv12'] });

  const cuda = { engine: 'cuda', device: '0' } as const;
  const cudaGlobal = ['-init_hw_device', 'cuda=hw:0', '-filter_hw_device', 'hw'];
  const cudaInput = ['-hwaccel', 'cuda', '-hwaccel_device', 'hw', '-hwaccel_output_format', 'cuda'];
  assert.deepEqual(hardwarePlan(cuda, gpu), { engine: 'cuda', global: cudaGlobal, input: cudaInput, filters: [] });
  assert.deepEqual(hardwarePlan(cuda, scaled).filters, ['scale_cuda=w=-2:h=720']);
  assert.deepEqual(hardwarePlan(cuda, turned), { engine: 'cuda', global: cudaGlobal, input: ['-hwaccel', 'cuda', '-hwaccel_device', 'hw'], filters: ['hflip', 'format=nv12'] });

  // The Raspberry Pi's and Rockchip's encoders: no device options, decode and filters in software.
  assert.deepEqual(hardwarePlan({ engine: 'v4l2m2m' }, scaled), { engine: 'v4l2m2m', global: [], input: [], filters: ['scale=-2:720', 'format=yuv420p'] });
  assert.deepEqual(hardwarePlan({ engine: 'rkmpp' }, turned), { engine: 'rkmpp', global: [], input: [], filters: ['hflip', 'format=nv12'] });
});

test('the test encode: one frame of a lavfi picture through the engine\'s own chain and encoder', { timeout: 5000 }, () => {
  assert.deepEqual(testEncodeArgs({ engine: 'vaapi', device: RENDER }, 'h264'), [
    '-hide_banner', '-loglevel', 'error', '-nostats',
    '-init_hw_device', `vaapi=hw:${RENDER}`, '-filter_hw_device', 'hw',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=1', '-frames:v', '1',
    '-vf', 'format=nv12,hwupload,scale_vaapi=format=nv12:out_range=tv',
    ...encoderArgs('vaapi', 'h264', 'v'),
    '-f', 'null', '-',
  ]);
  assert.deepEqual(testEncodeArgs({ engine: 'v4l2m2m' }, 'h265'), [
    '-hide_banner', '-loglevel', 'error', '-nostats',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=1', '-frames:v', '1',
    '-vf', 'format=yuv420p', ...encoderArgs('v4l2m2m', 'h265', 'v'), '-f', 'null', '-',
  ]);
});

test('#hardware parses: alone = pick, a name = that engine, the first one counts; go2rtc\'s other systems\' names are accepted', { timeout: 5000 }, () => {
  assert.equal(parseFfmpegUrl('ffmpeg:cam#video=h264#hardware', isStream).hardware, 'auto');
  assert.equal(parseFfmpegUrl('ffmpeg:cam#video=h264#hardware=vaapi', isStream).hardware, 'vaapi');
  assert.equal(parseFfmpegUrl('ffmpeg:cam#video=h264#hardware=cuda#hardware=vaapi', isStream).hardware, 'cuda');
  assert.equal(parseFfmpegUrl('ffmpeg:cam#video=h264#hardware=videotoolbox', isStream).hardware, 'videotoolbox');
  assert.equal(parseFfmpegUrl('ffmpeg:cam#video=h264', isStream).hardware, undefined);
  // go2rtc ignores #hardware where nothing is encoded; so does camrelay.
  assert.deepEqual(args('ffmpeg:cam#video=copy#hardware', new HardwareEncoders(VAAPI_ONLY)), args('ffmpeg:cam#video=copy', undefined));
});

test('from the API: #hardware and #hardware=<engine> are accepted (the device is detection\'s, never the URL\'s)', { timeout: 5000 }, () => {
  for (const url of ['ffmpeg:cam#video=h264#hardware', 'ffmpeg:cam#video=h264#hardware=vaapi', 'ffmpeg:rtsp://cam/1#video=h265#hardware=cuda']) {
    assert.ok(checkSourceUrl(url, { isStream, fromNetwork: true })?.hardware, url);
  }
  assert.throws(() => checkSourceUrl('ffmpeg:cam#video=h264#hardware=vaapi:/dev/sda', { isStream, fromNetwork: true }), /unknown #hardware=vaapi:\/dev\/sda/);
});

test('#hardware with vaapi detected: the whole command line of a camera transcode', { timeout: 5000 }, () => {
  const hw = new HardwareEncoders(VAAPI_ONLY);
  assert.deepEqual(args('ffmpeg:rtsp://cam/1#video=h264#width=1280#hardware', hw), [
    '-hide_banner', '-loglevel', 'error', '-nostats',
    '-init_hw_device', `vaapi=hw:${RENDER}`, '-filter_hw_device', 'hw',
    '-hwaccel', 'vaapi', '-hwaccel_device', 'hw', '-hwaccel_output_format', 'vaapi', '-hwaccel_flags', 'allow_profile_mismatch',
    '-allowed_media_types', 'video', '-fflags', 'nobuffer', '-flags', 'low_delay', '-timeout', '5000000', '-rtsp_flags', 'prefer_tcp', '-i', 'rtsp://cam/1',
    ...encoderArgs('vaapi', 'h264', 'v'),
    '-an',
    '-vf', 'format=vaapi|nv12,hwupload,scale_vaapi=w=1280:h=-2:format=nv12:out_range=tv',
    '-f', 'rtsp', '-rtsp_transport', 'tcp', PUB,
  ]);
  // #hardware=qsv picks qsv even though vaapi comes first; two outputs share one engine.
  const two = args('ffmpeg:cam#video=h264#video=h265#hardware=qsv', hw);
  assert.deepEqual(two.slice(4, 11), ['-init_hw_device', `vaapi=va:${RENDER}`, '-init_hw_device', 'qsv=hw@va', '-filter_hw_device', 'hw', '-hwaccel']);
  assert.ok(two.includes('h264_qsv') && two.includes('hevc_qsv') && two.includes('-c:v:1'), two.join(' '));
  // A webcam: encoded on the GPU, decoded in software.
  const dev = args('ffmpeg:device?video=/dev/video0#video=h264#hardware', hw);
  assert.ok(!dev.includes('-hwaccel') && dev.includes('h264_vaapi'), dev.join(' '));
  assert.equal(dev[dev.indexOf('-vf') + 1], 'format=nv12,hwupload,scale_vaapi=format=nv12:out_range=tv');
  assert.deepEqual(warnings(), []);
});

test('software whenever hardware cannot serve: none detected, mjpeg or copy beside, one codec without it; a warning once only for an engine asked by name', { timeout: 5000 }, () => {
  const none = new HardwareEncoders(NONE);
  const url = 'ffmpeg:cam#video=h264#rotate=90';
  assert.deepEqual(args(`${url}#hardware`, none), args(url, undefined));
  assert.deepEqual(warnings(), [], 'plain #hardware falls back silently (startup logged "no hardware encoder found")');

  lines.length = 0;
  for (let i = 0; i < 3; i++) assert.deepEqual(args(`${url}#hardware=cuda`, none), args(url, undefined));
  assert.deepEqual(warnings(), ['#hardware=cuda does not work on this machine: encoding h264 in software']);
  assert.match(String(lines[0]?.why), /Device creation failed/);

  lines.length = 0;
  assert.deepEqual(args('ffmpeg:cam#video=h264#hardware=videotoolbox', none), args('ffmpeg:cam#video=h264', undefined));
  assert.equal(lines[0]?.why, 'videotoolbox is an engine of macOS');

  const h264Only = new HardwareEncoders(report({ 'cuda/h264': '0' }));
  assert.ok(args('ffmpeg:cam#video=h264#hardware', h264Only).includes('h264_nvenc'));
  assert.deepEqual(args('ffmpeg:cam#video=h265#hardware', h264Only), args('ffmpeg:cam#video=h265', undefined));
  assert.deepEqual(args('ffmpeg:cam#video=h264#video=h265#hardware', h264Only), args('ffmpeg:cam#video=h264#video=h265', undefined));
  const vaapi = new HardwareEncoders(VAAPI_ONLY);
  assert.deepEqual(args('ffmpeg:cam#video=h264#video=mjpeg#hardware', vaapi), args('ffmpeg:cam#video=h264#video=mjpeg', undefined));
  assert.deepEqual(args('ffmpeg:cam#video=h264#video=copy#hardware', vaapi), args('ffmpeg:cam#video=h264#video=copy', undefined));
});

test('before detection finished: software, and hardwareReady() waits a bounded time for it', { timeout: 5000 }, async () => {
  let finish!: (r: HardwareReport) => void;
  const hw = new HardwareEncoders(new Promise<HardwareReport>((r) => (finish = r)));
  const spec = parseFfmpegUrl('ffmpeg:cam#video=h264#hardware', isStream);
  assert.equal(hw.report, undefined);
  lines.length = 0;
  assert.ok(buildFfmpegArgs(spec, PUB, { streamUrl, hardware: hw }).includes('libx264'));
  assert.match(warnings()[0] ?? '', /hardware detection has not finished/);

  // Bounded: a short wait ends on its own.
  const t0 = Date.now();
  await hw.ready(50);
  assert.ok(Date.now() - t0 >= 45 && hw.report === undefined);
  // An aborted start does not wait.
  const ac = new AbortController();
  const waiting = hw.ready(10_000, ac.signal);
  ac.abort();
  await waiting;
  // Detection ends while a transcode waits: it gets the engine.
  const ready = hardwareReady(spec, { hardware: hw });
  finish(VAAPI_ONLY);
  await ready;
  assert.ok(buildFfmpegArgs(spec, PUB, { streamUrl, hardware: hw }).includes('h264_vaapi'));
  // A source without #hardware never waits.
  const other = new HardwareEncoders(new Promise<HardwareReport>(() => {}));
  await hardwareReady(parseFfmpegUrl('ffmpeg:cam#video=h264', isStream), { hardware: other });
});

test('GET /api/ffmpeg/hardware\'s body: go2rtc\'s sources list, OK or ERROR per engine and codec', { timeout: 5000 }, () => {
  const body = hardwareSources(report({ 'vaapi/h264': RENDER }));
  assert.equal(body.sources.length, ENGINES.length * 2);
  assert.deepEqual(body.sources[0], { name: 'OK', info: RENDER, url: 'ffmpeg:...#video=h264#hardware=vaapi' });
  assert.deepEqual(body.sources[1], { name: 'ERROR', info: 'test encode failed: Device creation failed: -22.', url: 'ffmpeg:...#video=h265#hardware=vaapi' });
  assert.deepEqual(body.sources.map((s) => s.url.slice('ffmpeg:...'.length)), ENGINES.flatMap((e) => [`#video=h264#hardware=${e}`, `#video=h265#hardware=${e}`]));
  assert.equal(summary(NONE), 'no hardware encoder found: using libx264 (and libx265)');
  assert.equal(summary(report({ 'vaapi/h264': RENDER })), `hardware encoding: h264 on vaapi (${RENDER}), h265 in software (libx265)`);
});

test('ffmpeg -encoders is read by its flags column', { timeout: 5000 }, () => {
  const text = [
    'Encoders:',
    ' V..... = Video',
    ' ------',
    ' V....D h264_vaapi           H.264/AVC (VAAPI) (codec h264)',
    ' V..... h264_v4l2m2m         V4L2 mem2mem H.264 encoder wrapper (codec h264)',
    ' A....D aac                  AAC (Advanced Audio Coding)',
  ].join('\n');
  assert.deepEqual([...parseEncoders(text)], ['h264_vaapi', 'h264_v4l2m2m', 'aac']);
});

test('candidates: render nodes (Intel ones for qsv), NVIDIA nodes, a V4L2 node sysfs names an encoder, mpp_service', { timeout: 5000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'camrelay-hw-'));
  try {
    const dev = join(root, 'dev');
    const sys = join(root, 'sys');
    assert.deepEqual(await candidates(dev, sys), {
      vaapi: { none: `no ${dev}/dri/renderD* device` },
      qsv: { none: `no ${dev}/dri/renderD* device` },
      cuda: { none: `no ${dev}/nvidia* device` },
      v4l2m2m: { none: `no V4L2 memory-to-memory encoder in ${dev}/video*` },
      rkmpp: { none: `no ${dev}/mpp_service device` },
    });
    mkdirSync(join(dev, 'dri'), { recursive: true });
    for (const n of ['renderD129', 'renderD128', 'card0', 'video0', 'video10', 'video11', 'nvidia0']) {
      writeFileSync(join(n.startsWith('render') || n.startsWith('card') ? join(dev, 'dri') : dev, n), '');
    }
    const drm = (n: string, vendor: string) => {
      mkdirSync(join(sys, 'class', 'drm', n, 'device'), { recursive: true });
      writeFileSync(join(sys, 'class', 'drm', n, 'device', 'vendor'), `${vendor}\n`);
    };
    drm('renderD128', '0x1002'); // AMD
    drm('renderD129', '0x8086'); // Intel
    const v4l = (n: string, name: string) => {
      mkdirSync(join(sys, 'class', 'video4linux', n), { recursive: true });
      writeFileSync(join(sys, 'class', 'video4linux', n, 'name'), `${name}\n`);
    };
    v4l('video0', 'USB Camera');
    v4l('video10', 'bcm2835-codec-decode');
    v4l('video11', 'bcm2835-codec-encode');
    const found = await candidates(dev, sys);
    assert.deepEqual(found.vaapi, { devices: [join(dev, 'dri', 'renderD128'), join(dev, 'dri', 'renderD129')] });
    assert.deepEqual(found.qsv, { devices: [join(dev, 'dri', 'renderD129')] });
    assert.deepEqual(found.cuda, { devices: ['0'] });
    assert.deepEqual(found.v4l2m2m, { devices: [undefined] });
    assert.deepEqual(found.rkmpp, { none: `no ${dev}/mpp_service device` });
    // Only a webcam: no M2M encoder.
    rmSync(join(dev, 'video11'));
    assert.ok('none' in (await candidates(dev, sys)).v4l2m2m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
