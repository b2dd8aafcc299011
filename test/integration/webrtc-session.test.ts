// A real werift peer as the viewer, a real Stream, and an in-test source that plays an H.264
// file made by ffmpeg (plus Opus-sized audio frames) in real time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Owned } from '../../src/core/owned.js';
import { Stream } from '../../src/core/stream.js';
import { SourceError } from '../../src/core/errors.js';
import { liveObjects } from '../../src/core/objects.js';
import type { Frame, Track } from '../../src/core/media.js';
import type { Source, SourceInfo } from '../../src/core/source.js';
import { WebRtcSession } from '../../src/outputs/webrtc/session.js';
import { OfferError } from '../../src/outputs/webrtc/offer.js';
import type { WebRtcSettings } from '../../src/outputs/webrtc/settings.js';
import type { IceCandidateInit } from '../../src/outputs/webrtc/backend.js';
import { waitEvent, waitFor } from '../helpers/wait.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { CHROME_OFFER } from '../helpers/chrome-offer.js';
import { selectBackend, type BackendChoice, type SelectedBackend } from '../../src/outputs/webrtc/select-backend.js';

// The backend under test: CAMRELAY_TEST_WEBRTC_BACKEND (test/backends/*), else auto.
let selected: SelectedBackend | undefined;
before(async () => {
  selected = await selectBackend((process.env.CAMRELAY_TEST_WEBRTC_BACKEND ?? 'auto') as BackendChoice, { listen: '127.0.0.1:0', loopbackOnly: true });
});
after(async () => {
  await selected?.close();
});
type OpenArgs = Parameters<typeof WebRtcSession.open>;
const openSession = (stream: OpenArgs[0], sdp: OpenArgs[1], settings: OpenArgs[2], meta: OpenArgs[3] = {}) => WebRtcSession.open(stream, sdp, settings, meta, selected!.backend);

// ---------- an H.264 elementary stream cut into access units ----------

function splitAnnexB(buf: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 2 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        if (end > start && buf[end - 1] === 0) end--; // 4-byte start code
        nals.push(buf.subarray(start, end));
      }
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0 && start < buf.length) nals.push(buf.subarray(start));
  return nals;
}

/** Access units: a new one starts at a non-VCL NAL or a slice with first_mb_in_slice 0 after a slice. */
function accessUnits(nals: Buffer[]): Buffer[][] {
  const aus: Buffer[][] = [];
  let cur: Buffer[] = [];
  let hasSlice = false;
  for (const n of nals) {
    const t = n[0]! & 0x1f;
    const slice = t === 1 || t === 5;
    if (hasSlice && (!slice || (n[1]! & 0x80) !== 0)) {
      aus.push(cur);
      cur = [];
      hasSlice = false;
    }
    cur.push(n);
    if (slice) hasSlice = true;
  }
  if (cur.length) aus.push(cur);
  return aus;
}

let dir = '';
let aus: Buffer[][] = [];
let sps: Buffer | undefined;
let pps: Buffer | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'camrelay-webrtc-'));
  const file = join(dir, 'out.h264');
  await promisify(execFile)('/usr/bin/ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', '25', '-f', 'h264', file,
  ]);
  const nals = splitAnnexB(await readFile(file));
  aus = accessUnits(nals);
  sps = nals.find((n) => (n[0]! & 0x1f) === 7);
  pps = nals.find((n) => (n[0]! & 0x1f) === 8);
  assert.ok(aus.length >= 50 && sps && pps, `ffmpeg gave ${aus.length} access units`);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------- the in-test source ----------

class FileSource extends Owned implements Source {
  static last: FileSource | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly video: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps, pps } };
  readonly audio: Track = { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2 } };

  constructor(
    readonly url: string,
    private readonly kinds: ('video' | 'audio')[],
  ) {
    super('WebRtcTestSource');
    FileSource.last = this;
  }

  start(signal: AbortSignal): Promise<Track[]> {
    if (signal.aborted) return Promise.reject(new SourceError('aborted'));
    const tracks = this.kinds.map((k) => (k === 'video' ? this.video : this.audio));
    let tick = 0;
    // One 20 ms clock: an Opus frame every tick, a video frame every other (25 fps).
    this.#timer = setInterval(() => {
      if (this.kinds.includes('audio')) {
        const f: Frame = { track: this.audio, timestamp: tick * 960, keyframe: false, data: [Buffer.from([0xfc, 0xff, 0xfe, tick & 0xff])] };
        this.emit('frame', f);
      }
      if (this.kinds.includes('video') && tick % 2 === 0) {
        const n = tick / 2;
        const au = aus[n % aus.length]!;
        const keyframe = au.some((x) => (x[0]! & 0x1f) === 5);
        this.emit('frame', { track: this.video, timestamp: n * 3600, keyframe, data: au } satisfies Frame);
      }
      tick++;
    }, 20);
    return Promise.resolve(tracks);
  }

  info(): SourceInfo {
    return { url: this.url };
  }

  protected onClose(): void {
    clearInterval(this.#timer);
  }
}

function makeStream(kinds: ('video' | 'audio')[] = ['video', 'audio']): Stream {
  return new Stream('cam', ['test://file'], { idleTimeout: 0, startTimeout: 5000, backoff: { base: 100, max: 1000, stableAfter: 1000 } }, (url) => new FileSource(url, kinds));
}

const settings = (over: Partial<WebRtcSettings['timeouts']> = {}): WebRtcSettings => ({
  candidates: [],
  iceServers: [],
  timeouts: { connect: 5000, disconnect: 5000, ...over },
  loopbackOnly: true,
});

/** The m-section of an SDP for a kind. */
function section(sdp: string, kind: string): string {
  const parts = sdp.split(/\r\n(?=m=)/);
  const s = parts.find((p) => p.startsWith(`m=${kind}`));
  assert.ok(s, `no m=${kind} in\n${sdp}`);
  return s;
}

function counts(): Record<string, number> {
  return Object.fromEntries(Object.entries(liveObjects()).filter(([, n]) => n !== 0));
}

async function shutdown(stream: Stream, viewer: Viewer): Promise<void> {
  await viewer.close();
  stream.close();
  await stream.done;
}

// ---------- tests ----------

test('a viewer receives H.264 with a keyframe carrying SPS/PPS, and Opus', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream();
  const viewer = new Viewer();
  const { session, answer } = await openSession(stream, await viewer.offer(), settings(), { remoteAddr: '127.0.0.1', userAgent: 'test' });
  assert.equal(counts()['WebRtcSession'], (base['WebRtcSession'] ?? 0) + 1);
  assert.match(session.id, /^[A-Za-z0-9_-]{12,}$/);
  assert.deepEqual(session.request, { video: ['H264'], audio: ['OPUS'] });
  const video = section(answer, 'video');
  assert.match(video, /a=sendonly/);
  assert.match(video, /a=rtpmap:\d+ H264\/90000/);
  assert.match(video, /packetization-mode=1/);
  assert.doesNotMatch(video, /rtx|red\/|ulpfec/i);
  assert.match(video, /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);
  assert.match(section(answer, 'audio'), /a=sendonly[\s\S]*|a=rtpmap:\d+ opus\/48000\/2/);
  assert.match(section(answer, 'audio'), /a=rtpmap:\d+ opus\/48000\/2/);

  await viewer.answer(answer);
  await waitFor('50 H.264 packets with a whole keyframe', () => viewer.video.length >= 50 && viewer.sawKeyframeWithParams(), 5000);
  await waitFor('Opus packets', () => viewer.audio.length >= 5, 2000);
  const ssrcs = new Set(viewer.video.map((p) => p.header.ssrc));
  assert.equal(ssrcs.size, 1, 'one SSRC for video');
  for (let i = 1; i < viewer.video.length; i++) {
    assert.equal(viewer.video[i]!.header.sequenceNumber, (viewer.video[i - 1]!.header.sequenceNumber + 1) & 0xffff, 'no sequence gaps on loopback');
  }
  const info = session.info();
  assert.equal(info.type, 'webrtc');
  assert.equal(info.remote_addr, '127.0.0.1');
  assert.equal(info.user_agent, 'test');
  assert.ok((info.bytes_send ?? 0) > 10000, `bytes_send ${info.bytes_send}`);
  assert.equal(info.state, 'connected');

  // Our own close: the stream loses its only consumer and stops the source at once (idle_timeout 0).
  const source = FileSource.last!;
  assert.equal(stream.consumers.length, 1);
  session.close();
  assert.equal(session.closeReason, 'closed');
  assert.equal(stream.consumers.length, 0);
  assert.equal(source.closed, true);
  await session.done;
  await waitFor('stream idle', () => stream.state === 'idle', 2000);
  await shutdown(stream, viewer);
  assert.deepEqual(counts(), base);
});

test('no audio codec in common: audio is not answered sendonly, video still flows', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream();
  const viewer = new Viewer('audio/G722');
  const { session, answer } = await openSession(stream, await viewer.offer(), settings());
  assert.deepEqual(session.request, { video: ['H264'] });
  assert.match(section(answer, 'video'), /a=sendonly/);
  const audio = section(answer, 'audio');
  assert.doesNotMatch(audio, /a=sendonly|a=sendrecv/);
  assert.match(audio, /a=inactive/);
  await viewer.answer(answer);
  await waitFor('H.264 packets', () => viewer.video.length >= 20, 5000);
  assert.equal(viewer.audio.length, 0);
  session.close();
  await session.done;
  await shutdown(stream, viewer);
  assert.deepEqual(counts(), base);
});

test('the viewer goes away without a word: closed by disconnect timeout', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream();
  const viewer = new Viewer();
  const { session, answer } = await openSession(stream, await viewer.offer(), settings({ disconnect: 2000 }));
  await viewer.answer(answer);
  await waitFor('H.264 packets', () => viewer.video.length >= 20, 5000);
  const closed = waitEvent(session, 'close', 3000 + 1000);
  // werift sends no DTLS close alert: from our side the peer just goes silent.
  const t0 = Date.now();
  assert.equal(session.closed, false);
  await viewer.close();
  await closed;
  const took = Date.now() - t0;
  assert.equal(session.closeReason, 'disconnect timeout');
  // Silence counts from the viewer's last packet (RTCP every 0.5-1.5 s), not from its close.
  assert.ok(took <= 3000, `closed ${took} ms after the viewer left`);
  assert.equal(stream.consumers.length, 0);
  await session.done;
  await shutdown(stream, viewer);
  assert.deepEqual(counts(), base);
});

test('a Chrome offer is answered with one H.264 payload type, plain Opus and the extra candidates', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream();
  const { session, answer } = await openSession(stream, CHROME_OFFER, { ...settings(), candidates: ['203.0.113.7', '198.51.100.1:8555'] });
  const video = section(answer, 'video');
  // x264 -preset ultrafast writes Constrained Baseline: Chrome's 42e01f entry.
  // The port is the default candidate's once gathered (node-datachannel) or 9 (werift).
  assert.match(video, /^m=video \d+ UDP\/TLS\/RTP\/SAVPF 106\r\n/);
  assert.equal(video.match(/a=rtpmap:/g)?.length, 1);
  assert.match(video, /a=fmtp:106 .*packetization-mode=1/);
  assert.match(video, /a=sendonly/);
  assert.match(video, /a=msid:camrelay /);
  assert.match(video, /a=ssrc:\d+ cname:/);
  const audio = section(answer, 'audio');
  assert.match(audio, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 111\r\n/);
  assert.equal(audio.match(/a=rtpmap:/g)?.length, 1);
  assert.match(audio, /a=sendonly/);
  assert.match(answer, /a=group:BUNDLE 0 1/);
  const port = /udp \d+ 127\.0\.0\.1 (\d+) typ host/.exec(video)?.[1];
  assert.ok(port);
  assert.match(video, new RegExp(`203\\.0\\.113\\.7 ${port} typ host`));
  assert.match(video, /198\.51\.100\.1 8555 typ host/);
  session.close();
  await session.done;
  stream.close();
  await stream.done;
  assert.deepEqual(counts(), base);
});

test('trickle ICE both ways: answer without candidates, candidates as events', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream();
  const viewer = new Viewer();
  const offer = await viewer.offer();
  const theirs = offer.split(/\r\n(?=m=)/)[1]!.match(/^a=candidate:.*$/gm) ?? [];
  assert.ok(theirs.length > 0);
  const bare = offer.replace(/^a=(candidate:.*|end-of-candidates)\r\n/gm, '');
  const { session, answer } = await openSession(stream, bare, settings(), { trickle: true });
  assert.doesNotMatch(answer, /a=candidate:/);
  const ours: IceCandidateInit[] = [];
  const gathered = new Promise<void>((resolve) => {
    session.onLocalCandidate((c) => (c ? ours.push(c) : resolve()));
  });
  await gathered;
  assert.ok(ours.some((c) => / 127\.0\.0\.1 \d+ typ host/.test(c.candidate)), JSON.stringify(ours));
  await viewer.answer(answer);
  for (const c of ours) await viewer.pc.addIceCandidate(c);
  for (const line of theirs) await session.addRemoteCandidate({ candidate: line.slice(2), sdpMid: '0', sdpMLineIndex: 0 });
  await waitFor('H.264 packets', () => viewer.video.length >= 20, 5000);
  session.close();
  await session.done;
  await shutdown(stream, viewer);
  assert.deepEqual(counts(), base);
});

test('a viewer that never does ICE: closed by connect timeout', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream();
  const viewer = new Viewer();
  const t0 = Date.now();
  const { session } = await openSession(stream, await viewer.offer(), settings({ connect: 2000 }));
  await waitEvent(session, 'close', 4000);
  const took = Date.now() - t0;
  assert.equal(session.closeReason, 'connect timeout');
  assert.ok(took >= 1900 && took <= 3500, `closed after ${took} ms`);
  assert.equal(stream.consumers.length, 0);
  await session.done;
  await shutdown(stream, viewer);
  assert.deepEqual(counts(), base);
});

test('bad offers are refused before or right after the stream starts, and leave nothing behind', { timeout: 20000 }, async () => {
  const base = counts();
  const stream = makeStream(['audio']);
  await assert.rejects(openSession(stream, 'hello', settings()), (e: unknown) => e instanceof OfferError && /not SDP/.test(e.message));
  assert.equal(stream.state, 'idle', 'a malformed offer never starts the source');

  // The offer takes only video; the stream turns out to have only audio.
  const viewer = new Viewer();
  const videoOnly = (await viewer.offer()).split(/\r\n(?=m=)/).filter((s) => !s.startsWith('m=audio')).join('\r\n');
  await assert.rejects(openSession(stream, videoOnly, settings()), (e: unknown) => e instanceof OfferError && /has audio:OPUS/.test(e.message));
  assert.equal(stream.consumers.length, 0);
  assert.equal(FileSource.last?.closed, true);
  await waitFor('stream idle', () => stream.state === 'idle', 2000);

  // A viewer that leaves (HTTP request aborted) while the answer is being made.
  const ac = new AbortController();
  const opening = openSession(stream, await viewer.offer(), settings(), { signal: ac.signal });
  ac.abort();
  await assert.rejects(opening, /viewer left/);
  assert.equal(stream.consumers.length, 0);
  await shutdown(stream, viewer);
  assert.deepEqual(counts(), base);
});
