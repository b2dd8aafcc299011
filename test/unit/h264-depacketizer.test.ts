import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { H264Depacketizer, type AccessUnit } from '../../src/rtp/h264-depacketizer.js';
import { AudioDepacketizer, type AudioUnit } from '../../src/rtp/audio-depacketizer.js';
import { parseRtp, type RtpPacket } from '../../src/rtp/packet.js';
import { DepacketizeError, RtpPacketError } from '../../src/rtp/errors.js';
import { TimestampUnwrapper } from '../../src/rtp/timestamp.js';
import { nalType, parseSpropParameterSets, withParameterSets, type H264Params } from '../../src/codecs/h264.js';
import { RtpReceiver } from '../../src/rtsp/receiver.js';
import type { Frame, Track } from '../../src/core/media.js';

// Hand-built NAL units: the first byte is the header (F=0, NRI=3, type).
const nal = (type: number, len = 6, fill = type): Buffer => Buffer.concat([Buffer.from([0x60 | type]), Buffer.alloc(len - 1, fill)]);
const SPS = nal(7, 10);
const PPS = nal(8, 4);
const IDR = nal(5, 3000, 0xab);
const P = nal(1, 40);

interface RtpOpts {
  seq: number;
  ts: number;
  marker?: boolean;
  pt?: number;
  padding?: number;
  csrc?: number[];
  ext?: Buffer;
}

/** An RTP packet as bytes (RFC 3550 5.1). */
function rtpBytes(payload: Buffer, o: RtpOpts): Buffer {
  const csrc = o.csrc ?? [];
  const head = Buffer.alloc(12 + csrc.length * 4);
  head[0] = 0x80 | (o.padding ? 0x20 : 0) | (o.ext ? 0x10 : 0) | csrc.length;
  head[1] = (o.marker ? 0x80 : 0) | (o.pt ?? 96);
  head.writeUInt16BE(o.seq & 0xffff, 2);
  head.writeUInt32BE(o.ts >>> 0, 4);
  head.writeUInt32BE(0x1234, 8);
  csrc.forEach((c, i) => head.writeUInt32BE(c, 12 + i * 4));
  const parts: Buffer[] = [head];
  if (o.ext) {
    const eh = Buffer.alloc(4);
    eh.writeUInt16BE(0xbede, 0);
    eh.writeUInt16BE(o.ext.length / 4, 2);
    parts.push(eh, o.ext);
  }
  parts.push(payload);
  if (o.padding) {
    const pad = Buffer.alloc(o.padding);
    pad[o.padding - 1] = o.padding;
    parts.push(pad);
  }
  return Buffer.concat(parts);
}

const pkt = (payload: Buffer, o: RtpOpts): RtpPacket => parseRtp(rtpBytes(payload, o));

function stapA(...nals: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x78])]; // NRI 3, type 24
  for (const n of nals) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(n.length);
    parts.push(len, n);
  }
  return Buffer.concat(parts);
}

/** Splits a NAL into FU-A payloads of at most `size` data bytes. */
function fuA(n: Buffer, size: number): Buffer[] {
  const indicator = (n[0]! & 0xe0) | 28;
  const type = n[0]! & 0x1f;
  const body = n.subarray(1);
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += size) {
    const start = off === 0;
    const end = off + size >= body.length;
    out.push(Buffer.concat([Buffer.from([indicator, (start ? 0x80 : 0) | (end ? 0x40 : 0) | type]), body.subarray(off, off + size)]));
  }
  return out;
}

function collect(limits?: { maxNalBytes: number; maxAccessUnitBytes: number }) {
  const aus: AccessUnit[] = [];
  const d = new H264Depacketizer((au) => aus.push(au), limits);
  const errors: string[] = [];
  const push = (p: RtpPacket) => {
    try {
      d.push(p);
    } catch (e) {
      assert.ok(e instanceof DepacketizeError, `unexpected ${String(e)}`);
      errors.push(e.code);
    }
  };
  return { aus, errors, push };
}

const types = (au: AccessUnit | undefined) => au?.nals.map(nalType);

// ---- RTP header -------------------------------------------------------------------------------

test('RTP header: fields, CSRCs, extension and padding are honoured', { timeout: 5000 }, () => {
  const payload = Buffer.from([1, 2, 3]);
  const p = parseRtp(rtpBytes(payload, { seq: 65535, ts: 0xfffffff0, marker: true, pt: 97, padding: 4, csrc: [7, 8], ext: Buffer.alloc(8, 9) }));
  assert.equal(p.sequenceNumber, 65535);
  assert.equal(p.timestamp, 0xfffffff0);
  assert.equal(p.marker, true);
  assert.equal(p.payloadType, 97);
  assert.deepEqual(p.csrc, [7, 8]);
  assert.equal(p.extension?.profile, 0xbede);
  assert.equal(p.extension?.data.length, 8);
  assert.deepEqual(p.payload, payload);
});

const badRtp: Array<[string, Buffer, string]> = [
  ['shorter than the header', Buffer.alloc(11, 0x80), 'RtpTruncated'],
  ['version 1', (() => { const b = rtpBytes(P, { seq: 1, ts: 1 }); b[0] = 0x40; return b; })(), 'RtpBadVersion'],
  ['CSRCs past the end', (() => { const b = rtpBytes(Buffer.alloc(0), { seq: 1, ts: 1 }); b[0] = 0x8f; return b; })(), 'RtpTruncated'],
  ['extension past the end', (() => { const b = rtpBytes(Buffer.alloc(8), { seq: 1, ts: 1, ext: Buffer.alloc(4) }); b.writeUInt16BE(100, 14); return b; })(), 'RtpBadExtension'],
  ['extension header cut', (() => { const b = rtpBytes(Buffer.alloc(2), { seq: 1, ts: 1 }); b[0] = b[0]! | 0x10; return b; })(), 'RtpBadExtension'],
  ['padding count 0', (() => { const b = rtpBytes(P, { seq: 1, ts: 1, padding: 2 }); b[b.length - 1] = 0; return b; })(), 'RtpBadPadding'],
  ['padding longer than the payload', (() => { const b = rtpBytes(P, { seq: 1, ts: 1, padding: 2 }); b[b.length - 1] = 200; return b; })(), 'RtpBadPadding'],
];
for (const [name, bytes, code] of badRtp) {
  test(`RTP header: ${name} → ${code}`, { timeout: 5000 }, () => {
    assert.throws(() => parseRtp(bytes), (e: unknown) => e instanceof RtpPacketError && e.name === 'RtpPacketError' && e.code === code);
  });
}

// ---- grouping into access units ---------------------------------------------------------------

interface Case {
  name: string;
  packets: Array<[payload: Buffer, opts: Omit<RtpOpts, 'seq'>]>;
  /** NAL types per delivered AU. */
  aus: number[][];
  keyframes?: boolean[];
  errors?: string[];
  limits?: { maxNalBytes: number; maxAccessUnitBytes: number };
}

const idrFus = fuA(IDR, 1000); // 3 fragments
const cases: Case[] = [
  { name: 'single NAL with marker', packets: [[P, { ts: 100, marker: true }]], aus: [[1]], keyframes: [false] },
  {
    name: 'STAP-A (SPS, PPS) then a FU-A IDR',
    packets: [[stapA(SPS, PPS), { ts: 100 }], ...idrFus.map((f, i): [Buffer, Omit<RtpOpts, 'seq'>] => [f, { ts: 100, marker: i === idrFus.length - 1 }])],
    aus: [[7, 8, 5]],
    keyframes: [true],
  },
  {
    name: 'two slices of one picture in two packets',
    packets: [[P, { ts: 100 }], [P, { ts: 100, marker: true }], [P, { ts: 3700, marker: true }]],
    aus: [[1, 1], [1]],
  },
  {
    name: 'a lost marker: a new timestamp ends the access unit',
    packets: [[P, { ts: 100 }], [P, { ts: 3700 }], [P, { ts: 7300, marker: true }]],
    aus: [[1], [1], [1]],
  },
  {
    name: 'truncated FU-A (indicator and header only) is dropped',
    packets: [[Buffer.from([0x7c, 0x85]), { ts: 100 }], [P, { ts: 100, marker: true }]],
    aus: [[1]],
    errors: ['FuaTruncated'],
  },
  {
    name: 'FU-A middle fragment without a start',
    packets: [[idrFus[1]!, { ts: 100 }], [idrFus[2]!, { ts: 100, marker: true }], [P, { ts: 3700, marker: true }]],
    aus: [[1]],
    errors: ['FuaWithoutStart', 'FuaWithoutStart'],
  },
  {
    name: 'FU-A end fragment missing before the marker',
    packets: [[idrFus[0]!, { ts: 100 }], [idrFus[1]!, { ts: 100, marker: true }], [P, { ts: 3700, marker: true }]],
    aus: [[1]],
    errors: ['FuaUnfinished'],
  },
  {
    name: 'FU-A end fragment missing before a new timestamp',
    packets: [[SPS, { ts: 100 }], [idrFus[0]!, { ts: 100 }], [P, { ts: 3700, marker: true }]],
    aus: [[7], [1]],
    errors: ['FuaUnfinished'],
  },
  {
    name: 'a new FU-A start before the previous one ended',
    packets: [[idrFus[0]!, { ts: 100 }], ...idrFus.map((f, i): [Buffer, Omit<RtpOpts, 'seq'>] => [f, { ts: 100, marker: i === 2 }])],
    aus: [[5]],
    errors: ['FuaUnfinished'],
  },
  {
    name: 'FU-A larger than the limit is dropped, the rest of the AU survives',
    packets: [[SPS, { ts: 100 }], ...idrFus.map((f): [Buffer, Omit<RtpOpts, 'seq'>] => [f, { ts: 100 }]), [P, { ts: 100, marker: true }]],
    aus: [[7, 1]],
    errors: ['NalTooLarge'],
    limits: { maxNalBytes: 1500, maxAccessUnitBytes: 100_000 },
  },
  {
    name: 'STAP-A with a size past the end adds nothing',
    packets: [[Buffer.concat([stapA(SPS), Buffer.from([0x00, 0x50, 0x68])]), { ts: 100 }], [P, { ts: 100, marker: true }]],
    aus: [[1]],
    errors: ['StapTruncated'],
  },
  {
    name: 'STAP-A with a zero size',
    packets: [[Buffer.from([0x78, 0x00, 0x00]), { ts: 100, marker: true }]],
    aus: [],
    errors: ['StapTruncated'],
  },
  {
    name: 'STAP-B, MTAP and FU-B are not used in non-interleaved mode',
    packets: [[Buffer.from([0x79, 0, 0]), { ts: 100 }], [Buffer.from([0x7a, 0, 0]), { ts: 100 }], [Buffer.from([0x7d, 0x85, 0, 0]), { ts: 100, marker: true }]],
    aus: [],
    errors: ['UnsupportedNalType', 'UnsupportedNalType', 'UnsupportedNalType'],
  },
  { name: 'empty payload', packets: [[Buffer.alloc(0), { ts: 100, marker: true }]], aus: [], errors: ['EmptyPayload'] },
  {
    name: 'access unit over the limit is dropped whole, the next one is fine',
    packets: [[P, { ts: 100 }], [P, { ts: 100 }], [P, { ts: 100, marker: true }], [P, { ts: 3700, marker: true }]],
    aus: [[1]],
    errors: ['AccessUnitTooLarge'],
    limits: { maxNalBytes: 1000, maxAccessUnitBytes: 100 },
  },
];

for (const c of cases) {
  test(`H.264: ${c.name}`, { timeout: 5000 }, () => {
    const { aus, errors, push } = collect(c.limits);
    c.packets.forEach(([payload, o], i) => push(pkt(payload, { ...o, seq: 1000 + i })));
    assert.deepEqual(aus.map(types), c.aus);
    if (c.keyframes) assert.deepEqual(aus.map((a) => a.keyframe), c.keyframes);
    assert.deepEqual(errors, c.errors ?? []);
  });
}

test('H.264: FU-A reassembles byte-exact', { timeout: 5000 }, () => {
  const { aus, push } = collect();
  fuA(IDR, 700).forEach((f, i, all) => push(pkt(f, { seq: 65534 + i, ts: 9, marker: i === all.length - 1 })));
  assert.equal(aus.length, 1);
  assert.deepEqual(aus[0]?.nals[0], IDR);
});

test('H.264: a sequence gap inside a FU-A drops that NAL and its remaining fragments quietly', { timeout: 5000 }, () => {
  const frags = fuA(IDR, 500); // 6 fragments
  const { aus, errors, push } = collect();
  push(pkt(SPS, { seq: 10, ts: 100 }));
  push(pkt(frags[0]!, { seq: 11, ts: 100 }));
  push(pkt(frags[1]!, { seq: 12, ts: 100 }));
  // 13 is lost
  push(pkt(frags[3]!, { seq: 14, ts: 100 }));
  push(pkt(frags[4]!, { seq: 15, ts: 100 }));
  push(pkt(frags[5]!, { seq: 16, ts: 100 }));
  push(pkt(PPS, { seq: 17, ts: 100, marker: true }));
  push(pkt(P, { seq: 18, ts: 3700, marker: true }));
  assert.deepEqual(errors, ['FuaSequenceGap']);
  assert.deepEqual(aus.map(types), [[7, 8], [1]]);
});

test('H.264: delivered NALs are copies, not views into the packet buffer', { timeout: 5000 }, () => {
  const { aus, push } = collect();
  const bytes = rtpBytes(P, { seq: 1, ts: 1, marker: true });
  push(parseRtp(bytes));
  bytes.fill(0);
  assert.deepEqual(aus[0]?.nals[0], P);
});

test('timestamps unwrap past 2^32 and stay monotonic', { timeout: 5000 }, () => {
  const { aus, push } = collect();
  const tss = [0xffff_f000, 0xffff_fc00, 0x0000_0800, 0x0000_1400];
  tss.forEach((ts, i) => push(pkt(P, { seq: i, ts, marker: true })));
  assert.deepEqual(aus.map((a) => a.timestamp - 0xffff_f000), [0, 0xc00, 0x1800, 0x2400]);
  const u = new TimestampUnwrapper();
  assert.equal(u.unwrap(5), 5);
  assert.equal(u.unwrap(3), 3, 'a slightly older timestamp steps back, not 2^32 ahead');
});

// ---- parameter sets ---------------------------------------------------------------------------

const AUD = nal(9, 2);
const SEI = nal(6, 8);
const SPS2 = nal(7, 12, 0x42);
const paramCases: Array<{ name: string; in: Buffer[]; params: H264Params; out: Buffer[]; after: H264Params }> = [
  { name: 'IDR alone gets the stored SPS and PPS', in: [IDR], params: { sps: SPS, pps: PPS }, out: [SPS, PPS, IDR], after: { sps: SPS, pps: PPS } },
  { name: 'in-band SPS/PPS are taken and moved to the front', in: [AUD, SEI, SPS2, PPS, IDR], params: { sps: SPS, pps: PPS }, out: [SPS2, PPS, SEI, IDR], after: { sps: SPS2, pps: PPS } },
  { name: 'a missing PPS is added from the stored one', in: [SPS2, IDR], params: { pps: PPS }, out: [SPS2, PPS, IDR], after: { sps: SPS2, pps: PPS } },
  { name: 'a P frame passes unchanged but updates params', in: [SPS2, P], params: {}, out: [SPS2, P], after: { sps: SPS2 } },
  { name: 'no known params: IDR delivered as it is', in: [SEI, IDR], params: {}, out: [SEI, IDR], after: {} },
];
for (const c of paramCases) {
  test(`parameter sets: ${c.name}`, { timeout: 5000 }, () => {
    const params = { ...c.params };
    assert.deepEqual(withParameterSets(c.in, params), c.out);
    assert.deepEqual(params, c.after);
  });
}

test('sprop-parameter-sets decode to NAL units', { timeout: 5000 }, () => {
  const nals = parseSpropParameterSets(`${SPS.toString('base64')}, ${PPS.toString('base64')},!!`);
  assert.deepEqual(nals, [SPS, PPS]);
});

// ---- receiver: parse + depacketize + params, never throws on bad input ------------------------

test('RtpReceiver drops bad packets (bad padding, broken FU-A) and keeps delivering, SPS/PPS before every IDR', { timeout: 5000 }, () => {
  const frames: Frame[] = [];
  const track: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 }, params: { sps: SPS, pps: PPS } };
  const r = new RtpReceiver(track, 96, (f) => frames.push(f), pino({ level: 'silent' }));
  const badPadding = rtpBytes(P, { seq: 1, ts: 100, marker: true, padding: 2 });
  badPadding[badPadding.length - 1] = 90;
  r.push(badPadding);
  r.push(rtpBytes(idrFus[1]!, { seq: 2, ts: 100 }));
  r.push(rtpBytes(Buffer.from([0x7c]), { seq: 3, ts: 100 }));
  r.push(rtpBytes(P, { seq: 4, ts: 100, marker: true, pt: 13 })); // another payload type: ignored
  idrFus.forEach((f, i) => r.push(rtpBytes(f, { seq: 5 + i, ts: 3700, marker: i === 2 })));
  r.push(rtpBytes(P, { seq: 8, ts: 7300, marker: true }));
  assert.deepEqual(frames.map((f) => [f.keyframe, f.data.map(nalType)]), [[true, [7, 8, 5]], [false, [1]]]);
  assert.ok(frames.every((f) => f.track === track));
});

test('audio: one payload is one frame, copied; empty payload is an error', { timeout: 5000 }, () => {
  const units: AudioUnit[] = [];
  const d = new AudioDepacketizer((u) => units.push(u));
  const bytes = rtpBytes(Buffer.from([1, 2, 3]), { seq: 1, ts: 0xffffffff, pt: 8 });
  d.push(parseRtp(bytes));
  bytes.fill(0);
  d.push(pkt(Buffer.from([4]), { seq: 2, ts: 159, pt: 8 }));
  assert.deepEqual(units.map((u) => [u.timestamp - 0xffffffff, [...u.data]]), [[0, [1, 2, 3]], [160, [4]]]);
  assert.throws(() => d.push(pkt(Buffer.alloc(0), { seq: 3, ts: 319, pt: 8 })), (e: unknown) => e instanceof DepacketizeError && e.code === 'EmptyPayload');
});
