// Issue 3, deliverable 4: the parsers a camera feeds survive mutated input. Each family starts from
// real-looking inputs, mutates them with a seeded PRNG (FUZZ_SEED=n to replay one run) and checks
// that nothing throws but the parser's own named errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { RtspMessageReader, serializeInterleaved } from '../../src/rtsp/message.js';
import { RtspParseError, SdpError } from '../../src/rtsp/errors.js';
import { parseSdp, resolveControl } from '../../src/rtsp/sdp.js';
import { parseTransport } from '../../src/rtsp/transport.js';
import { AuthAnswerer, parseChallenges } from '../../src/rtsp/auth.js';
import { parseCameraUrl } from '../../src/rtsp/url.js';
import { RtpReceiver, trackFromMedia, unsupportedReason } from '../../src/rtsp/receiver.js';
import { parseRtp, type RtpPacket } from '../../src/rtp/packet.js';
import { DepacketizeError, RtpPacketError } from '../../src/rtp/errors.js';
import { H264Depacketizer } from '../../src/rtp/h264-depacketizer.js';
import { H265Depacketizer } from '../../src/rtp/h265-depacketizer.js';
import { AacDepacketizer } from '../../src/rtp/aac-depacketizer.js';
import { AudioDepacketizer } from '../../src/rtp/audio-depacketizer.js';
import { aacRtpConfig, parseAudioSpecificConfig } from '../../src/codecs/aac.js';
import { SourceError } from '../../src/core/errors.js';
import { setRootLogger } from '../../src/core/log.js';
import { liveObjects } from '../../src/core/objects.js';
import type { Frame, Track } from '../../src/core/media.js';
import { RtspSource } from '../../src/sources/rtsp.js';
import { ScriptedCamera, H264_SDP } from '../helpers/scripted-camera.js';
import { ByteMutator, prng } from '../helpers/byte-mutator.js';

setRootLogger(pino({ level: 'silent' }));
const silent = pino({ level: 'silent' });

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

class Mutator extends ByteMutator {
  /** Line-level edits for text formats, then maybe byte edits. */
  text(input: string, corpus: readonly Buffer[]): Buffer {
    const lines = input.split('\r\n');
    for (let n = 1 + this.int(3); n > 0; n--) {
      const i = this.int(lines.length);
      switch (this.int(4)) {
        case 0:
          lines.splice(i, 1);
          break;
        case 1:
          lines.splice(i, 0, lines[this.int(lines.length)] ?? '');
          break;
        case 2: {
          const j = this.int(lines.length);
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
          break;
        }
        default:
          lines[i] = (lines[i] ?? '').replace(/[=:;/ ]/, this.pick(['', '==', ';;', ' ', '/', ':']));
      }
    }
    const out = Buffer.from(lines.join(this.rand() < 0.8 ? '\r\n' : '\n'));
    return this.rand() < 0.5 ? this.bytes(out, corpus) : out;
  }
}

/** Runs `fn`; anything thrown must be one of `allowed`. */
function only(what: string, allowed: Array<new (...a: never[]) => Error>, fn: () => void, input: Buffer | string): void {
  try {
    fn();
  } catch (e) {
    if (allowed.some((A) => e instanceof A)) return;
    assert.fail(`${what} threw ${(e as Error)?.name}: ${(e as Error)?.message} (seed ${SEED}) on ${JSON.stringify(input.toString('latin1').slice(0, 300))}`);
  }
}

// ---- corpus ------------------------------------------------------------------------------------

const AAC_SDP = [
  'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=Session streamed with GStreamer', 'c=IN IP4 0.0.0.0', 't=0 0', 'a=control:*',
  'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=Z0LAHtkBQBbsBEAAAAMAQAAADIPFi5I=,aMuMsg==', 'a=control:stream=0',
  'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 MPEG4-GENERIC/48000', 'a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1188;sizelength=13;indexlength=3;indexdeltalength=3', 'a=control:stream=1',
  'm=video 0 RTP/AVP 98', 'a=rtpmap:98 H265/90000', 'a=fmtp:98 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA/lZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA/oAoIDxZZZUmSTK4BAAADAAEAAAMAGQg=;sprop-pps=RAHBcrRiQA==', 'a=control:stream=2',
  'm=audio 0 RTP/AVP 0', 'a=control:stream=3', 'a=sendonly',
  'm=application 0 RTP/AVP 107', 'a=rtpmap:107 vnd.onvif.metadata/90000', '',
].join('\r\n');

const transcript = (body: string) =>
  Buffer.concat([
    Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n'),
    Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Base: rtsp://127.0.0.1:554/cam/\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`),
    Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1234\r\nSession: 12345678;timeout=60\r\n\r\n'),
    Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 12345678\r\nRTP-Info: url=rtsp://127.0.0.1:554/cam/stream=0;seq=1;rtptime=0\r\n\r\n'),
    serializeInterleaved(0, Buffer.from('80e000010000000000001234650102030405', 'hex')),
    Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n'),
    serializeInterleaved(1, Buffer.from('80c80006000012340000000000000000', 'hex')),
  ]);

function rtp(pt: number, seq: number, ts: number, payload: Buffer, marker = false): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq, 2);
  h.writeUInt32BE(ts, 4);
  h.writeUInt32BE(0xabcd, 8);
  return Buffer.concat([h, payload]);
}
const h264Packets = [
  rtp(96, 1, 0, Buffer.from([0x67, 0x42, 0xc0, 0x1e, 0xd9])),
  rtp(96, 2, 0, Buffer.from([0x18, 0x00, 0x03, 0x67, 0x42, 0xc0, 0x00, 0x02, 0x68, 0xcb])), // STAP-A
  rtp(96, 3, 0, Buffer.concat([Buffer.from([0x7c, 0x85]), Buffer.alloc(40, 1)])), // FU-A start
  rtp(96, 4, 0, Buffer.concat([Buffer.from([0x7c, 0x05]), Buffer.alloc(40, 2)])),
  rtp(96, 5, 0, Buffer.concat([Buffer.from([0x7c, 0x45]), Buffer.alloc(40, 3)]), true),
];
const h265Packets = [
  rtp(96, 1, 0, Buffer.from([0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0c, 0x00, 0x02, 0x44, 0x01])), // AP: VPS, PPS
  rtp(96, 2, 0, Buffer.concat([Buffer.from([0x62, 0x01, 0x93]), Buffer.alloc(40, 1)])), // FU start, IDR_W_RADL
  rtp(96, 3, 0, Buffer.concat([Buffer.from([0x62, 0x01, 0x53]), Buffer.alloc(40, 2)]), true),
  rtp(96, 4, 3000, Buffer.concat([Buffer.from([0x02, 0x01]), Buffer.alloc(20, 3)]), true),
];
const aacPackets = [
  rtp(97, 1, 0, Buffer.concat([Buffer.from([0x00, 0x10, 0x01, 0x40]), Buffer.alloc(40, 1)]), true),
  rtp(97, 2, 1024, Buffer.concat([Buffer.from([0x00, 0x20, 0x00, 0x50, 0x00, 0x28]), Buffer.alloc(15, 2)]), true),
  rtp(97, 3, 2048, Buffer.concat([Buffer.from([0x00, 0x10, 0x27, 0x10]), Buffer.alloc(1000, 3)]), false), // fragment of 1250
  rtp(97, 4, 2048, Buffer.concat([Buffer.from([0x00, 0x10, 0x27, 0x10]), Buffer.alloc(250, 4)]), true),
];

// ---- the families -----------------------------------------------------------------------------

test('10,000+ mutated inputs through the message reader, SDP parser, RTP parser and depacketizers throw only named errors', { timeout: 40000 }, (t) => {
  const m = new Mutator(prng(SEED));
  const deadline = Date.now() + 25000;
  const counts: Record<string, number> = {};
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);

  // 1. RTSP byte streams, cut into random chunks: the reader throws RtspParseError or nothing.
  const streams = [transcript(H264_SDP), transcript(AAC_SDP)];
  for (let i = 0; i < 3500 && Date.now() < deadline; i++) {
    const input = m.bytes(m.pick(streams), streams);
    const reader = new RtspMessageReader();
    only('RtspMessageReader', [RtspParseError], () => {
      for (let off = 0; off < input.length; ) {
        const n = 1 + m.int(200);
        reader.push(input.subarray(off, off + n));
        off += n;
      }
    }, input);
    count('rtsp');
  }

  // 2. SDP bodies: parseSdp throws SdpError or nothing; every section then maps to a track or a reason.
  const sdps = [Buffer.from(H264_SDP), Buffer.from(AAC_SDP)];
  for (let i = 0; i < 3500 && Date.now() < deadline; i++) {
    const input = m.rand() < 0.5 ? m.text(m.pick([H264_SDP, AAC_SDP]), sdps) : m.bytes(m.pick(sdps), sdps);
    only('SDP', [SdpError], () => {
      const s = parseSdp(input.toString('utf8'));
      for (const media of s.media) {
        resolveControl('rtsp://127.0.0.1/cam/', media.control);
        const why = unsupportedReason(media);
        const track = trackFromMedia(media);
        assert.equal(track === undefined, why !== undefined, 'a track exactly when there is no reason against it');
        if (track) new RtpReceiver(track, media.payloadType, () => {}, silent);
      }
      parseTransport(input.toString('latin1').slice(0, 200));
    }, input);
    count('sdp');
  }

  // 3. RTP through parseRtp and each depacketizer; and through RtpReceiver, which must never throw.
  const aacTrack: Track = { kind: 'audio', codec: { name: 'AAC', clockRate: 48000, fmtp: 'mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1188' } };
  const families: Array<{ name: string; packets: Buffer[]; make: () => { push: (p: RtpPacket) => void }; track: Track; pt: number }> = [
    { name: 'h264', packets: h264Packets, make: () => new H264Depacketizer(() => {}, { maxNalBytes: 4096, maxAccessUnitBytes: 8192 }), track: { kind: 'video', codec: { name: 'H264', clockRate: 90000 } }, pt: 96 },
    { name: 'h265', packets: h265Packets, make: () => new H265Depacketizer(() => {}, { maxNalBytes: 4096, maxAccessUnitBytes: 8192 }), track: { kind: 'video', codec: { name: 'H265', clockRate: 90000 } }, pt: 96 },
    { name: 'aac', packets: aacPackets, make: () => new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3, auDuration: 1024 }, () => {}), track: aacTrack, pt: 97 },
    { name: 'g711', packets: [rtp(8, 1, 0, Buffer.alloc(160, 0xd5))], make: () => new AudioDepacketizer(() => {}), track: { kind: 'audio', codec: { name: 'PCMA', clockRate: 8000 } }, pt: 8 },
  ];
  for (const f of families) {
    const all = families.flatMap((x) => x.packets);
    const n = f.name === 'g711' ? 400 : 1200;
    for (let i = 0; i < n && Date.now() < deadline; i++) {
      // A short run of packets, some mutated, through one depacketizer (state carries across them).
      const d = f.make();
      const frames: Frame[] = [];
      const receiver = new RtpReceiver({ ...f.track, params: undefined }, f.pt, (fr) => frames.push(fr), silent);
      for (let k = 0; k < 6; k++) {
        const base = m.pick(f.packets);
        const input = m.rand() < 0.7 ? m.bytes(base, all) : base;
        only(`${f.name} parse/depacketize`, [RtpPacketError, DepacketizeError], () => d.push(parseRtp(input)), input);
        only(`${f.name} RtpReceiver`, [], () => receiver.push(input), input);
        count(f.name);
      }
      for (const fr of frames) assert.ok(fr.data.every((b) => Buffer.isBuffer(b)), 'frames hold buffers');
    }
  }

  // 4. Small header parsers a camera's answers reach.
  const urls = [Buffer.from('rtsp://admin:p%40ss@10.0.0.1:554/live?ch=1#transport=udp#media=video#timeout=5')];
  const auth = [Buffer.from('Digest realm="cam", nonce="abc", qop="auth", opaque="x", stale=true, algorithm=MD5'), Buffer.from('Basic realm="x"')];
  for (let i = 0; i < 800 && Date.now() < deadline; i++) {
    const u = m.bytes(urls[0]!, urls).toString('latin1');
    only('parseCameraUrl', [SourceError], () => parseCameraUrl(u), u);
    const a = m.bytes(m.pick(auth), auth).toString('latin1');
    only('auth', [], () => {
      for (const c of parseChallenges([a])) new AuthAnswerer({ username: 'u', password: 'p' }, c).header('DESCRIBE', 'rtsp://x/');
    }, a);
    const cfg = m.bytes(Buffer.from('1190'), urls).toString('latin1');
    only('aac config', [], () => {
      parseAudioSpecificConfig(cfg);
      aacRtpConfig({ mode: 'AAC-hbr', sizelength: cfg, config: cfg }, 48000);
    }, cfg);
    count('headers');
  }

  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  t.diagnostic(`seed ${SEED}: ${total} inputs ${JSON.stringify(counts)}`);
  assert.ok(total >= 10000, `only ${total} inputs within the time bound (seed ${SEED})`);
});

test('mutated camera answers through a real RtspSource: start resolves or rejects with a SourceError, nothing is left', { timeout: 40000 }, async (t) => {
  const m = new Mutator(prng(SEED + 1));
  const cam = await ScriptedCamera.start();
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  const good = transcript(H264_SDP);
  const outcomes: Record<string, number> = {};
  try {
    const deadline = Date.now() + 20000;
    let runs = 0;
    for (; runs < 300 && Date.now() < deadline; runs++) {
      // One of the camera's answers is replaced by a mutated one.
      const step = m.pick(['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY']);
      const bad = m.bytes(good, [good]);
      cam.use({
        [step]: (x) => {
          const cseq = x.req.headers.get('cseq') ?? '1';
          x.raw(Buffer.from(bad.toString('latin1').replace(/CSeq: \d+/g, `CSeq: ${cseq}`), 'latin1'));
        },
      });
      const src = new RtspSource(cam.url(), 'fuzz', { requestTimeoutMs: 150, readTimeoutMs: 150, teardownGraceMs: 50 });
      const r = await src.start(new AbortController().signal, { video: ['H264', 'H265'], audio: ['AAC'] }).then(
        () => 'started',
        (e: unknown) => (e instanceof SourceError ? 'SourceError' : `other: ${String(e)}`),
      );
      outcomes[r] = (outcomes[r] ?? 0) + 1;
      assert.ok(r === 'started' || r === 'SourceError', `run ${runs} (${step}): ${r}`);
      src.close();
      await src.done;
    }
    t.diagnostic(`seed ${SEED + 1}: ${runs} runs ${JSON.stringify(outcomes)}`);
    assert.ok(runs >= 100, `only ${runs} runs`);
    assert.deepEqual(uncaught, []);
    for (const k of ['RtspSource', 'RtspClient', 'RtspClientConnection', 'RtspUdpPortPair']) assert.equal(liveObjects()[k] ?? 0, 0, `${k} left`);
  } finally {
    process.off('uncaughtException', onUncaught);
    await cam.close();
  }
});
