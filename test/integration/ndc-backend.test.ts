// The node-datachannel backend on its own: a real werift viewer against NdcPeer on loopback.
// What the session relies on (answer, trickle, state, activity, close) and what is particular to
// this backend: one UDP port shared by every peer, the DTLS role, native resources released.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { liveObjects } from '../../src/core/objects.js';
import { DEFAULTS, validateConfig } from '../../src/config/schema.js';
import type { IceCandidateInit, SendTrack, WebRtcPeer } from '../../src/outputs/webrtc/backend.js';
import { NdcBackend, NdcListenError } from '../../src/outputs/webrtc/ndc-backend.js';
import { nativeLive } from '../../src/outputs/webrtc/ndc-native.js';
import { capExtraPriorities, toNdcIceServers } from '../../src/outputs/webrtc/ndc-sdp.js';
import { selectBackend, type SelectedBackend } from '../../src/outputs/webrtc/select-backend.js';
import type { WebRtcSettings } from '../../src/outputs/webrtc/settings.js';
import { NO_HEAD } from '../../src/rtp/payload.js';
import { weriftBackend } from '../../src/outputs/webrtc/werift-backend.js';
import { waitFor, withDeadline } from '../helpers/wait.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { netRows, socketInodes } from '../helpers/proc-sockets.js';

const run = promisify(execFile);

/** Where the prebuilt binary does not load, this backend's tests are skipped (auto runs werift). */
const skip = await import('node-datachannel').then(() => false, (e: unknown) => `node-datachannel does not load here: ${String(e)}`);

// ---------- an H.264 clip as NAL units per access unit ----------

let dir = '';
let aus: Buffer[][] = [];

function splitAnnexB(buf: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 2 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      if (start >= 0) nals.push(buf.subarray(start, buf[i - 1] === 0 ? i - 1 : i));
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) nals.push(buf.subarray(start));
  return nals;
}

/** Access units: a new one at a non-VCL NAL or a first slice after a slice. */
function accessUnits(nals: Buffer[]): Buffer[][] {
  const out: Buffer[][] = [];
  let cur: Buffer[] = [];
  let slice = false;
  for (const n of nals) {
    const t = n[0]! & 0x1f;
    const isSlice = t === 1 || t === 5;
    if (slice && (!isSlice || (n[1]! & 0x80) !== 0)) {
      out.push(cur);
      cur = [];
      slice = false;
    }
    if (t !== 9) cur.push(n); // no access unit delimiters
    if (isSlice) slice = true;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** RFC 6184 mode 1 the simple way: whole NAL units, FU-A above 1100 bytes. */
function packetize(nals: Buffer[]): { head: Buffer; body: Buffer; marker: boolean }[] {
  const out: Buffer[] = [];
  for (const nal of nals) {
    if (nal.length <= 1100) {
      out.push(nal);
      continue;
    }
    const body = nal.subarray(1);
    for (let off = 0; off < body.length; off += 1100) {
      const header = (off === 0 ? 0x80 : 0) | (off + 1100 >= body.length ? 0x40 : 0) | (nal[0]! & 0x1f);
      out.push(Buffer.concat([Buffer.from([(nal[0]! & 0xe0) | 28, header]), body.subarray(off, off + 1100)]));
    }
  }
  return out.map((body, i) => ({ head: NO_HEAD, body, marker: i === out.length - 1 }));
}

/** NAL units back from RTP payloads in order (single NAL units and FU-A only, as sent). */
function depacketize(payloads: Buffer[]): Buffer[] {
  const nals: Buffer[] = [];
  let fu: Buffer[] | undefined;
  for (const p of payloads) {
    const t = p[0]! & 0x1f;
    if (t !== 28) {
      nals.push(p);
      continue;
    }
    if (p[1]! & 0x80) fu = [Buffer.from([(p[0]! & 0xe0) | (p[1]! & 0x1f)])];
    fu?.push(p.subarray(2));
    if (p[1]! & 0x40 && fu) {
      nals.push(Buffer.concat(fu));
      fu = undefined;
    }
  }
  return nals;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camrelay-ndc-'));
  const file = join(dir, 'clip.h264');
  await run('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '1',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', '25', '-f', 'h264', file]);
  aus = accessUnits(splitAnnexB(await readFile(file)));
  assert.ok(aus.length >= 20 && aus[0]!.some((n) => (n[0]! & 0x1f) === 5), `ffmpeg gave ${aus.length} access units`);
});

// ---------- the backend under test: loaded once, as the app does ('auto' picks it here) ----------

let selected: SelectedBackend | undefined;
let udpBaseline: string[] = [];

async function ndc(): Promise<NdcBackend> {
  if (!selected) {
    selected = await selectBackend('auto', { listen: '127.0.0.1:0', loopbackOnly: true });
    udpBaseline = udpSockets();
  }
  assert.ok(selected.backend instanceof NdcBackend, `auto picked ${selected.backend.name}: ${selected.reason}`);
  return selected.backend;
}

after(async () => {
  await selected?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const settings = (over: Partial<WebRtcSettings> = {}): WebRtcSettings => ({
  candidates: [],
  iceServers: [],
  timeouts: { connect: 5000, disconnect: 5000 },
  loopbackOnly: true,
  ...over,
});

/** This process's UDP sockets as 'address:port' (hex, as /proc has them). */
function udpSockets(): string[] {
  return udpOf('self');
}

function udpOf(pid: number | 'self'): string[] {
  const inodes = socketInodes(pid);
  const out: string[] = [];
  for (const t of ['udp', 'udp6'] as const) {
    for (const c of netRows(pid, t)) {
      if (c[9] && inodes.has(c[9])) out.push(c[1]!);
    }
  }
  return out.sort();
}

const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');

function section(sdp: string, kind: string): string {
  const s = sdp.split(/\r\n(?=m=)/).find((p) => p.startsWith(`m=${kind}`));
  assert.ok(s, `no m=${kind} in\n${sdp}`);
  return s;
}

function counts(): Record<string, number> {
  return Object.fromEntries(Object.entries(liveObjects()).filter(([, n]) => n !== 0));
}


const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** Offer → answer (HTTP style: every candidate in it) → the viewer applies it → connected. */
async function connect(peer: WebRtcPeer, viewer: Viewer, kinds: { video?: number; audio?: number } = { video: 97 }): Promise<{ answer: string; video?: SendTrack; audio?: SendTrack }> {
  await peer.setRemoteOffer(await viewer.offer());
  const video = kinds.video === undefined ? undefined : peer.addSendTrack({ mid: '0', kind: 'video', codec: { payloadType: kinds.video, name: 'H264', clockRate: 90000 } });
  const audio = kinds.audio === undefined ? undefined : peer.addSendTrack({ mid: '1', kind: 'audio', codec: { payloadType: kinds.audio, name: 'opus', clockRate: 48000, channels: 2 } });
  await peer.createAnswer();
  await withDeadline(peer.gatheringComplete(), 3000, 'gathering');
  const answer = peer.localDescription();
  await viewer.answer(answer);
  await waitFor('connected', () => peer.state === 'connected', 5000);
  return { answer, video, audio };
}

/** The RTP timestamp sendClip gives access unit i: from near the top of 32 bits, so every byte of it counts. */
const auTimestamp = (i: number) => (0xfffe0000 + i * 3600) >>> 0;

/** Sends the clip's access units, 10 ms apart; returns the NAL units sent. */
async function sendClip(track: SendTrack, firstSeq = 1000): Promise<Buffer[]> {
  let seq = firstSeq;
  const sent: Buffer[] = [];
  for (const [i, au] of aus.entries()) {
    for (const p of packetize(au)) track.write({ ...p, sequenceNumber: seq++ & 0xffff, timestamp: auTimestamp(i) });
    sent.push(...au);
    await new Promise((r) => setTimeout(r, 10));
  }
  return sent;
}

// ---------- tests ----------

// First, before this process loads the library: libjuice's sockets are not close-on-exec, so a
// camrelay started from here later would inherit this process's shared socket (and show it).

test('camrelay on auto: says it runs node-datachannel, binds the one port at start, exits 0 on SIGTERM with a viewer', { timeout: 30000, skip }, async () => {
  const yaml = testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264' }).replace(/^ {2}backend: .*\n/m, '');
  assert.doesNotMatch(yaml, /backend:/, 'the default is what runs');
  const app = await CamrelayProcess.start(yaml);
  let viewer: Viewer | undefined;
  try {
    const l = await app.waitLog((x) => x.msg === 'webrtc backend', 1000);
    assert.equal(l.backend, 'node-datachannel');
    assert.equal(l.reason, 'auto: node-datachannel loaded');
    const udpAtStart = app.sockets().udp;
    assert.equal(udpAtStart, 1, `the shared port, before any viewer: ${udpOf(app.pid).join(', ')}`);
    viewer = new Viewer();
    await viewer.connect(app.base, 'demo');
    await waitFor('video', () => viewer!.video.length > 0, 8000);
    assert.equal(app.sockets().udp, udpAtStart, 'a viewer adds no UDP socket');
    // Shutdown closes the peer, then the library (cleanup), and the process ends by itself.
    assert.equal(await app.stop(10000), 0);
  } finally {
    await viewer?.close();
    await app.stop();
  }
});

test('webrtc.backend node-datachannel with its port taken: camrelay does not start, says why, and exits', { timeout: 30000, skip }, async () => {
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
  const cfgDir = await mkdtemp(join(tmpdir(), 'camrelay-ndc-port-'));
  try {
    const port = taken.address().port;
    const yaml = testConfig({}).replace(/^ {2}listen: .*\n {2}backend: .*\n/m, `  listen: "127.0.0.1:${port}"\n  backend: node-datachannel\n`);
    assert.match(yaml, new RegExp(`listen: "127.0.0.1:${port}"\n  backend: node-datachannel`));
    await writeFile(join(cfgDir, 'config.yaml'), yaml);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', join(cfgDir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    assert.equal(code, 1, `exit status (stdout: ${out})`);
    const fatal = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; err?: string }).find((l) => l.msg === 'camrelay failed to start');
    assert.ok(fatal, out);
    assert.match(fatal.err ?? '', new RegExp(`webrtc\\.listen "127\\.0\\.0\\.1:${port}": cannot bind UDP`));
    assert.doesNotMatch(out, /api listening/, 'nothing else started');
  } finally {
    taken.close();
    await rm(cfgDir, { recursive: true, force: true });
  }
});

test('auto where node-datachannel does not load: camrelay says so, runs werift, and a viewer plays', { timeout: 30000 }, async () => {
  // A module hook in the camrelay process makes the import fail, as a missing or broken binary does.
  const hooks = await mkdtemp(join(tmpdir(), 'camrelay-nondc-'));
  await writeFile(join(hooks, 'hooks.mjs'), `export async function resolve(s, c, next) {
  if (s === 'node-datachannel') throw new Error('simulated: the native addon does not load here');
  return next(s, c);
}\n`);
  await writeFile(join(hooks, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  const yaml = testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264' }).replace(/^ {2}backend: .*\n/m, '');
  const app = await CamrelayProcess.start(yaml, { env: { NODE_OPTIONS: `--import ${join(hooks, 'register.mjs')}` } });
  const viewer = new Viewer();
  try {
    const l = await app.waitLog((x) => x.msg === 'webrtc backend', 1000);
    assert.equal(l.backend, 'werift');
    assert.equal(l.reason, 'auto: node-datachannel did not load (simulated: the native addon does not load here)');
    assert.ok(app.logs.some((x) => x.level === 40 && /simulated/.test(String(x.err))), 'the load error is logged as a warning');
    assert.equal(app.sockets().udp, 0, 'no shared port on werift');
    await viewer.connect(app.base, 'demo');
    await waitFor('video on werift', () => viewer.video.length > 0, 8000);
  } finally {
    await viewer.close();
    assert.equal(await app.stop(), 0);
    await rm(hooks, { recursive: true, force: true });
  }
});

test('a UDP port already taken: loading fails at once, naming webrtc.listen', { timeout: 10000, skip }, async () => {
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
  try {
    const port = taken.address().port;
    await assert.rejects(NdcBackend.load({ listen: `127.0.0.1:${port}` }), (e: unknown) => e instanceof NdcListenError && e.message.includes(`webrtc.listen "127.0.0.1:${port}"`));
    // 'auto' does not fall back to werift for it: the port is wrong on any backend.
    await assert.rejects(selectBackend('auto', { listen: `127.0.0.1:${port}` }), NdcListenError);
  } finally {
    taken.close();
  }
});

test('webrtc.backend: auto takes node-datachannel here, werift when it does not load; werift when asked', { timeout: 10000, skip }, async () => {
  const b = await ndc();
  assert.equal(b.name, 'node-datachannel');
  assert.equal(selected!.reason, 'auto: node-datachannel loaded');
  const broken = () => Promise.reject(new Error('Cannot load native addon for node-datachannel on linux (x64)'));
  const fallback = await selectBackend('auto', { listen: ':8555' }, broken);
  assert.equal(fallback.backend, weriftBackend);
  assert.match(fallback.reason, /^auto: node-datachannel did not load \(Cannot load native addon/);
  await assert.rejects(selectBackend('node-datachannel', { listen: ':8555' }, broken), /webrtc\.backend node-datachannel: Cannot load native addon/);
  let loaded = false;
  const w = await selectBackend('werift', { listen: ':8555' }, () => ((loaded = true), broken()));
  assert.equal(w.backend, weriftBackend);
  assert.equal(loaded, false, 'werift does not even try node-datachannel');
  // The config key: the three values, a clear error for anything else, unset = DEFAULTS ('auto').
  assert.equal(validateConfig({ webrtc: { backend: 'node-datachannel' } }).config?.webrtc.backend, 'node-datachannel');
  assert.equal(validateConfig({}).config?.webrtc.backend ?? DEFAULTS.webrtcBackend, 'auto');
  assert.deepEqual(validateConfig({ webrtc: { backend: 'pion' } }).issues, [
    { path: ['webrtc', 'backend'], message: 'webrtc.backend: expected one of auto, werift, node-datachannel, got "pion"' },
  ]);
});

test('answer, ICE on loopback, RTP the viewer decodes, activity, remote address, close cascade', { timeout: 30000, skip }, async () => {
  const backend = await ndc();
  const base = counts();
  const timersBefore = timers();
  const viewer = new Viewer();
  const peer = backend.createPeer(settings());
  const states: string[] = [];
  peer.on('state', (s: string) => states.push(s));
  let activity = 0;
  peer.on('activity', () => activity++);
  try {
    assert.equal(counts()['NdcPeer'], (base['NdcPeer'] ?? 0) + 1);
    const t0 = performance.now();
    const { answer, video } = await connect(peer, viewer);
    const connectMs = performance.now() - t0;
    const v = section(answer, 'video');
    assert.match(v, /^m=video \d+ UDP\/TLS\/RTP\/SAVPF 97\r\n/, 'the offer\'s payload type, alone');
    assert.match(v, /a=fmtp:97 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f/);
    assert.match(v, /a=sendonly/);
    assert.match(v, /a=msid:camrelay /);
    assert.match(v, new RegExp(`a=ssrc:${video!.ssrc} cname:`));
    assert.match(v, /a=setup:passive/, 'the viewer starts DTLS (see preferPassiveDtls)');
    assert.doesNotMatch(v, /rtx|red\/|ulpfec/i);
    const a = section(answer, 'audio');
    assert.match(a, /a=inactive/, 'audio not sent: answered inactive');
    assert.doesNotMatch(a, /a=sendonly|a=sendrecv/);
    const cands = answer.match(/^a=candidate:.*$/gm) ?? [];
    assert.ok(cands.length > 0);
    for (const c of cands) assert.match(c, /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host$/, 'loopback_only: 127.0.0.1 only');
    assert.deepEqual(states.slice(-1), ['connected']);
    // The DTLS role matters here: answering active, werift drops the first ClientHello (1 s more).
    assert.ok(connectMs < 900, `connected ${connectMs.toFixed(0)} ms after the offer`);

    const sent = await sendClip(video!);
    await waitFor('every packet', () => viewer.video.length >= sent.length, 5000);
    const got = viewer.video;
    assert.ok(got.every((p) => p.header.ssrc === video!.ssrc && p.header.payloadType === 97), 'our SSRC and payload type');
    for (let i = 1; i < got.length; i++) assert.equal(got[i]!.header.sequenceNumber, (got[i - 1]!.header.sequenceNumber + 1) & 0xffff, 'sequence as written');
    assert.equal(got[0]!.header.sequenceNumber, 1000);
    assert.equal(got.filter((p) => p.header.marker).length, aus.length, 'one marker per access unit');
    assert.deepEqual(got.filter((p) => p.header.marker).map((p) => p.header.timestamp), aus.map((_, i) => auTimestamp(i)), 'timestamps as written');
    const nals = depacketize(got.map((p) => p.payload));
    assert.equal(nals.length, sent.length);
    assert.ok(nals.every((n, i) => n.equals(sent[i]!)), 'every NAL unit arrives intact through SRTP');
    // And ffmpeg decodes what arrived.
    const file = join(dir, 'received.h264');
    await writeFile(file, Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n])));
    const probe = await run('/usr/bin/ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height', '-of', 'csv=p=0', file]);
    assert.equal(probe.stdout.trim(), `640,360,${aus.length}`);

    // The viewer's receiver reports come back while media flows: activity.
    const before = activity;
    await waitFor('activity from RTCP', () => activity > before, 3000);
    assert.equal(peer.remoteAddress(), `127.0.0.1:${/127\.0\.0\.1 (\d+) typ host/.exec(viewer.pc.localDescription!.sdp)![1]}`);
  } finally {
    peer.close();
    peer.close(); // idempotent
    assert.equal(peer.state, 'closed');
    await peer.done;
    await viewer.close();
  }
  // Nothing after close: no event, no write, no native wrapper held, no timer, the count back.
  const quiet = activity;
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(activity, quiet, 'no activity after close');
  assert.equal(states.includes('closed'), false, 'our own close is not reported as a state change');
  assert.equal(nativeLive.size, 0, 'every native wrapper reported its close');
  assert.deepEqual(counts(), base);
  await waitFor('timers back to the count before', () => timers() <= timersBefore, 3000);
  await assert.rejects(peer.setRemoteOffer('v=0\r\n'), /closed/);
});

test('every peer on one UDP port; when they are gone only that port is left', { timeout: 30000, skip }, async () => {
  const backend = await ndc();
  const base = counts();
  const pairs: { peer: WebRtcPeer; viewer: Viewer; video: SendTrack }[] = [];
  try {
    const ports = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const viewer = new Viewer();
      const peer = backend.createPeer(settings());
      const { answer, video } = await connect(peer, viewer);
      for (const m of answer.matchAll(/^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host$/gm)) ports.add(m[1]!);
      pairs.push({ peer, viewer, video: video! });
    }
    assert.equal(ports.size, 1, `one port for all: ${[...ports].join(', ')}`);
    const port = Number([...ports][0]);
    const ours = udpSockets().filter((s) => s.endsWith(`:${hexPort(port)}`));
    assert.deepEqual(ours, [`0100007F:${hexPort(port)}`], 'one socket, on 127.0.0.1');
    assert.deepEqual(udpBaseline, ours, 'the port was bound at load, before any peer');
    // Each viewer gets its own packets through the one socket.
    for (const [i, { video }] of pairs.entries()) video.write({ head: NO_HEAD, body: Buffer.from([0x65, i]), marker: true, sequenceNumber: i, timestamp: 0 });
    await waitFor('one packet each', () => pairs.every(({ viewer }) => viewer.video.length === 1), 3000);
    assert.deepEqual(pairs.map(({ viewer }) => viewer.video[0]!.payload[1]), [0, 1, 2, 3]);
    assert.equal(counts()['NdcPeer'], (base['NdcPeer'] ?? 0) + 4);
  } finally {
    for (const { peer } of pairs) peer.close();
    await Promise.all(pairs.map(({ peer }) => peer.done));
    for (const { viewer } of pairs) await viewer.close();
  }
  assert.deepEqual(counts(), base);
  assert.equal(nativeLive.size, 0);
  await waitFor('UDP sockets: only the shared one', () => JSON.stringify(udpSockets()) === JSON.stringify(udpBaseline), 3000);
});

/** libdatachannel's own threads in this process, by name (its thread pool, its poll loop, usrsctp's timer). */
function libraryThreads(): string[] {
  return readdirSync('/proc/self/task')
    .map((t) => {
      try {
        return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      } catch {
        return ''; // the thread ended while we listed
      }
    })
    .filter((n) => /^(RTC |SCTP )/.test(n))
    .sort();
}

test('with no peer left, libdatachannel\'s threads stop (no CPU while nobody watches); the next peer starts them again and plays', { timeout: 30000, skip }, async () => {
  const backend = await ndc();
  await waitFor('no peer left from earlier tests', () => backend.peers === 0 && backend.released, 8000);
  assert.deepEqual(libraryThreads(), [], 'no library thread before a peer');
  for (let round = 0; round < 2; round++) {
    const viewer = new Viewer();
    const peer = backend.createPeer(settings());
    try {
      const { video } = await connect(peer, viewer);
      assert.equal(backend.released, false);
      assert.ok(libraryThreads().includes('SCTP timer'), `threads with a peer: ${libraryThreads().join(', ')}`);
      video!.write({ head: NO_HEAD, body: Buffer.from([0x65, round]), marker: true, sequenceNumber: round, timestamp: 0 });
      await waitFor(`round ${round}: the packet arrives`, () => viewer.video.length === 1, 3000);
      assert.equal(viewer.video[0]!.payload[1], round);
    } finally {
      peer.close();
      await peer.done;
      await viewer.close();
    }
    await waitFor(`round ${round}: library released after the last peer`, () => backend.released, 3000);
    assert.equal(backend.peers, 0);
    assert.deepEqual(libraryThreads(), [], `round ${round}: library threads left`);
  }
});

test('audio: the offer\'s PCMA answered as offered; video not sent is inactive', { timeout: 20000, skip }, async () => {
  const backend = await ndc();
  const viewer = new Viewer('audio/PCMA');
  const peer = backend.createPeer(settings());
  try {
    await peer.setRemoteOffer(await viewer.offer());
    // werift offers PCMA on a dynamic payload type, 96: answered as is.
    const audio = peer.addSendTrack({ mid: '1', kind: 'audio', codec: { payloadType: 96, name: 'PCMA', clockRate: 8000 } });
    assert.throws(() => peer.addSendTrack({ mid: '1', kind: 'video', codec: { payloadType: 96, name: 'PCMA', clockRate: 8000 } }), /is audio, not video/);
    assert.throws(() => peer.addSendTrack({ mid: '0', kind: 'video', codec: { payloadType: 96, name: 'H264', clockRate: 90000 } }), /no payload type 96/);
    await peer.createAnswer();
    await withDeadline(peer.gatheringComplete(), 3000, 'gathering');
    const answer = peer.localDescription();
    const a = section(answer, 'audio');
    assert.match(a, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 96\r\n/);
    assert.match(a, /a=rtpmap:96 PCMA\/8000/);
    assert.match(a, /a=sendonly/);
    assert.match(section(answer, 'video'), /a=inactive/);
    // What is written the moment 'connected' is heard arrives (the session sends its cached GOP then).
    peer.on('state', (st: string) => {
      if (st === 'connected') audio.write({ head: NO_HEAD, body: Buffer.alloc(160, 0xd5), marker: true, sequenceNumber: 0, timestamp: 0 });
    });
    await viewer.answer(answer);
    await waitFor('connected', () => peer.state === 'connected', 5000);
    for (let i = 1; i < 5; i++) audio.write({ head: NO_HEAD, body: Buffer.alloc(160, 0xd5), marker: false, sequenceNumber: i, timestamp: i * 160 });
    await waitFor('PCMA packets', () => viewer.audio.length === 5, 3000);
    assert.deepEqual(viewer.audio.map((p) => p.header.sequenceNumber), [0, 1, 2, 3, 4]);
    assert.ok(viewer.audio.every((p) => p.header.payloadType === 96 && p.payload.length === 160));
    assert.equal(viewer.video.length, 0);
  } finally {
    peer.close();
    await peer.done;
    await viewer.close();
  }
});

test('trickle: the answer has no candidate, each comes as an event (with the extra addresses, ranked below)', { timeout: 20000, skip }, async () => {
  const backend = await ndc();
  const viewer = new Viewer();
  const peer = backend.createPeer(settings({ candidates: ['203.0.113.7', '198.51.100.1:8555'] }));
  const events: (IceCandidateInit | null)[] = [];
  peer.on('candidate', (c: IceCandidateInit | null) => events.push(c));
  try {
    const offer = await viewer.offer();
    const theirs = offer.split(/\r\n(?=m=)/)[1]!.match(/^a=candidate:.*$/gm) ?? [];
    await peer.setRemoteOffer(offer.replace(/^a=(candidate:.*|end-of-candidates)\r\n/gm, ''));
    peer.addSendTrack({ mid: '0', kind: 'video', codec: { payloadType: 97, name: 'H264', clockRate: 90000 } });
    const answer = await peer.createAnswer();
    assert.doesNotMatch(answer, /a=candidate:/);
    await withDeadline(peer.gatheringComplete(), 3000, 'gathering');
    await waitFor('three candidates, then null (gathering ended)', () => events.length >= 4 && events.at(-1) === null, 2000);
    assert.equal(events.length, 4, 'each candidate once');
    const [host, x0, x1] = events.map((c) => c?.candidate ?? '');
    const m = /^candidate:\S+ 1 udp (\d+) 127\.0\.0\.1 (\d+) typ host$/.exec(host!);
    assert.ok(m, host);
    assert.match(x0!, new RegExp(`^candidate:x0 1 udp \\d+ 203\\.0\\.113\\.7 ${m[2]} typ host$`));
    assert.match(x1!, /^candidate:x1 1 udp \d+ 198\.51\.100\.1 8555 typ host$/);
    const prio = (c: string) => Number(c.split(' ')[3]);
    assert.ok(prio(x0!) < prio(host!) && prio(x1!) < prio(x0!), 'a LAN viewer keeps the real address');
    assert.ok(events.every((c) => c === null || (c.sdpMid === '0' && c.sdpMLineIndex === 0)));
    // The full description holds the same three, the same way.
    const full = section(peer.localDescription(), 'video');
    assert.match(full, /a=candidate:x0 1 udp \d+ 203\.0\.113\.7 \d+ typ host/);
    // Their candidates by trickle, with the line index only (as our WebSocket passes them).
    for (const c of theirs) await peer.addRemoteCandidate({ candidate: c.slice(2), sdpMLineIndex: 0 });
    await peer.addRemoteCandidate(null);
    await viewer.answer(answer);
    await waitFor('connected by trickled candidates', () => peer.state === 'connected', 5000);
  } finally {
    peer.close();
    await peer.done;
    await viewer.close();
  }
});

test('activity: RTCP while we send; when we send nothing, the connection counts as alive (ICE consent takes over)', { timeout: 20000, skip }, async () => {
  const backend = await ndc();
  const viewer = new Viewer();
  const peer = backend.createPeer(settings());
  const stamps: number[] = [];
  peer.on('activity', () => stamps.push(performance.now()));
  try {
    const { video } = await connect(peer, viewer);
    // Nothing sent: activity anyway (a stream waiting for its keyframe must not time out).
    await waitFor('activity while idle', () => stamps.length >= 2, 2000);
    // Sending to a viewer that has gone: no RTCP comes back, so activity stops.
    let seq = 0;
    const sending = setInterval(() => video!.write({ head: NO_HEAD, body: Buffer.from([0x41, 0]), marker: true, sequenceNumber: seq++, timestamp: seq * 3600 }), 20);
    try {
      await viewer.close();
      const gone = performance.now();
      await new Promise((r) => setTimeout(r, 2500));
      const late = stamps.filter((t) => t > gone + 200);
      assert.deepEqual(late, [], 'no activity from a silent viewer while we send');
    } finally {
      clearInterval(sending);
    }
  } finally {
    peer.close();
    await peer.done;
    await viewer.close();
  }
});

test('ice_servers: a configured STUN server is asked; none is asked by default', { timeout: 20000, skip }, async () => {
  const backend = await ndc();
  const stun = dgram.createSocket('udp4');
  let requests = 0;
  stun.on('message', (b) => {
    if (b.length >= 20 && b.readUInt16BE(0) === 0x0001) requests++;
  });
  await new Promise<void>((r) => stun.bind(0, '127.0.0.1', r));
  /** Answers an offer with these ICE servers; `until` is what to wait for before closing. */
  const answerWith = async (iceServers: WebRtcSettings['iceServers'], until: (peer: WebRtcPeer) => Promise<unknown>) => {
    const viewer = new Viewer();
    const peer = backend.createPeer(settings({ iceServers }));
    try {
      await peer.setRemoteOffer(await viewer.offer());
      // (A peer that sends nothing at all never gathers: libdatachannel starts ICE for media it sends.)
      peer.addSendTrack({ mid: '0', kind: 'video', codec: { payloadType: 97, name: 'H264', clockRate: 90000 } });
      await peer.createAnswer();
      await until(peer);
    } finally {
      peer.close();
      await peer.done;
      await viewer.close();
    }
  };
  try {
    // No STUN server: gathering ends at once with host candidates, and nothing is asked.
    await answerWith([], (peer) => withDeadline(peer.gatheringComplete(), 3000, 'gathering'));
    assert.equal(requests, 0);
    await answerWith([{ urls: [`stun:127.0.0.1:${stun.address().port}`] }], () => waitFor('a binding request at our STUN server', () => requests > 0, 3000));
  } finally {
    stun.close();
  }
  // The forms go2rtc's config has, in libdatachannel's terms.
  const { servers, skipped } = toNdcIceServers([
    { urls: ['stun:stun.example.org', 'stun:[2001:db8::1]:3479', 'stuns:x.example.org'] },
    { urls: ['turn:t.example.org?transport=tcp', 'turns:t.example.org:443', 'turn:t.example.org:3478'], username: 'u', credential: 'p@ss:w' },
    { urls: ['http://nope'] },
  ]);
  assert.deepEqual(servers, [
    { hostname: 'stun.example.org', port: 3478 },
    { hostname: '2001:db8::1', port: 3479 },
    { hostname: 't.example.org', port: 3478, username: 'u', password: 'p@ss:w', relayType: 'TurnTcp' },
    { hostname: 't.example.org', port: 443, username: 'u', password: 'p@ss:w', relayType: 'TurnTls' },
    { hostname: 't.example.org', port: 3478, username: 'u', password: 'p@ss:w', relayType: 'TurnUdp' },
  ]);
  assert.deepEqual(skipped, ['stuns:x.example.org', 'http://nope']);
  assert.equal(capExtraPriorities('a=candidate:1 1 udp 2114977791 10.0.0.2 9 typ host\na=candidate:x0 1 udp 2130706175 1.2.3.4 9 typ host'),
    'a=candidate:1 1 udp 2114977791 10.0.0.2 9 typ host\na=candidate:x0 1 udp 2114977790 1.2.3.4 9 typ host');
});

/**
 * One RTP packet of 60 is lost between camrelay and a werift viewer (a UDP relay between the two,
 * each side told the other is at it); the offer as `editOffer` makes it. Resolves with the lost
 * packet as it came again, or undefined when it had not come `waitMs` after the 60th.
 */
async function loseOnePacket(editOffer: (offer: string) => string, waitMs: number): Promise<{ resent?: { payload: Buffer; ssrc: number }; expected: Buffer; ssrc: number }> {
  const backend = await ndc();
  const relay = dgram.createSocket('udp4');
  await new Promise<void>((r) => relay.bind(0, '127.0.0.1', r));
  const at = relay.address().port;
  const viaRelay = (sdp: string) => sdp.replace(/(a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 )\d+/g, `$1${at}`);
  let ours = 0;
  let theirs = 0;
  let rtp = 0;
  let lost = -1;
  relay.on('message', (msg, from) => {
    if (from.port === ours) {
      const isRtp = msg[0]! >> 6 === 2 && ((msg[1]! & 0x7f) < 64 || (msg[1]! & 0x7f) > 95);
      if (isRtp && ++rtp === 30) {
        lost = msg.readUInt16BE(2);
        return;
      }
      if (theirs) relay.send(msg, theirs, '127.0.0.1');
    } else if (ours) relay.send(msg, ours, '127.0.0.1');
  });
  const viewer = new Viewer();
  const peer = backend.createPeer(settings());
  try {
    const offer = editOffer(await viewer.offer());
    theirs = Number(/127\.0\.0\.1 (\d+) typ host/.exec(offer)![1]);
    await peer.setRemoteOffer(viaRelay(offer));
    const video = peer.addSendTrack({ mid: '0', kind: 'video', codec: { payloadType: 97, name: 'H264', clockRate: 90000 } });
    await peer.createAnswer();
    await withDeadline(peer.gatheringComplete(), 3000, 'gathering');
    const answer = peer.localDescription();
    ours = Number(/127\.0\.0\.1 (\d+) typ host/.exec(answer)![1]);
    await viewer.answer(viaRelay(answer));
    await waitFor('connected through the relay', () => peer.state === 'connected', 5000);
    const payload = (i: number) => Buffer.concat([Buffer.from([0x41]), Buffer.alloc(99, i)]);
    for (let i = 0; i < 60; i++) {
      video.write({ head: NO_HEAD, body: payload(i), marker: true, sequenceNumber: 2000 + i, timestamp: i * 3600 });
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(lost >= 2000, 'the relay lost one');
    await waitFor('the viewer got the packets after the lost one', () => viewer.video.some((p) => p.header.sequenceNumber === 2059), 3000);
    const resent = await waitFor('the lost packet, sent again', () => viewer.video.find((p) => p.header.sequenceNumber === lost), waitMs).catch(() => undefined);
    return {
      ...(resent ? { resent: { payload: resent.payload, ssrc: resent.header.ssrc } } : {}),
      expected: payload(lost - 2000),
      ssrc: video.ssrc,
    };
  } finally {
    peer.close();
    await peer.done;
    await viewer.close();
    relay.close();
  }
}

test('a packet lost on the way is sent again, intact, when the viewer NACKs it', { timeout: 20000, skip }, async () => {
  const { resent, expected, ssrc } = await loseOnePacket((offer) => offer, 3000);
  assert.ok(resent, 'the lost packet came again');
  assert.ok(resent.payload.equals(expected), 'the same payload (not encrypted twice)');
  assert.equal(resent.ssrc, ssrc);
});

test('an offer without generic NACK gets no retransmissions: camrelay keeps no packets for it', { timeout: 20000, skip }, async () => {
  // werift still sends its NACKs; only the offer's a=rtcp-fb lines say it does not want them.
  const { resent } = await loseOnePacket((offer) => offer.replace(/a=rtcp-fb:\d+ nack\r\n/g, ''), 1000);
  assert.equal(resent, undefined, 'nothing kept for NACKs the offer did not ask for');
});
