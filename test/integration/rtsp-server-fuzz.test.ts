// Issue 12 acceptance: a fuzz test of camrelay's RTSP SERVER (test/unit/rtsp-fuzz.test.ts covers
// the client side and the parsers). The seed corpus is what real clients send, captured at test
// time through a recording proxy: ffmpeg playing over TCP and over UDP, ffmpeg publishing,
// GStreamer's rtspsrc playing and its rtspclientsink publishing. Then 20,000+ mutated messages go
// to a real RtspServer serving a real ffmpeg stream, in batches over a bounded number of
// connections. After every batch a fresh connection's OPTIONS must be answered 200; at the end a
// viewer that played throughout still gets frames and the server holds exactly the connections it
// held before. FUZZ_SEED=n replays a run's mutations; each run writes its corpus to a file that
// FUZZ_CORPUS=<file> reads back instead of capturing, as clients may say slightly different things
// from one run to the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { setRootLogger } from '../../src/core/log.js';
import { liveObjects } from '../../src/core/objects.js';
import { RtspMessageReader, serializeInterleaved, serializeRequest } from '../../src/rtsp/message.js';
import { RtspParseError } from '../../src/rtsp/errors.js';
import { startMiniRelay } from '../helpers/rtsp-mini-relay.js';
import { RecordingProxy } from '../helpers/recording-proxy.js';
import { RawRtspPlayer } from '../helpers/rtsp-player.js';
import { probeOptions } from '../helpers/rtsp-raw.js';
import { prng, RequestMutator } from '../helpers/rtsp-request-mutator.js';
import { socketInodes } from '../helpers/proc-sockets.js';
import { isGstPauseFlushRace } from '../helpers/gst-publisher.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));

const SEED = Number(process.env.FUZZ_SEED ?? 0x12f022);
const TARGET_MUTATED = Number(process.env.FUZZ_MESSAGES ?? 20_000);
/** Connections open at once during a batch. */
const PARALLEL = 48;
/** Every batch is this many connections; a probe follows each. */
const BATCH = 96;
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0&audio=sine#video=h264#audio=opus';

interface Session {
  client: string;
  messages: Buffer[];
}

function run(bin: string, args: string[], ms: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  for (const s of [child.stdout, child.stderr]) s.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-4000)));
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    }),
  );
}

/** What each recorded client said, cut into messages; media frames are kept only a few per session. */
function sessionsOf(proxy: RecordingProxy, client: string): Session[] {
  const out: Session[] = [];
  for (const c of proxy.connections.splice(0)) {
    const reader = new RtspMessageReader({ maxHeaderBytes: 64 * 1024, maxBodyBytes: 64 * 1024 });
    const messages: Buffer[] = [];
    let frames = 0;
    for (const item of reader.push(Buffer.concat(c.fromClient))) {
      if (item.type === 'request') {
        // The captured session ID is not the one a replay gets; without one the server goes on
        // (a session is per connection), so replays reach SETUP, PLAY and RECORD.
        item.headers.delete('session');
        messages.push(serializeRequest(item));
      }
      else if (item.type === 'interleaved' && frames++ < 3) messages.push(serializeInterleaved(item.channel, item.payload.subarray(0, 1400)));
    }
    if (messages.length) out.push({ client, messages });
  }
  return out;
}

function saveCorpus(seeds: Session[]): string {
  const file = path.join(tmpdir(), `rtsp-fuzz-corpus-${SEED}.json`);
  writeFileSync(file, JSON.stringify(seeds.map((s) => ({ client: s.client, messages: s.messages.map((m) => m.toString('base64')) }))));
  return file;
}

function loadCorpus(file: string): Session[] {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Array<{ client: string; messages: string[] }>;
  return raw.map((s) => ({ client: s.client, messages: s.messages.map((m) => Buffer.from(m, 'base64')) }));
}

/** Captures the seed corpus: real clients talking to the server through the proxy. */
async function capture(proxy: RecordingProxy): Promise<Session[]> {
  const via = proxy.port;
  const players = await Promise.all([
    run('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', `rtsp://127.0.0.1:${via}/demo`, '-t', '1', '-c', 'copy', '-f', 'null', '-'], 20_000),
    run('/usr/bin/gst-launch-1.0', ['-q', 'rtspsrc', `location=rtsp://127.0.0.1:${via}/demo`, 'protocols=tcp', '!', 'fakesink', 'num-buffers=20'], 20_000),
  ]);
  assert.equal(players[0].code, 0, players[0].out);
  // GStreamer's exit code is not asserted: its known shutdown race (a PAUSE sent after its own
  // TEARDOWN, see helpers/gst-player.ts) can fail it after it said everything the corpus needs.
  const seeds = sessionsOf(proxy, 'ffmpeg/gst player (tcp)');
  assert.equal(seeds.filter((x) => x.messages.some((m) => m.toString('latin1').startsWith('PLAY '))).length, 2, `both players reached PLAY (GStreamer: ${players[1].out})`);
  const udp = await run('/usr/bin/ffmpeg', ['-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'udp', '-i', `rtsp://127.0.0.1:${via}/demo`, '-t', '1', '-c', 'copy', '-f', 'null', '-'], 20_000);
  assert.equal(udp.code, 0, udp.out);
  seeds.push(...sessionsOf(proxy, 'ffmpeg player (udp)'));
  const pub = await run('/usr/bin/ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '1',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-bf', '0', '-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://127.0.0.1:${via}/pub`,
  ], 20_000);
  assert.equal(pub.code, 0, pub.out);
  seeds.push(...sessionsOf(proxy, 'ffmpeg publisher'));
  const gstPub = await run('/usr/bin/gst-launch-1.0', [
    '-q', 'videotestsrc', 'num-buffers=25', '!', 'video/x-raw,width=160,height=120,framerate=25/1',
    '!', 'x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', 'key-int-max=10', '!', 'rtspclientsink', `location=rtsp://127.0.0.1:${via}/pub`, 'protocols=tcp',
  ], 20_000);
  // Its exit code is checked only for what GStreamer does not do to itself (test/helpers/gst-publisher.ts).
  if (gstPub.code !== 0) assert.ok(isGstPauseFlushRace(gstPub.out), gstPub.out);
  const gst = sessionsOf(proxy, 'GStreamer publisher');
  assert.ok(gst.some((x) => x.messages.some((m) => m.toString('latin1').startsWith('RECORD '))), `GStreamer reached RECORD (${gstPub.out})`);
  seeds.push(...gst);
  return seeds;
}

const methods = (s: Session[]) => new Set(s.flatMap((x) => x.messages.map((m) => /^[A-Z_]+/.exec(m.toString('latin1', 0, 20))?.[0]).filter(Boolean)));

interface Outcome {
  statuses: Map<number, number>;
  /** The server's bytes did not parse as RTSP (it must never write garbage). */
  garbage: string[];
  /** Connections the server had not closed 5 s after the client finished sending. */
  hung: number;
}

/** One connection: the (mutated) session written at once, then FIN; reads until the server closes. */
function exchange(port: number, bytes: Buffer, out: Outcome): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const reader = new RtspMessageReader({ maxHeaderBytes: 64 * 1024, maxBodyBytes: 256 * 1024 });
    let parsed = 0;
    let failed = false;
    const t = setTimeout(() => {
      out.hung++;
      socket.destroy();
    }, 5000);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (failed || parsed > 256 * 1024) return;
      parsed += chunk.length;
      try {
        for (const item of reader.push(chunk)) if (item.type === 'response') out.statuses.set(item.status, (out.statuses.get(item.status) ?? 0) + 1);
      } catch (e) {
        failed = true;
        out.garbage.push(e instanceof RtspParseError ? e.message : String(e));
      }
    });
    socket.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    socket.once('connect', () => socket.end(bytes));
  });
}

interface FuzzRun {
  mutated: number;
  sent: number;
  batches: number;
  out: Outcome;
  kinds: Map<string, number>;
}

/**
 * Sends mutated sessions until `target` mutated messages went out, BATCH connections a batch,
 * PARALLEL at once, each written whole and then half-closed; OPTIONS on a fresh connection must
 * be answered 200 after every batch.
 */
async function fuzz(port: number, seeds: Session[], target: number, seed: number): Promise<FuzzRun> {
  const rand = prng(seed);
  const m = new RequestMutator(rand);
  const corpus = seeds.flatMap((x) => x.messages);
  const run: FuzzRun = { mutated: 0, sent: 0, batches: 0, out: { statuses: new Map(), garbage: [], hung: 0 }, kinds: new Map() };
  const started = performance.now();
  while (run.mutated < target) {
    assert.ok(performance.now() - started < 120_000, `fuzz still running after 120 s (${run.mutated} mutated sent)`);
    // Built before sending, from the RNG alone, so a seed always gives the same bytes.
    const conns: Buffer[] = [];
    for (let c = 0; c < BATCH; c++) {
      const s = m.pick(seeds);
      const parts: Buffer[] = [];
      // Most messages of a session go as captured, so that the mutated ones meet every state.
      const always = m.int(s.messages.length);
      for (const [i, msg] of s.messages.entries()) {
        if (i !== always && rand() < 0.05) continue;
        if (i === always || rand() < 0.15) {
          const mu = m.mutate(msg, corpus);
          run.kinds.set(mu.kind, (run.kinds.get(mu.kind) ?? 0) + 1);
          parts.push(mu.bytes);
          run.mutated++;
        } else parts.push(msg);
        run.sent++;
      }
      conns.push(Buffer.concat(parts));
    }
    for (let i = 0; i < conns.length; i += PARALLEL) await Promise.all(conns.slice(i, i + PARALLEL).map((b) => exchange(port, b, run.out)));
    run.batches++;
    assert.equal(await probeOptions(port, 3000), 200, `probe after batch ${run.batches} (FUZZ_SEED=${seed})`);
  }
  console.log(`# ${run.mutated} mutated of ${run.sent} messages, ${run.batches} batches of ${BATCH} connections, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`# mutations: ${[...run.kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(`# answers: ${[...run.out.statuses].sort((a, b) => a[0] - b[0]).map(([st, n]) => `${st}×${n}`).join(' ')}`);
  assert.deepEqual(run.out.garbage, [], 'every byte the server wrote parses as RTSP');
  assert.equal(run.out.hung, 0, 'the server closed every connection once its client finished');
  return run;
}

/** The corpus of the first test, for the second. */
let corpusOfRun: Session[] | undefined;

test(`RTSP server fuzz: ${TARGET_MUTATED}+ mutated messages from ffmpeg and GStreamer sessions; the server answers a probe after every batch`, { timeout: 180_000 }, async () => {
  console.log(`# FUZZ_SEED=${SEED}`);
  const relay = await startMiniRelay({ demo: [DEMO], pub: [] }, { connection: { headerTimeoutMs: 3000 } });
  const port = relay.server.port;
  const proxy = new RecordingProxy(port);
  const viewer = new RawRtspPlayer(port);
  try {
    // ---- seed corpus: real clients, through the proxy ----
    await proxy.listen();
    const replay = process.env.FUZZ_CORPUS;
    const seeds = replay && existsSync(replay) ? loadCorpus(replay) : await capture(proxy);
    corpusOfRun = seeds;
    // Written first, so that any failure (an uncaught exception too) can be replayed.
    console.log(`# replay with FUZZ_SEED=${SEED} FUZZ_CORPUS=${replay ?? saveCorpus(seeds)}`);
    const seen = methods(seeds);
    for (const m of ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY', 'TEARDOWN', 'ANNOUNCE', 'RECORD']) assert.ok(seen.has(m), `the corpus has ${m} (has ${[...seen].join(' ')})`);
    assert.ok(seeds.some((s) => s.messages.some((m) => m[0] === 0x24)), 'the corpus has interleaved frames');
    console.log(`# seed corpus: ${seeds.length} sessions, ${seeds.reduce((n, s) => n + s.messages.length, 0)} messages (${[...seen].join(' ')})`);

    // ---- a viewer that plays throughout; the server's holdings before the fuzz ----
    await viewer.play(relay.url('demo'));
    await waitFor('viewer frames', () => viewer.frames(0) >= 5, 15_000);
    const baseline = { connections: relay.server.connectionCount, objects: liveObjects()['RtspConnection'] ?? 0, sockets: socketInodes('self').size };

    // ---- the fuzz ----
    const run = await fuzz(port, seeds, TARGET_MUTATED, SEED).catch((e: unknown) => {
      console.log('# failed: replay with the FUZZ_SEED and FUZZ_CORPUS above');
      throw e;
    });
    assert.ok((run.out.statuses.get(200) ?? 0) > 100 && (run.out.statuses.get(400) ?? 0) > 100, 'both good and refused requests were answered');

    // ---- afterwards: the viewer still plays, nothing is left over ----
    const before = viewer.frames(0);
    await waitFor('viewer frames after the fuzz', () => viewer.frames(0) >= before + 10, 10_000);
    await waitFor(
      `connections back to ${baseline.connections}`,
      () => relay.server.connectionCount === baseline.connections && (liveObjects()['RtspConnection'] ?? 0) === baseline.objects,
      10_000,
    );
    await waitFor(`sockets back to ${baseline.sockets} (now ${socketInodes('self').size})`, () => socketInodes('self').size <= baseline.sockets, 10_000);
  } finally {
    viewer.destroy();
    await proxy.close();
    await relay.close();
  }
});

test('RTSP server fuzz with rtsp.username/password: mutated sessions meet the Digest challenge; the nonce table stays bounded and empties as connections close', { timeout: 120_000 }, async () => {
  const relay = await startMiniRelay({ demo: [DEMO], pub: [] }, { auth: { username: 'admin', password: 'pw' }, connection: { headerTimeoutMs: 3000 } });
  const proxy = new RecordingProxy(relay.server.port);
  try {
    await proxy.listen();
    const seeds = corpusOfRun ?? (await capture(proxy));
    const run = await fuzz(relay.server.port, seeds, Math.ceil(TARGET_MUTATED / 4), SEED + 1);
    assert.ok((run.out.statuses.get(401) ?? 0) > 100, 'challenges were answered');
    const auth = relay.server.auth!;
    assert.ok(auth.outstanding <= 4096);
    await waitFor(`nonces forgotten with their connections (${auth.outstanding} left)`, () => relay.server.connectionCount === 0 && auth.outstanding === 0, 10_000);
  } finally {
    await proxy.close();
    await relay.close();
  }
});
