// camrelay's RTSP output against real players (ffprobe, ffmpeg, GStreamer's rtspsrc) and a raw
// RTSP client, on a camrelay process serving an ffmpeg test pattern.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { CamrelayProcess, testConfig, type LogLine } from '../helpers/camrelay-process.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { waitFor } from '../helpers/wait.js';
import { gstPlay } from '../helpers/gst-player.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';
// About 600 KB/s (H.264 at qp 2): fills a frozen reader's 4 MB of kernel socket buffer in seconds.
const BIG = 'ffmpeg:virtual?video=testsrc2&size=640x480&clock=0#video=h264#raw=-qp 2';
const HEVC = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h265#audio=aac';
const SESSION_TIMEOUT_MS = 3000;
const MAX_SEND_BUFFER = 256 * 1024;

let app: CamrelayProcess;
const url = (path = 'demo') => `rtsp://127.0.0.1:${app.rtspPort}/${path}`;

before(async () => {
  app = await CamrelayProcess.start(
    testConfig({ demo: DEMO, big: BIG, hevc: HEVC, broken: 'ffmpeg:/nonexistent/clip.mp4', 'odd.name_with-chars%é': DEMO }, '', `session_timeout: ${SESSION_TIMEOUT_MS}ms, max_send_buffer: ${MAX_SEND_BUFFER}`),
  );
});

after(async () => {
  await app?.stop();
});

// ---- helpers ----------------------------------------------------------------------------------

interface Run {
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

function run(bin: string, args: string[]): Run {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-20_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-8000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => out, stderr: () => err };
}

async function finish(r: Run, ms: number): Promise<number | null> {
  const t = setTimeout(() => r.child.kill('SIGKILL'), ms);
  try {
    return await r.exited;
  } finally {
    clearTimeout(t);
  }
}

async function ffprobe(u: string, transport: 'tcp' | 'udp'): Promise<{ code: number | null; codecs: string[]; stderr: string }> {
  const r = run('/usr/bin/ffprobe', ['-v', 'error', '-rtsp_transport', transport, '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', u]);
  const code = await finish(r, 15_000);
  return { code, codecs: r.stdout().split('\n').map((s) => s.trim()).filter(Boolean), stderr: r.stderr() };
}

/** Frames an ffmpeg reader has passed on, from its -progress output. */
function framesOf(r: Run): number {
  const all = [...r.stdout().matchAll(/^frame=(\d+)$/gm)];
  return all.length ? Number(all[all.length - 1]![1]) : 0;
}

function ffmpegReader(u: string): Run {
  return run('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', '-progress', 'pipe:1', '-stats_period', '0.25', '-rtsp_transport', 'tcp', '-i', u, '-map', '0', '-c', 'copy', '-f', 'null', '-']);
}

/** Log lines from index `from` on that match. */
function logsSince(from: number, match: (l: LogLine) => boolean): LogLine[] {
  return app.logs.slice(from).filter(match);
}

const closedLog = (reason: RegExp) => (l: LogLine) => l.msg === 'rtsp session closed' && reason.test(String(l.reason));

/** No player, no source, no connection left: what a test leaves behind for the next one. */
async function baseline(ms = 5000): Promise<void> {
  await waitFor(
    'objects back to baseline',
    async () => {
      const o = await app.objects();
      const zero = ['RtspConsumer', 'RtspConnection', 'RtpUdpPair', 'FfmpegSource', 'ChildProcess', 'PublishSlot'].every((k) => (o[k] ?? 0) === 0);
      return zero && app.children().length === 0 && o.Stream === 5;
    },
    ms,
    50,
  );
}

// ---- tests ------------------------------------------------------------------------------------

test('ffprobe over TCP reports H.264 and Opus', { timeout: 20_000 }, async () => {
  const r = await ffprobe(url(), 'tcp');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.codecs, ['h264', 'opus']);
  await baseline();
});

test('ffprobe over UDP reports H.264 and Opus', { timeout: 20_000 }, async () => {
  const r = await ffprobe(url(), 'udp');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.codecs, ['h264', 'opus']);
  assert.ok(logsSince(0, (l) => l.msg === 'rtsp session playing' && JSON.stringify(l.transports) === '["video:udp","audio:udp"]').length > 0, 'played over UDP');
  await baseline();
});

test('H.265 and AAC: ffprobe sees them, ffmpeg decodes 2 s without an error', { timeout: 20_000 }, async () => {
  const r = await ffprobe(url('hevc'), 'tcp');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.codecs, ['hevc', 'aac']);
  const dec = run('/usr/bin/ffmpeg', ['-v', 'error', '-xerror', '-rtsp_transport', 'tcp', '-i', url('hevc'), '-t', '2', '-f', 'null', '-']);
  assert.equal(await finish(dec, 15_000), 0, dec.stderr());
  assert.equal(dec.stderr(), '', 'no decoder complaint');
  await baseline();
});

test('stream names with special characters, and the query filter', { timeout: 20_000 }, async () => {
  const odd = await ffprobe(url(encodeURIComponent('odd.name_with-chars%é')), 'tcp');
  assert.equal(odd.code, 0, odd.stderr);
  assert.deepEqual(odd.codecs, ['h264', 'opus']);
  const video = await ffprobe(url('demo?video'), 'tcp');
  assert.deepEqual(video.codecs, ['h264']);
  const audio = await ffprobe(url('demo?audio=opus'), 'tcp');
  assert.deepEqual(audio.codecs, ['opus']);
  const both = await ffprobe(url('demo?video=h264&audio'), 'tcp');
  assert.deepEqual(both.codecs, ['h264', 'opus']);
  const none = await ffprobe(url('demo?audio=pcma'), 'tcp');
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /404/);
  await baseline();
});

test('unknown stream: 404', { timeout: 10_000 }, async () => {
  const raw = new RawRtspPlayer(app.rtspPort);
  try {
    const r = await raw.request('DESCRIBE', url('nope'));
    assert.equal(r.status, 404);
    assert.match(r.reason, /no stream "nope"/);
  } finally {
    raw.destroy();
  }
  const p = await ffprobe(url('nope'), 'tcp');
  assert.notEqual(p.code, 0);
  assert.match(p.stderr, /404 Not Found/);
  await baseline();
});

test('a stream that cannot start: the player gets the reason in the status line', { timeout: 10_000 }, async () => {
  const from = app.logs.length;
  const p = await ffprobe(url('broken'), 'tcp');
  assert.notEqual(p.code, 0);
  assert.match(p.stderr, /DESCRIBE failed: 404 Not Found: stream "broken" cannot start: .*nonexistent\/clip\.mp4/);
  await app.waitLog(closedLog(/cannot start/), 2000, from);
  await baseline();
});

test('three ffmpeg readers share one source; it stops within 500 ms of the last one leaving', { timeout: 30_000 }, async () => {
  const readers = [0, 1, 2].map(() => ffmpegReader(url()));
  try {
    await waitFor('every reader past 40 frames', () => readers.every((r) => framesOf(r) >= 40), 15_000, 50);
    assert.equal(app.children().length, 1, 'exactly one ffmpeg source child');
    const { body } = await app.json<{ demo: { producers: { bytes_recv?: number }[]; consumers: { type: string; remote_addr: string; bytes_send: number }[] } }>('/api/streams');
    const rtsp = body.demo.consumers.filter((c) => c.type === 'rtsp');
    assert.equal(rtsp.length, 3);
    assert.ok(rtsp.every((c) => /^127\.0\.0\.1:\d+$/.test(c.remote_addr) && c.bytes_send > 10_000), JSON.stringify(rtsp));
    // go2rtc's clients read bytes_recv on producers as the bytes the camera (here ffmpeg) sent.
    const sent = Math.min(...rtsp.map((c) => c.bytes_send));
    assert.ok((body.demo.producers[0]?.bytes_recv ?? 0) > sent * 0.5, `producer bytes_recv ${body.demo.producers[0]?.bytes_recv} for consumers that got ${sent}`);
    const counts = readers.map(framesOf);
    for (const r of readers.slice(0, 2)) {
      r.child.kill('SIGKILL');
      await r.exited;
    }
    assert.equal(app.children().length, 1, 'the source stays for the last reader');
    const last = readers[2]!;
    last.child.kill('SIGKILL');
    await last.exited;
    const t0 = performance.now();
    await waitFor('no ffmpeg child', () => app.children().length === 0, 2000, 10);
    const stoppedAfter = performance.now() - t0;
    assert.ok(stoppedAfter < 500, `source stopped ${stoppedAfter.toFixed(0)} ms after the last reader left`);
    console.log(`# frames per reader: ${counts.join(', ')}; source stopped ${stoppedAfter.toFixed(0)} ms after the last reader left`);
    await baseline();
  } finally {
    for (const r of readers) r.child.kill('SIGKILL');
    await Promise.all(readers.map((r) => r.exited));
  }
});

test('GStreamer rtspsrc over TCP plays 50 buffers to EOS', { timeout: 40_000 }, async () => {
  // Its exit code may only fail by GStreamer's own shutdown race after EOS (see the helper).
  const r = await gstPlay(url(), { buffers: 50, ms: 15_000 });
  assert.equal(r.failure, undefined, r.out);
  await baseline();
});

test('raw player: RTP per track, its consumer in /api/streams, TEARDOWN closes it', { timeout: 20_000 }, async () => {
  const from = app.logs.length;
  const raw = new RawRtspPlayer(app.rtspPort);
  try {
    const sdp = await raw.play(url());
    assert.match(sdp, /a=rtpmap:96 H264\/90000/);
    assert.match(sdp, /a=fmtp:96 packetization-mode=1;profile-level-id=[0-9A-F]{6};sprop-parameter-sets=[A-Za-z0-9+/=]+,[A-Za-z0-9+/=]+/);
    assert.match(sdp, /a=rtpmap:97 opus\/48000\/2/);
    await waitFor('25 video frames and audio', () => raw.frames(0) >= 25 && raw.track(1).length > 10, 10_000);
    const video = raw.track(0);
    assert.equal(video[0]!.firstByte & 0x1f, 7, 'video starts with the SPS of a keyframe');
    assert.ok(video.every((p) => p.payloadType === 96 && p.ssrc === video[0]!.ssrc));
    assert.ok(raw.track(1).every((p) => p.payloadType === 97));
    // A sender report per track with its first frame, on the track's RTCP channel.
    for (const [i, track] of [raw.track(0), raw.track(1)].entries()) {
      const sr = raw.rtcp.find((r) => r.channel === raw.channels[i]! + 1 && r.packetType === 200);
      assert.ok(sr, `sender report for track ${i}`);
      assert.equal(sr.ssrc, track[0]!.ssrc);
      const ntpSecs = sr.data.readUInt32BE(8) - 2_208_988_800;
      assert.ok(Math.abs(ntpSecs - Date.now() / 1000) < 10, 'NTP time is now');
    }
    const { body } = await app.json<{ demo: { consumers: { type: string; state: string; protocol: string }[] } }>('/api/streams');
    assert.deepEqual(
      body.demo.consumers.map((c) => [c.type, c.state, c.protocol]),
      [['rtsp', 'playing', 'rtsp+tcp']],
    );
    const r = await raw.request('TEARDOWN', url());
    assert.equal(r.status, 200);
    await app.waitLog(closedLog(/^TEARDOWN$/), 2000, from);
    // The session is gone at once (and the source with it); the connection stays for the client.
    await waitFor('no consumer and no source', async () => (await app.objects()).RtspConsumer === 0 && app.children().length === 0, 2000);
    assert.equal((await raw.request('PAUSE', url())).status, 200, 'a late PAUSE (GStreamer sends one) is harmless');
    assert.equal((await raw.request('PLAY', url())).status, 455);
    raw.destroy();
    await baseline();
  } finally {
    raw.destroy();
  }
});

test('closing the socket closes the consumer', { timeout: 20_000 }, async () => {
  const from = app.logs.length;
  const raw = new RawRtspPlayer(app.rtspPort);
  try {
    await raw.play(url());
    await waitFor('10 video frames', () => raw.frames(0) >= 10, 10_000);
    raw.destroy();
    // A FIN, or a reset when the client dropped unread data: either way the client is gone.
    const closed = await app.waitLog((l) => l.msg === 'rtsp session closed', 3000, from);
    assert.match(String(closed.reason), /connection closed by the client/);
    assert.equal(closed.stream, 'demo');
    assert.match(String(closed.remote), /^127\.0\.0\.1:\d+$/);
    await baseline();
  } finally {
    raw.destroy();
  }
});

test('a player that sends nothing is closed at the session timeout', { timeout: 20_000 }, async () => {
  const from = app.logs.length;
  const raw = new RawRtspPlayer(app.rtspPort);
  try {
    await raw.play(url());
    const t0 = performance.now();
    await raw.closed;
    const after = performance.now() - t0;
    assert.ok(after >= SESSION_TIMEOUT_MS - 100 && after < SESSION_TIMEOUT_MS + 1500, `closed after ${after.toFixed(0)} ms`);
    assert.ok(raw.frames(0) >= 25, `it got frames until then (${raw.frames(0)})`);
    await app.waitLog(closedLog(/^session timeout/), 1000, from);
    await baseline();
  } finally {
    raw.destroy();
  }
});

test('keep-alives hold a session past the timeout', { timeout: 20_000 }, async () => {
  const raw = new RawRtspPlayer(app.rtspPort);
  try {
    await raw.play(url());
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, SESSION_TIMEOUT_MS / 2));
      assert.equal((await raw.request('GET_PARAMETER', url())).status, 200);
    }
    assert.ok(!raw.socket.destroyed, 'still connected after 1.5 timeouts');
  } finally {
    raw.destroy();
  }
  await baseline();
});

test('a reader that stops reading is dropped; the others keep their frame rate', { timeout: 40_000 }, async () => {
  const from = app.logs.length;
  const good = new RawRtspPlayer(app.rtspPort);
  const frozen = new RawRtspPlayer(app.rtspPort);
  // Both keep their sessions alive: only the unread data may get the frozen one dropped.
  const keepAlive = setInterval(() => {
    good.poke(url('big'));
    good.forgetResponses();
    frozen.poke(url('big'));
  }, 1000);
  try {
    await good.play(url('big'));
    await frozen.play(url('big'));
    frozen.socket.pause();
    const t0 = performance.now();
    const dropped = await app.waitLog(closedLog(/cannot keep up/), 25_000, from);
    const droppedAfter = performance.now() - t0;
    // One more second on the good reader after the drop.
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const elapsed = (performance.now() - t0) / 1000;
    const fps = good.frames(0, t0) / elapsed;
    const fpsAfter = good.frames(0, t1) / ((performance.now() - t1) / 1000);
    console.log(`# frozen reader dropped after ${droppedAfter.toFixed(0)} ms (${String(dropped.reason)}); good reader ${fps.toFixed(1)} fps meanwhile, ${fpsAfter.toFixed(1)} fps after`);
    assert.ok(fps >= 20, `the good reader kept ${fps.toFixed(1)} fps`);
    assert.ok(fpsAfter >= 18, `and ${fpsAfter.toFixed(1)} fps after the drop`);
    const o = await app.objects();
    assert.equal(o.RtspConsumer, 1, 'only the good reader is left');
    assert.equal(metric(await scrape(app), 'camrelay_consumers_dropped_total', { kind: 'rtsp' }), 1, 'the drop is counted in /metrics');
  } finally {
    clearInterval(keepAlive);
    good.destroy();
    frozen.destroy();
  }
  await baseline();
});

test('the source reconnects under a reader: RTP sequence and timestamps stay continuous', { timeout: 30_000 }, async () => {
  const from = app.logs.length;
  const raw = new RawRtspPlayer(app.rtspPort);
  const keepAlive = setInterval(() => {
    raw.poke(url());
    raw.forgetResponses();
  }, 1000);
  try {
    await raw.play(url());
    await waitFor('25 video frames', () => raw.frames(0) >= 25, 10_000);
    const [pid] = app.children();
    assert.ok(pid, 'an ffmpeg source child');
    const before = raw.track(0).length;
    process.kill(pid, 'SIGKILL');
    await app.waitLog((l) => l.msg === 'retrying source', 5000, from);
    await app.waitLog((l) => l.msg === 'stream state' && l.state === 'live', 10_000, app.logs.length);
    await waitFor('25 more video frames', () => raw.track(0).slice(before).filter((p) => p.marker).length >= 25, 10_000);
    assert.notEqual(app.children()[0], pid, 'a new ffmpeg');
    for (const i of [0, 1]) {
      const pkts = raw.track(i);
      const gaps = pkts.filter((p, k) => k > 0 && p.seq !== ((pkts[k - 1]!.seq + 1) & 0xffff));
      assert.equal(gaps.length, 0, `track ${i}: sequence numbers continuous over ${pkts.length} packets`);
      assert.ok(pkts.every((p) => p.ssrc === pkts[0]!.ssrc), `track ${i}: one SSRC`);
      const back = pkts.filter((p, k) => k > 0 && ((p.timestamp - pkts[k - 1]!.timestamp) | 0) < 0);
      assert.equal(back.length, 0, `track ${i}: timestamps never go back`);
    }
    // Frames of one source are 3600 apart (25 fps); across the reconnect the timeline steps by
    // one 20 ms frame instead, once, and the new source starts with a keyframe.
    const v = raw.track(0);
    const steps = v.map((p, k) => (k === 0 ? 0 : (p.timestamp - v[k - 1]!.timestamp) | 0));
    const joins = steps.flatMap((d, k) => (d === 1800 ? [k] : []));
    assert.equal(joins.length, 1, `one join in the timeline (steps: ${[...new Set(steps)].join(', ')})`);
    const gapAt = joins[0]!;
    assert.ok(steps.every((d, k) => k === gapAt || d === 0 || d === 3600), 'every other step is a frame');
    const step = steps[gapAt]!;
    assert.equal(v[gapAt]!.firstByte & 0x1f, 7, 'the new source starts with SPS (a keyframe)');
    console.log(`# reconnect: ${v.length} video packets, gap of ${(v[gapAt]!.at - v[gapAt - 1]!.at).toFixed(0)} ms, seq ${v[gapAt - 1]!.seq} → ${v[gapAt]!.seq}, ts step ${step}`);
  } finally {
    clearInterval(keepAlive);
    raw.destroy();
  }
  await baseline();
});
