// Issue 12, item 7: docker-compose.yml mounts config.yaml as a single file. A rename over a
// bind-mounted file fails (EBUSY), so every PUT and DELETE answered 500. Simulated with a real
// `mount --bind` of one file: the "host" file is the bind source, camrelay runs on the mount point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { loadConfig } from '../../src/config/load.js';

/** Why a single-file bind mount cannot be made here, found by making one; undefined when it can. */
function bindMountRefused(): string | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-mount-probe-'));
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  writeFileSync(a, 'a');
  writeFileSync(b, '');
  try {
    execFileSync('mount', ['--bind', a, b], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    return stderr || (e as Error).message;
  }
  execFileSync('umount', [b]);
  rmSync(dir, { recursive: true, force: true });
  return undefined;
}

const inPlace = (l: { msg?: unknown }) => /saving it in place/.test(String(l.msg));

test('config.yaml bind-mounted as a single file (docker-compose): PUT and DELETE succeed, the host file changes in place', { timeout: 60000 }, async (t) => {
  const refused = bindMountRefused();
  if (refused) {
    t.skip(`mount --bind of a single file is not permitted here (needs root or CAP_SYS_ADMIN): ${refused}`);
    return;
  }
  const host = mkdtempSync(path.join(tmpdir(), 'camrelay-host-'));
  const hostFile = path.join(host, 'config.yaml');
  let app = await CamrelayProcess.start(`# on the host\n${testConfig({ demo: 'ffmpeg:virtual?video=testsrc2#video=h264' })}`);
  const mountPoint = app.configFile;
  let mounted = false;
  try {
    writeFileSync(hostFile, readFileSync(mountPoint));
    const inode = statSync(hostFile).ino;
    execFileSync('mount', ['--bind', hostFile, mountPoint]);
    mounted = true;
    // Started on the bind-mounted path, as in the container.
    app = await app.restart();

    const put = await app.json<{ error?: string }>('/api/streams?name=garage&src=rtsp%3A%2F%2F127.0.0.1%3A9%2Fgarage', { method: 'PUT' });
    assert.equal(put.status, 200, `PUT answered ${put.status}: ${put.body?.error ?? ''}`);
    const text = readFileSync(hostFile, 'utf8');
    assert.ok(text.startsWith('# on the host\n'), 'the comment is kept');
    assert.deepEqual(loadConfig(hostFile).streams.garage?.sources, ['rtsp://127.0.0.1:9/garage'], 'the host file has the new stream');
    assert.equal(statSync(hostFile).ino, inode, 'written in place: the host file is the same file');
    assert.equal(readFileSync(mountPoint, 'utf8'), text, 'the container sees the same text');
    const warned = await app.waitLog(inPlace, 2000);
    assert.equal(warned.level, 40, 'logged at warn');
    assert.match(String(warned.why), /^EBUSY: it is a mount point/);

    const del = await app.json<{ error?: string }>('/api/streams?src=garage', { method: 'DELETE' });
    assert.equal(del.status, 200, `DELETE answered ${del.status}: ${del.body?.error ?? ''}`);
    assert.deepEqual(Object.keys(loadConfig(hostFile).streams), ['demo'], 'the host file lost the stream again');
    assert.equal(app.logs.filter(inPlace).length, 1, 'the warning is given once');
    assert.equal(statSync(hostFile).ino, inode);

    // The user makes it read-only on the host: refused with the file and the reason, not written.
    chmodSync(hostFile, 0o444);
    const before = readFileSync(hostFile, 'utf8');
    const ro = await app.json<{ error?: string }>('/api/streams?name=porch&src=rtsp%3A%2F%2F127.0.0.1%3A9%2Fporch', { method: 'PUT' });
    assert.equal(ro.status, 409, 'a read-only config is a state the user chose, not a server error');
    assert.equal(ro.body?.error, `saving config: ${mountPoint} is read-only (mode 0444): camrelay does not change a file its owner made read-only; make it writable (chmod u+w) to save changes made through the API`);
    assert.equal(readFileSync(hostFile, 'utf8'), before);
    assert.equal((await app.json('/api/streams?src=porch')).status, 404, 'nor is the stream added');
  } finally {
    if (mounted) execFileSync('umount', [mountPoint]);
    await app.stop();
    rmSync(host, { recursive: true, force: true });
  }
});
