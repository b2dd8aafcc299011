import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ConfigReadOnlyError, ConfigStore } from '../../src/config/save.js';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { log, setRootLogger } from '../../src/core/log.js';

const ORIGINAL = `# camrelay test config
api:
  listen: ":1984"   # the API

streams:
  # the first camera
  cam1: rtsp://a/1
  porch:
    sources: [ "rtsp://b/2" ]
    idle_timeout: 30s   # slow to wake
`;

function withFile(run: (file: string, dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'camrelay-save-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, ORIGINAL);
    try {
      await run(file, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('adding and replacing streams keeps comments, order and per-stream settings', withFile(async (file) => {
  const store = new ConfigStore(file);
  const added = await store.setStream('garage', ['rtsp://c/3', 'ffmpeg:garage#audio=opus']);
  assert.deepEqual(added.sources, ['rtsp://c/3', 'ffmpeg:garage#audio=opus']);
  await store.setStream('cam1', ['rtsp://a/9']);
  await store.setStream('porch', ['rtsp://b/5']);
  const text = readFileSync(file, 'utf8');
  for (const comment of ['# camrelay test config', '# the API', '# the first camera', '# slow to wake']) assert.ok(text.includes(comment), comment);
  const c = loadConfig(file);
  assert.deepEqual(Object.keys(c.streams), ['cam1', 'porch', 'garage']);
  assert.deepEqual(c.streams.cam1!.sources, ['rtsp://a/9']);
  assert.deepEqual(c.streams.porch!.sources, ['rtsp://b/5']);
  assert.equal(c.streams.porch!.settings.idleTimeout, 30000, 'the mapping form keeps its overrides');
  await store.deleteStream('cam1');
  assert.deepEqual(Object.keys(loadConfig(file).streams), ['porch', 'garage']);
}));

test('concurrent saves are applied one after another, none lost', withFile(async (file) => {
  const store = new ConfigStore(file);
  await Promise.all(Array.from({ length: 10 }, (_, i) => store.setStream(`s${i}`, [`rtsp://h/${i}`])));
  assert.equal(Object.keys(loadConfig(file).streams).length, 12);
}));

test('a crash between writing and renaming leaves the old file intact and no temp file', withFile(async (file, dir) => {
  const store = new ConfigStore(file, {
    beforeRename: () => {
      throw new Error('simulated crash');
    },
  });
  await assert.rejects(store.setStream('garage', ['rtsp://c/3']), /simulated crash/);
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
  assert.deepEqual(readdirSync(dir), ['config.yaml']);
}));

test('a change that would make the config invalid is refused and nothing is written', withFile(async (file) => {
  const store = new ConfigStore(file);
  await assert.rejects(store.setStream('bad name', ['rtsp://c/3']), /must not contain/);
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
}));

// Issue 12, item 7: a single-file bind mount, a symlinked config, a read-only file, owner and mode.

/** Log lines the store writes, captured from the root logger. */
function captureLog(): { lines: Record<string, unknown>[]; restore: () => void } {
  const lines: Record<string, unknown>[] = [];
  const previous = log;
  setRootLogger(pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) }));
  return { lines, restore: () => setRootLogger(previous) };
}

const failRename = (code: string) => (from: string, to: string) => {
  throw Object.assign(new Error(`${code}: simulated, rename '${from}' -> '${to}'`), { code });
};

for (const code of ['EBUSY', 'EXDEV']) {
  test(`a rename refused with ${code} (a bind-mounted file) saves in place: same inode, new text, no temp file left, one warning`, withFile(async (file, dir) => {
    const inode = statSync(file).ino;
    const captured = captureLog();
    try {
      const store = new ConfigStore(file, { rename: failRename(code) });
      await store.setStream('garage', ['rtsp://c/3']);
      // Shorter than what is there: the old tail must not survive.
      await store.deleteStream('garage');
      await store.deleteStream('porch');
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes('porch') && !text.includes('slow to wake'), text);
      assert.ok(text.endsWith('\n') && text.includes('# the first camera'), text);
      assert.deepEqual(Object.keys(loadConfig(file).streams), ['cam1']);
      assert.equal(statSync(file).ino, inode, 'the same file, written in place');
      assert.deepEqual(readdirSync(dir), ['config.yaml']);
      const warns = captured.lines.filter((l) => l.level === 40);
      assert.equal(warns.length, 1, 'warned once for three saves');
      assert.match(String(warns[0]!.msg), /saving it in place/);
      assert.match(String(warns[0]!.why), new RegExp(`^${code}: `));
    } finally {
      captured.restore();
    }
  }));
}

test('a crash inside an in-place write leaves a file camrelay refuses by name, and the complete new text next to it', withFile(async (file, dir) => {
  let seen: { error: unknown; temps: string[]; tempText: string } | undefined;
  const store = new ConfigStore(file, {
    rename: failRename('EBUSY'),
    inPlaceWritten: () => {
      // What the disk holds if camrelay dies at this moment.
      const temps = readdirSync(dir).filter((f) => f.endsWith('.tmp'));
      let error: unknown;
      try {
        loadConfig(file);
      } catch (e) {
        error = e;
      }
      seen = { error, temps, tempText: readFileSync(path.join(dir, temps[0]!), 'utf8') };
    },
  });
  const prev = log;
  setRootLogger(pino({ level: 'silent' }));
  try {
    await store.deleteStream('porch');
  } finally {
    setRootLogger(prev);
  }
  assert.ok(seen, 'the hook ran');
  assert.ok(seen.error instanceof ConfigError, `refused at load: ${String(seen.error)}`);
  assert.match(seen.error.message, /config\.yaml:1:1: a save through the API was interrupted/);
  assert.match(seen.error.message, /\.config\.yaml\.\*\.tmp/);
  assert.equal(seen.temps.length, 1);
  assert.deepEqual(Object.keys(parseConfig(seen.tempText, 'tmp').streams), ['cam1'], 'the temp file holds the complete new text');
  // And once the write finished: the new file, the temp file gone.
  assert.deepEqual(Object.keys(loadConfig(file).streams), ['cam1']);
  assert.deepEqual(readdirSync(dir), ['config.yaml']);
}));

test('a symlinked config stays a symlink: the file it names is replaced, beside it', withFile(async (file, dir) => {
  const data = path.join(dir, 'data');
  mkdirSync(data);
  const real = path.join(data, 'camrelay.yaml');
  writeFileSync(real, ORIGINAL);
  rmSync(file);
  symlinkSync(real, file);
  const store = new ConfigStore(file);
  await store.setStream('garage', ['rtsp://c/3']);
  assert.ok(lstatSync(file).isSymbolicLink(), 'config.yaml is still a symlink');
  assert.equal(readlinkSync(file), real);
  assert.deepEqual(Object.keys(loadConfig(real).streams), ['cam1', 'porch', 'garage']);
  assert.ok(readFileSync(real, 'utf8').includes('# the first camera'));
  assert.deepEqual(readdirSync(data), ['camrelay.yaml'], 'no temp file left beside the target');
  assert.deepEqual(readdirSync(dir).sort(), ['config.yaml', 'data']);
}));

test('a file its owner made read-only (chmod 444) is refused with its name and mode, even for root, and left as it was', withFile(async (file, dir) => {
  chmodSync(file, 0o444);
  const store = new ConfigStore(file);
  const err = await store.setStream('garage', ['rtsp://c/3']).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ConfigReadOnlyError, String(err));
  assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is read-only \\(mode 0444\\)`));
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
  assert.equal(statSync(file).mode & 0o777, 0o444);
  assert.deepEqual(readdirSync(dir), ['config.yaml']);
  // Through a symlink, both names are given.
  const link = path.join(dir, 'link.yaml');
  symlinkSync(file, link);
  const viaLink = await new ConfigStore(link).deleteStream('cam1').then(() => undefined, (e: unknown) => e);
  assert.ok(viaLink instanceof ConfigReadOnlyError);
  assert.ok(viaLink.message.startsWith(`${link} (a symlink to ${file}) is read-only (mode 0444)`), viaLink.message);
}));

test('the saved file keeps its mode and owner, replaced or written in place', withFile(async (file) => {
  for (const hooks of [{}, { rename: failRename('EBUSY') }]) {
    chmodSync(file, 0o664);
    const owner = process.getuid?.() === 0 ? { uid: 1234, gid: 5678 } : { uid: statSync(file).uid, gid: statSync(file).gid };
    chownSync(file, owner.uid, owner.gid);
    const prev = log;
    setRootLogger(pino({ level: 'silent' }));
    try {
      await new ConfigStore(file, hooks).setStream('garage', [`rtsp://c/${Object.keys(hooks).length}`]);
    } finally {
      setRootLogger(prev);
    }
    const st = statSync(file);
    assert.equal((st.mode & 0o777).toString(8), '664', 'mode kept (not cut by the umask)');
    assert.deepEqual({ uid: st.uid, gid: st.gid }, owner, 'owner kept');
  }
}));
