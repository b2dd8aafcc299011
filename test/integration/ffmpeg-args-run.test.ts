import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { ChildProcessOwner, type ChildExit } from '../../src/process/child.js';
import { parseFfmpegUrl } from '../../src/sources/ffmpeg-url.js';
import { buildFfmpegArgs } from '../../src/sources/ffmpeg-args.js';

// The command lines of ffmpeg-args.test.ts, run for real on Debian's ffmpeg: the filter graphs
// parse, the encoders accept their options, and what is published is what browsers decode.

setRootLogger(pino({ level: 'silent' }));
const FFMPEG = '/usr/bin/ffmpeg';
const GRACE = { quit: 300, term: 500 };

async function run(args: string[], label: string): Promise<{ exit: ChildExit; stderr: string[] }> {
  const c = new ChildProcessOwner({ bin: FFMPEG, args, label, grace: GRACE });
  try {
    const exit = await c.exited;
    return { exit, stderr: c.lastStderr() };
  } finally {
    c.close();
    await c.done;
  }
}

function probe(file: string): Promise<Record<string, string>[]> {
  return new Promise((resolve, reject) => {
    execFile('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', file], (err, out) => {
      if (err) reject(err);
      else resolve((JSON.parse(out) as { streams: Record<string, string>[] }).streams);
    });
  });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A TCP port in LISTEN state, read from /proc (connecting would use up ffmpeg's one accept). */
function listening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1]?.endsWith(hex) === true && f[3] === '0A';
    });
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the virtual demo input runs on this ffmpeg (filter graph, clock, encoders)', { timeout: 30000 }, async () => {
  for (const url of [
    'ffmpeg:virtual?video=testsrc2&size=1280x720#video=h264#audio=opus',
    'ffmpeg:virtual?video=testsrc2&size=320x240&audio=sine&frequency=440#video=h264#audio=opus#audio=pcma',
  ]) {
    const args = buildFfmpegArgs(parseFfmpegUrl(url), 'rtsp://unused', { output: { nullSeconds: 1 } });
    const { exit, stderr } = await run(args, 'ffmpeg virtual');
    assert.deepEqual(exit, { code: 0, signal: null }, `${url}: ${stderr.join('\n')}`);
    assert.deepEqual(stderr, [], url);
  }
});

test('file inputs: copy and transcode with scale and rotate', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camrelay-ffrun-'));
  try {
    const file = join(dir, 'clip.mp4');
    const make = await run(
      ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15', '-f', 'lavfi', '-i', 'sine',
        '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-y', file],
      'ffmpeg make clip',
    );
    assert.equal(make.exit.code, 0, make.stderr.join('\n'));
    for (const url of [`ffmpeg:${file}#video=copy`, `ffmpeg:${file}#video=h264#audio=opus#width=160#rotate=90`, `ffmpeg:${file}`]) {
      const args = buildFfmpegArgs(parseFfmpegUrl(url), 'rtsp://unused', { output: { nullSeconds: 1 } });
      const { exit, stderr } = await run(args, 'ffmpeg file');
      assert.deepEqual(exit, { code: 0, signal: null }, `${url}: ${stderr.join('\n')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('published RTSP over TCP carries Constrained Baseline H.264 and 48 kHz stereo Opus', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camrelay-ffrun-'));
  const port = await freePort();
  const url = `rtsp://127.0.0.1:${port}/pub`;
  const out = join(dir, 'got.mkv');
  // ffmpeg's own RTSP server mode takes one ANNOUNCE/RECORD publisher.
  const receiver = new ChildProcessOwner({
    bin: FFMPEG,
    args: ['-hide_banner', '-loglevel', 'error', '-rtsp_flags', 'listen', '-timeout', '15', '-i', url, '-t', '1.5', '-c', 'copy', '-y', out],
    label: 'ffmpeg receiver',
    grace: GRACE,
  });
  let publisher: ChildProcessOwner | undefined;
  try {
    await until(`the receiver to listen on ${port}`, () => listening(port), 10000);
    const spec = parseFfmpegUrl('ffmpeg:virtual?video=testsrc2&size=320x240&audio=sine#video=h264#audio=opus');
    publisher = new ChildProcessOwner({ bin: FFMPEG, args: buildFfmpegArgs(spec, url), label: 'ffmpeg publisher', grace: GRACE });
    const got = await receiver.exited;
    assert.equal(got.code, 0, receiver.lastStderr().join('\n'));
    const streams = await probe(out);
    const video = streams.find((s) => s.codec_type === 'video');
    const audio = streams.find((s) => s.codec_type === 'audio');
    assert.equal(video?.codec_name, 'h264');
    assert.equal(video?.profile, 'Constrained Baseline');
    assert.equal(String(video?.has_b_frames), '0');
    assert.equal(audio?.codec_name, 'opus');
    assert.equal(String(audio?.sample_rate), '48000');
    assert.equal(String(audio?.channels), '2');
  } finally {
    publisher?.close();
    receiver.close();
    await Promise.all([publisher?.done, receiver.done]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ffmpeg stops cleanly on 'q', before any signal", { timeout: 30000 }, async () => {
  const spec = parseFfmpegUrl('ffmpeg:virtual?video=testsrc2&size=320x240#video=h264');
  const c = new ChildProcessOwner({
    bin: FFMPEG,
    args: buildFfmpegArgs(spec, 'rtsp://unused', { output: { nullSeconds: 60 }, logLevel: 'info' }),
    label: 'ffmpeg q',
    grace: { quit: 5000, term: 5000 },
  });
  // With -loglevel info ffmpeg announces its output once it is encoding.
  await new Promise<void>((resolve) => {
    const on = (line: string): void => {
      if (!/^Output #0/.test(line)) return;
      c.off('stderr', on);
      resolve();
    };
    c.on('stderr', on);
  });
  const t0 = Date.now();
  c.close();
  await c.done;
  assert.deepEqual(await c.exited, { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 4000);
});

// Issue 13 item 4: an http input may only open network protocols, even where an HLS playlist
// names its segments: a playlist from the network naming a local file gets nothing from it.
// (Debian's ffmpeg 5.1 HLS demuxer already limits a network playlist's segments to its default
// list and to media extensions; ours is narrower and does not depend on the build.)
test('an HLS playlist over http naming a file: segment cannot make ffmpeg read the file', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camrelay-hls-'));
  const segment = join(dir, 'seg0.ts');
  const made = await run(['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x90:rate=10', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'mpegts', '-y', segment], 'segment');
  assert.equal(made.exit.code, 0);
  const playlist = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\nfile:${segment}\n#EXT-X-ENDLIST\n`;
  const server = (await import('node:http')).createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/vnd.apple.mpegurl' }).end(playlist));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/live.m3u8`;
  try {
    const args = buildFfmpegArgs(parseFfmpegUrl(`ffmpeg:${url}#video=copy`), 'unused', { output: { nullSeconds: 1 } });
    assert.ok(args.includes('-protocol_whitelist'));
    const ours = await run(args, 'hls');
    assert.notEqual(ours.exit.code, 0, 'ffmpeg must not play the local segment');
    // Our list, not the HLS demuxer's own default (which also lets udp, rtp and data: through).
    assert.match(ours.stderr.join('\n'), /Protocol 'file' not on whitelist 'http,https,tls,tcp,crypto,httpproxy'/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
