// rtsp.username/password on camrelay's RTSP output, against ffprobe and a raw client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { waitFor } from '../helpers/wait.js';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { AuthAnswerer, parseChallenges } from '../../src/rtsp/auth.js';
import { RtspMessageReader, type RtspResponse } from '../../src/rtsp/message.js';
import { startMiniRelay } from '../helpers/rtsp-mini-relay.js';
import { RecordingProxy } from '../helpers/recording-proxy.js';
import { gstPlay } from '../helpers/gst-player.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';

async function ffprobe(u: string): Promise<{ code: number | null; codecs: string[]; stderr: string }> {
  const child = spawn('/usr/bin/ffprobe', ['-v', 'error', '-rtsp_transport', 'tcp', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', u], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(t);
  return { code, codecs: out.split('\n').map((s) => s.trim()).filter(Boolean), stderr: err };
}

test('with rtsp.username/password: 401 without or with wrong credentials, plays with the right ones', { timeout: 40_000 }, async () => {
  const secured = await CamrelayProcess.start(testConfig({ demo: DEMO, pcma: 'ffmpeg:demo#audio=pcma' }, '', 'username: admin, password: "s3cret pass"'));
  const u = (cred = '') => `rtsp://${cred}127.0.0.1:${secured.rtspPort}/demo`;
  try {
    const raw = new RawRtspPlayer(secured.rtspPort);
    try {
      const r = await raw.request('DESCRIBE', u());
      assert.equal(r.status, 401);
      const challenges = r.headers.getAll('www-authenticate');
      assert.equal(challenges.length, 2);
      assert.match(challenges[0]!, /^Digest realm="camrelay", nonce="[0-9a-f]+"/);
      assert.match(challenges[1]!, /^Basic realm="camrelay"/);
      const basic = 'Basic ' + Buffer.from('admin:wrong').toString('base64');
      assert.equal((await raw.request('DESCRIBE', u(), { Authorization: basic })).status, 401);
    } finally {
      raw.destroy();
    }
    const none = await ffprobe(u());
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /401/);
    const wrong = await ffprobe(u('admin:nope@'));
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401/);
    assert.equal(secured.children().length, 0, 'no source started for a refused player');
    const right = await ffprobe(u('admin:s3cret%20pass@'));
    assert.equal(right.code, 0, right.stderr);
    assert.deepEqual(right.codecs, ['h264', 'opus']);
    // Basic works too, on every request of the session.
    const basicPlayer = new RawRtspPlayer(secured.rtspPort);
    try {
      await basicPlayer.play(u(), { Authorization: 'Basic ' + Buffer.from('admin:s3cret pass').toString('base64') });
      await waitFor('frames with Basic auth', () => basicPlayer.frames(0) >= 5, 10_000);
      // A transcode reads another stream (kept running by the player above) from this server:
      // camrelay gives its ffmpeg the credentials.
      const transcode = await ffprobe(u('admin:s3cret%20pass@').replace('/demo', '/pcma'));
      assert.equal(transcode.code, 0, transcode.stderr);
      assert.deepEqual(transcode.codecs, ['pcm_alaw']);
    } finally {
      basicPlayer.destroy();
    }
  } finally {
    await secured.stop();
  }
});

// ---- issue 12, item 6: Digest nonces -----------------------------------------------------------

const CREDS = { username: 'admin', password: 's3cret pass' };

/** A DESCRIBE answered 401, and the Digest answerer for its challenge. */
async function challenged(raw: RawRtspPlayer, u: string): Promise<{ answerer: AuthAnswerer; challenge: string }> {
  const r = await raw.request('DESCRIBE', u);
  assert.equal(r.status, 401);
  const challenge = r.headers.getAll('www-authenticate')[0]!;
  const digest = parseChallenges([challenge]).find((c) => c.scheme === 'digest')!;
  return { answerer: new AuthAnswerer(CREDS, digest), challenge };
}

test('Digest: a captured Authorization header does not replay on another connection, nor authorise another path, nor count again', { timeout: 40_000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: DEMO, other: DEMO }, '', 'username: admin, password: "s3cret pass"'));
  const u = (name: string) => `rtsp://127.0.0.1:${app.rtspPort}/${name}`;
  const a = new RawRtspPlayer(app.rtspPort);
  const b = new RawRtspPlayer(app.rtspPort);
  try {
    const first = await challenged(a, u('demo'));
    const second = await challenged(a, u('demo'));
    assert.notEqual(first.challenge, second.challenge, 'a fresh nonce per challenge');
    assert.match(first.challenge, /qop="auth"/);
    const captured = second.answerer.header('DESCRIBE', u('demo'));
    // On another connection the captured header is refused (the password would be needed to answer the new nonce).
    const replayed = await b.request('DESCRIBE', u('demo'), { Authorization: captured });
    assert.equal(replayed.status, 401);
    assert.match(replayed.headers.getAll('www-authenticate')[0]!, /stale=true/);
    // A digest computed for path A does not authorise path B, for DESCRIBE or ANNOUNCE.
    assert.equal((await a.request('DESCRIBE', u('other'), { Authorization: second.answerer.header('DESCRIBE', u('demo')) })).status, 401);
    assert.equal((await a.request('ANNOUNCE', u('other'), { Authorization: second.answerer.header('ANNOUNCE', u('demo')), 'Content-Type': 'application/sdp' })).status, 401);
    // On its own connection the header is accepted once; its nonce count again is a replay.
    assert.equal((await a.request('DESCRIBE', u('demo'), { Authorization: captured })).status, 200);
    const again = await a.request('DESCRIBE', u('demo'), { Authorization: captured });
    assert.equal(again.status, 401);
    assert.doesNotMatch(again.headers.getAll('www-authenticate')[0]!, /stale=true/);
  } finally {
    a.destroy();
    b.destroy();
    await app.stop();
  }
});

test('Digest: an expired nonce answers 401 with stale=true, and ffmpeg authenticates again by itself and plays', { timeout: 40_000 }, async () => {
  // The nonce ffmpeg's DESCRIBE used expires while the (slow) DESCRIBE is answered, so its SETUP
  // meets a stale nonce, as a long session's keep-alives do after 60 s.
  const relay = await startMiniRelay({ demo: [DEMO] }, { auth: CREDS, nonceTtlMs: 400, describeDelayMs: 1000 });
  const proxy = new RecordingProxy(relay.server.port);
  try {
    const port = await proxy.listen();
    const r = await ffmpeg(['-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', `rtsp://admin:s3cret%20pass@127.0.0.1:${port}/demo`, '-t', '2', '-c', 'copy', '-f', 'null', '-']);
    assert.equal(r.code, 0, r.stderr);
    const answers = proxy.connections.flatMap((c) => responsesOf(Buffer.concat(c.fromServer)));
    const statuses = answers.map((x) => x.status);
    const staleAt = answers.findIndex((x) => x.status === 401 && /stale=true/.test(x.headers.getAll('www-authenticate')[0] ?? ''));
    assert.ok(staleAt > 0, `a stale challenge among ${statuses.join(' ')}`);
    assert.equal(answers[staleAt + 1]?.status, 200, `the retry after it is answered: ${statuses.join(' ')}`);
    assert.ok(statuses.filter((x) => x === 200).length >= 4, statuses.join(' '));
  } finally {
    await proxy.close();
    await relay.close();
  }
});

function responsesOf(bytes: Buffer): RtspResponse[] {
  const out: RtspResponse[] = [];
  for (const item of new RtspMessageReader({ maxHeaderBytes: 64 * 1024, maxBodyBytes: 64 * 1024 }).push(bytes)) if (item.type === 'response') out.push(item);
  return out;
}

async function ffmpeg(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('/usr/bin/ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(t);
  return { code, stderr: err };
}

test('Digest with qop offered: GStreamer rtspsrc (which answers without qop) still authenticates and plays', { timeout: 40_000 }, async () => {
  const relay = await startMiniRelay({ demo: [DEMO] }, { auth: CREDS });
  try {
    // 30 buffers to EOS is the proof it authenticated and played; only GStreamer's own shutdown
    // race after that (see the helper) may fail its exit.
    const r = await gstPlay(relay.url('demo'), { buffers: 30, ms: 20_000, extra: ['user-id=admin', 'user-pw=s3cret pass'] });
    assert.equal(r.failure, undefined, r.out);
  } finally {
    await relay.close();
  }
});
