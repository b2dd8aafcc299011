import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { parseDuration } from '../../src/config/duration.js';
import { substituteEnv } from '../../src/config/env.js';
import { isListenAddress } from '../../src/config/schema.js';

const FILE = 'config.yaml';
const GOP = { maxBytes: 8 * 1024 * 1024, maxDuration: 10_000 };
const DEFAULT_SETTINGS = { idleTimeout: 0, startTimeout: 10_000, stallTimeout: 10_000, transcode: 'auto', backoff: { base: 500, max: 30_000, stableAfter: 30_000 }, gopCache: GOP };
/** The bounds every config gets unless it sets them (issue 12). */
const API_BOUNDS = { allowedHosts: [], origin: '', maxConnections: 256, headerTimeout: 10_000, idleTimeout: 60_000, maxSnapshots: 4, maxMjpegEncoders: 8, snapshotCache: 1_000 };
const RTSP_BOUNDS = { maxConnections: 256, headerTimeout: 10_000 };

test('durations: numbers are seconds, strings carry a unit', { timeout: 5000 }, () => {
  const table: [unknown, number | undefined][] = [
    [0, 0],
    [2, 2000],
    [1.5, 1500],
    ['250ms', 250],
    ['2s', 2000],
    ['1.5m', 90_000],
    ['1h', 3_600_000],
    ['30', 30_000],
    ['0s', 0],
    [-1, undefined],
    ['2 days', undefined],
    ['', undefined],
    [true, undefined],
    [null, undefined],
  ];
  for (const [input, ms] of table) assert.equal(parseDuration(input), ms, `parseDuration(${JSON.stringify(input)})`);
});

test('environment substitution', { timeout: 5000 }, () => {
  const env = { USER1: 'admin', EMPTY: '' };
  assert.equal(substituteEnv('rtsp://${USER1}@cam', env), 'rtsp://admin@cam');
  assert.equal(substituteEnv('${NOPE:-fallback}', env), 'fallback');
  assert.equal(substituteEnv('${EMPTY:-fallback}', env), 'fallback');
  assert.equal(substituteEnv('${EMPTY}', env), '');
  assert.equal(substituteEnv('pa$${ss', env), 'pa${ss');
  assert.equal(substituteEnv('no refs $HOME', env), 'no refs $HOME');
  assert.throws(() => substituteEnv('${NOPE}', env), /"NOPE" is not set/);
});

test('listen addresses', { timeout: 5000 }, () => {
  for (const good of [':1984', '127.0.0.1:8554', '[::1]:8555', '[::]:80', 'localhost:0', 'cam.lan:1']) assert.ok(isListenAddress(good), good);
  for (const bad of ['1984', ':', ':99999', '::1:80', 'a b:80', ':80x', ' :80', '']) assert.ok(!isListenAddress(bad), JSON.stringify(bad));
});

test('the full example document', { timeout: 5000 }, () => {
  const text = `
api:    { listen: ":1984", username: "", password: "" }
rtsp:   { listen: "127.0.0.1:8554", username: admin, password: "\${RTSP_PASS}" }
webrtc:
  listen: ":8555"
  candidates: ["192.168.1.10:8555", "stun:8555"]
  ice_servers: [{urls: ["stun:stun.example.org:3478"], username: u, credential: c}, {urls: "stun:other"}]
  port_range: "50000-50100"
  timeouts: { connect: 15s, disconnect: 10 }
ffmpeg:
  bin: ""
  stop_grace: { quit: 300ms, term: 0.5 }
log: { level: debug }
stream_defaults:
  idle_timeout: 0s
  start_timeout: 10s
  backoff: { base: 500ms, max: 30s, stable_after: 30s }
streams:
  demo: "ffmpeg:virtual?video=testsrc2&size=1280x720#video=h264#audio=opus"
  cam2: [ "rtsp://\${CAM_USER:-admin}:\${CAM_PASS}@10.0.0.2/main", ffmpeg:cam2#audio=opus ]
  garage:
    sources: [ "rtsp://garage" ]
    idle_timeout: 30s
    backoff: { max: 60s }
  push:
`;
  const c = parseConfig(text, FILE, { RTSP_PASS: 'secret', CAM_PASS: 'p@ss' });
  assert.deepEqual(c.api, { listen: ':1984', ...API_BOUNDS });
  assert.deepEqual(c.rtsp, { listen: '127.0.0.1:8554', ...RTSP_BOUNDS, username: 'admin', password: 'secret' });
  assert.deepEqual(c.webrtc, {
    listen: ':8555',
    candidates: ['192.168.1.10:8555', 'stun:8555'],
    iceServers: [
      { urls: ['stun:stun.example.org:3478'], username: 'u', credential: 'c' },
      { urls: ['stun:other'] },
    ],
    portRange: [50000, 50100],
    timeouts: { connect: 15_000, disconnect: 10_000 },
    maxConnectingPerClient: 8,
  });
  assert.deepEqual(c.ffmpeg, { stopGrace: { quit: 300, term: 500 } });
  assert.deepEqual(c.log, { level: 'debug' });
  assert.deepEqual(Object.keys(c.streams), ['demo', 'cam2', 'garage', 'push'], 'file order');
  assert.deepEqual(c.streams.demo, {
    sources: ['ffmpeg:virtual?video=testsrc2&size=1280x720#video=h264#audio=opus'],
    settings: DEFAULT_SETTINGS,
  });
  assert.deepEqual(c.streams.cam2?.sources, ['rtsp://admin:p@ss@10.0.0.2/main', 'ffmpeg:cam2#audio=opus']);
  assert.deepEqual(c.streams.garage, {
    sources: ['rtsp://garage'],
    settings: { idleTimeout: 30_000, startTimeout: 10_000, stallTimeout: 10_000, transcode: 'auto', backoff: { base: 500, max: 60_000, stableAfter: 30_000 }, gopCache: GOP },
  });
  assert.deepEqual(c.streams.push, { sources: [], settings: DEFAULT_SETTINGS });
  assert.notEqual(c.streams.demo?.settings, c.streams.push?.settings, 'streams do not share a settings object');
});

test('good documents', { timeout: 5000 }, () => {
  const table: { name: string; text: string; check: (c: ReturnType<typeof parseConfig>) => void }[] = [
    {
      name: 'empty file takes every default',
      text: '',
      check: (c) => {
        assert.deepEqual(c, {
          api: { listen: ':1984', ...API_BOUNDS },
          rtsp: { listen: ':8554', ...RTSP_BOUNDS },
          webrtc: { listen: ':8555', candidates: [], iceServers: [], timeouts: { connect: 15_000, disconnect: 3_500 }, maxConnectingPerClient: 8 },
          ffmpeg: { stopGrace: { quit: 300, term: 500 } },
          log: { level: 'info' },
          streams: {},
          preload: {},
          streamDefaults: { idleTimeout: 0, startTimeout: 10_000, stallTimeout: 10_000, transcode: 'auto', backoff: { base: 500, max: 30_000, stableAfter: 30_000 }, gopCache: GOP },
        });
      },
    },
    { name: 'empty streams', text: 'streams:\n', check: (c) => assert.deepEqual(c.streams, {}) },
    {
      name: 'names that are members of Object.prototype are plain streams',
      text: 'streams:\n  constructor: rtsp://c\n  toString: rtsp://t\npreload:\n  constructor: video\n',
      check: (c) => {
        assert.deepEqual(Object.entries(c.streams).map(([k, v]) => [k, v.sources]), [['constructor', ['rtsp://c']], ['toString', ['rtsp://t']]]);
        assert.deepEqual(c.preload, { constructor: 'video' });
      },
    },
    { name: 'empty section', text: 'api:\nrtsp: {}\n', check: (c) => assert.equal(c.api.listen, ':1984') },
    { name: 'listen disabled', text: 'rtsp: { listen: "" }', check: (c) => assert.equal(c.rtsp.listen, '') },
    { name: 'ipv6 listen', text: 'api: { listen: "[::]:1984" }', check: (c) => assert.equal(c.api.listen, '[::]:1984') },
    {
      name: 'port range as a list',
      text: 'webrtc: { port_range: [40000, 40010] }',
      check: (c) => assert.deepEqual(c.webrtc.portRange, [40000, 40010]),
    },
    {
      name: 'stream defaults apply to every stream, overrides per stream',
      text: 'stream_defaults: { idle_timeout: 5, backoff: { base: 1s } }\nstreams:\n  a: rtsp://a\n  b: { sources: rtsp://b, start_timeout: 3s }\n',
      check: (c) => {
        assert.deepEqual(c.streams.a?.settings, { idleTimeout: 5000, startTimeout: 10_000, stallTimeout: 10_000, transcode: 'auto', backoff: { base: 1000, max: 30_000, stableAfter: 30_000 }, gopCache: GOP });
        assert.deepEqual(c.streams.b?.settings, { idleTimeout: 5000, startTimeout: 3000, stallTimeout: 10_000, transcode: 'auto', backoff: { base: 1000, max: 30_000, stableAfter: 30_000 }, gopCache: GOP });
        assert.deepEqual(c.streams.b?.sources, ['rtsp://b']);
      },
    },
    {
      name: 'loopback-only WebRTC',
      text: 'webrtc: { loopback_only: true }',
      check: (c) => assert.equal(c.webrtc.loopbackOnly, true),
    },
    { name: 'ffmpeg bin', text: 'ffmpeg: { bin: /opt/ffmpeg }', check: (c) => assert.equal(c.ffmpeg.bin, '/opt/ffmpeg') },
    {
      name: 'env default in a duration',
      text: 'stream_defaults: { idle_timeout: "${IDLE:-2}" }\nstreams: { a: x }',
      check: (c) => assert.equal(c.streams.a?.settings.idleTimeout, 2000),
    },
    {
      name: 'GOP cache: defaults, then a stream that turns it off',
      text: 'stream_defaults: { gop_cache: { max_duration: 4s } }\nstreams:\n  a: rtsp://a\n  b: { sources: rtsp://b, gop_cache: { max_bytes: 0 } }\n',
      check: (c) => {
        assert.deepEqual(c.streams.a?.settings.gopCache, { maxBytes: 8 * 1024 * 1024, maxDuration: 4000 });
        assert.deepEqual(c.streams.b?.settings.gopCache, { maxBytes: 0, maxDuration: 4000 });
      },
    },
    {
      name: 'unicode and dotted stream names',
      text: 'streams:\n  "кухня": rtsp://k\n  front.door: rtsp://f\n',
      check: (c) => assert.deepEqual(Object.keys(c.streams), ['кухня', 'front.door']),
    },
  ];
  for (const { name, text, check } of table) {
    let c;
    try {
      c = parseConfig(text, FILE, {});
    } catch (e) {
      assert.fail(`${name}: ${(e as Error).message}`);
    }
    check(c);
  }
});

test('bad documents name the file, the line and the key', { timeout: 5000 }, () => {
  const table: { name: string; text: string; message: string | RegExp }[] = [
    {
      name: 'yaml syntax',
      text: 'api:\n  listen: ":1984"\n bad: [\n',
      message: /^config\.yaml:3:1: \S/,
    },
    {
      name: 'unclosed flow sequence',
      text: 'streams:\n  a: [ "rtsp://x"\n',
      message: /^config\.yaml:\d+:\d+: /,
    },
    { name: 'duplicate key', text: 'api: {}\nrtsp: {}\napi: {}\n', message: /^config\.yaml:3:1: .*unique/ },
    {
      name: 'unknown nested key',
      text: 'api:\n  listen: ":1984"\nwebrtc:\n  timeouts: { connect: 15s }\n  timeout: 3\n',
      message: 'config.yaml:5: unknown key "webrtc.timeout"',
    },
    { name: 'unknown top-level key', text: 'log: { level: info }\nhass: {}\n', message: 'config.yaml:2: unknown key "hass"' },
    {
      // zod drops such a key silently; before, the stream vanished without a word.
      name: 'a stream named __proto__',
      text: 'streams:\n  ok: rtsp://a\n  __proto__: rtsp://b\n',
      message: 'config.yaml:3: streams.__proto__: "__proto__" is reserved and cannot name a stream',
    },
    {
      // Object.prototype.toString once passed for a stream of that name.
      name: 'a preload of a missing stream named like a member of Object.prototype',
      text: 'streams:\n  ok: rtsp://a\npreload:\n  toString: video\n',
      message: 'config.yaml:4: preload.toString: no stream named "toString"',
    },
    {
      name: 'unknown key in a stream object',
      text: 'streams:\n  g:\n    sources: rtsp://g\n    idle: 3s\n',
      message: 'config.yaml:4: unknown key "streams.g.idle"',
    },
    {
      name: 'negative GOP cache size',
      text: 'streams:\n  g:\n    sources: rtsp://g\n    gop_cache: { max_bytes: -1 }\n',
      message: /^config\.yaml:4: streams\.g\.gop_cache\.max_bytes: must be 0 \(no cache\) or more bytes/,
    },
    { name: 'wrong type', text: 'log: {}\n\napi:\n  listen: 1984\n', message: 'config.yaml:4: api.listen: expected string, got number' },
    {
      name: 'section of the wrong type',
      text: 'webrtc: "yes"\n',
      message: 'config.yaml:1: webrtc: expected mapping, got string',
    },
    { name: 'document is a list', text: '- a\n- b\n', message: 'config.yaml:1: the document: expected mapping, got list' },
    {
      name: 'candidates must be strings',
      text: 'webrtc:\n  candidates: [ "a:1", 5 ]\n',
      message: 'config.yaml:2: webrtc.candidates[1]: expected string, got number',
    },
    { name: 'bad listen', text: 'api: { listen: "1984" }', message: /^config\.yaml:1: api\.listen: "1984" is not a listen address/ },
    { name: 'listen port too big', text: 'rtsp:\n  listen: ":70000"', message: /^config\.yaml:2: rtsp\.listen: ":70000" is not a listen address/ },
    {
      name: 'port range reversed',
      text: 'webrtc:\n  port_range: 50100-50000\n',
      message: /^config\.yaml:2: webrtc\.port_range: expected "min-max" or \[min, max\] .*got "50100-50000"$/,
    },
    { name: 'port range zero', text: 'webrtc: { port_range: [0, 10] }', message: /webrtc\.port_range: .*got \[0,10\]/ },
    {
      name: 'bad duration',
      text: 'stream_defaults:\n  start_timeout: soon\n',
      message: /^config\.yaml:2: stream_defaults\.start_timeout: expected a duration .*got "soon"$/,
    },
    {
      name: 'zero start timeout',
      text: 'stream_defaults:\n  start_timeout: 0\n',
      message: 'config.yaml:2: stream_defaults.start_timeout: must be more than 0',
    },
    {
      name: 'backoff max below base',
      text: 'streams:\n  a:\n    sources: x\n    backoff: { base: 2s, max: 1s }\n',
      message: 'config.yaml:4: streams.a.backoff: max (1000 ms) is less than base (2000 ms)',
    },
    {
      name: 'log level',
      text: 'log:\n  level: loud\n',
      message: 'config.yaml:2: log.level: expected one of trace, debug, info, warn, error, got "loud"',
    },
    {
      name: 'stream name with a slash',
      text: 'streams:\n  ok: x\n  a/b: x\n',
      message: 'config.yaml:3: stream name "a/b" must not contain "/", whitespace or control characters',
    },
    { name: 'stream name with a space', text: 'streams:\n  "a b": x\n', message: /^config\.yaml:2: stream name "a b"/ },
    { name: 'empty stream name', text: 'streams:\n  "": x\n', message: 'config.yaml:2: a stream name must not be empty' },
    {
      name: 'source not a string',
      text: 'streams:\n  a:\n    - rtsp://a\n    - 5\n',
      message: 'config.yaml:4: streams.a[1]: expected a source URL, got number',
    },
    { name: 'empty source', text: 'streams:\n  a: ""\n', message: 'config.yaml:2: streams.a: expected a source URL, got an empty string' },
    {
      name: 'stream object without sources',
      text: 'streams:\n  a:\n    idle_timeout: 3s\n',
      message: 'config.yaml:2: streams.a.sources: expected a source URL or a list of them, got nothing (the key is missing)',
    },
    {
      name: 'unset environment variable',
      text: 'streams:\n  cam:\n    - rtsp://admin:${CAM_PASS}@cam\n',
      message: 'config.yaml:3: streams.cam[0]: environment variable "CAM_PASS" is not set',
    },
  ];
  for (const { name, text, message } of table) {
    assert.throws(
      () => parseConfig(text, FILE, {}),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, `${name}: ${String(e)}`);
        assert.equal(e.file, FILE);
        if (typeof message === 'string') assert.equal(e.message, message, name);
        else assert.match(e.message, message, name);
        return true;
      },
      name,
    );
  }
});

test('every problem is reported, one per line', { timeout: 5000 }, () => {
  assert.throws(
    () => parseConfig('api: { listen: 5 }\nlog: { level: x }\n', FILE, {}),
    { message: 'config.yaml:1: api.listen: expected string, got number\nconfig.yaml:2: log.level: expected one of trace, debug, info, warn, error, got "x"' },
  );
});

test('loadConfig reads the file; a missing file is a ConfigError', { timeout: 5000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'camrelay-config-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'streams:\n  a: rtsp://a\n');
    assert.deepEqual(loadConfig(file).streams.a?.sources, ['rtsp://a']);
    writeFileSync(file, 'api:\n  listen: 5\n');
    assert.throws(() => loadConfig(file), { name: 'ConfigError', message: `${file}:2: api.listen: expected string, got number` });
    const missing = join(dir, 'nope.yaml');
    assert.throws(() => loadConfig(missing), (e: unknown) => e instanceof ConfigError && e.file === missing && e.message === `${missing}: file not found`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
