// rtsp.username/password on camrelay's RTSP output, against ffprobe and a raw client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { waitFor } from '../helpers/wait.js';

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
