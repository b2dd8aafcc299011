import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { H265Depacketizer } from '../../src/rtp/h265-depacketizer.js';
import type { AccessUnit } from '../../src/rtp/h264-depacketizer.js';
import { DepacketizeError } from '../../src/rtp/errors.js';
import type { RtpPacket } from '../../src/rtp/packet.js';
import { findH265Params, h265NalType, h265ParamsFromFmtp, isH265Keyframe, withH265ParameterSets, type H265Params } from '../../src/codecs/h265.js';
import { RtpReceiver, trackFromMedia, unsupportedReason } from '../../src/rtsp/receiver.js';
import { parseSdp } from '../../src/rtsp/sdp.js';
import type { Frame } from '../../src/core/media.js';

// H.265 NAL units: a 2-byte header (F=0, type, LayerId=0, TID=1) and a body.
const nal = (type: number, len = 6, fill = type): Buffer => Buffer.concat([Buffer.from([type << 1, 0x01]), Buffer.alloc(len - 2, fill)]);
const VPS = nal(32, 12);
const SPS = nal(33, 20);
const PPS = nal(34, 6);
const IDR = nal(19, 3000, 0xab); // IDR_W_RADL
const TRAIL = nal(1, 40);

function pkt(payload: Buffer, seq: number, ts: number, marker = false): RtpPacket {
  return { marker, payloadType: 96, sequenceNumber: seq, timestamp: ts, ssrc: 1, csrc: [], payload };
}

function ap(...nals: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from([48 << 1, 0x01])];
  for (const n of nals) {
    const size = Buffer.alloc(2);
    size.writeUInt16BE(n.length);
    parts.push(size, n);
  }
  return Buffer.concat(parts);
}

/** FU packets (RFC 7798 4.4.3) for one NAL, `step` body bytes each. */
function fu(n: Buffer, step: number): Buffer[] {
  const type = h265NalType(n);
  const body = n.subarray(2);
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += step) {
    const s = off === 0 ? 0x80 : 0;
    const e = off + step >= body.length ? 0x40 : 0;
    out.push(Buffer.concat([Buffer.from([(n[0]! & 0x81) | (49 << 1), n[1]!, s | e | type]), body.subarray(off, off + step)]));
  }
  return out;
}

function collect(): { d: H265Depacketizer; aus: AccessUnit[] } {
  const aus: AccessUnit[] = [];
  return { d: new H265Depacketizer((au) => aus.push(au)), aus };
}

function errorOf(fn: () => void): DepacketizeError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof DepacketizeError) return e;
    throw e;
  }
  return undefined;
}

test('single NAL packets and an aggregation packet make one access unit per marker; IRAP is a keyframe', () => {
  const { d, aus } = collect();
  d.push(pkt(ap(VPS, SPS, PPS), 1, 3000));
  d.push(pkt(IDR.subarray(0, 500), 2, 3000, true));
  d.push(pkt(TRAIL, 3, 6000, true));
  assert.equal(aus.length, 2);
  assert.deepEqual(aus[0]!.nals.map(h265NalType), [32, 33, 34, 19]);
  assert.equal(aus[0]!.keyframe, true);
  assert.equal(aus[0]!.timestamp, 3000);
  assert.equal(aus[1]!.keyframe, false);
  assert.equal(aus[1]!.timestamp, 6000);
});

test('fragmentation units reassemble the NAL with its header (type from the FU header, layer and TID kept)', () => {
  const { d, aus } = collect();
  const withTid = Buffer.from(IDR);
  withTid[1] = 0x03; // TID 3
  const parts = fu(withTid, 1000);
  assert.equal(parts.length, 3);
  parts.forEach((p, i) => d.push(pkt(p, 10 + i, 90, i === parts.length - 1)));
  assert.equal(aus.length, 1);
  assert.deepEqual(aus[0]!.nals[0], withTid);
  assert.equal(aus[0]!.keyframe, true);
});

test('broken fragments: a lost start, a gap, an unfinished FU; each a named error, the rest delivered', () => {
  const { d, aus } = collect();
  const parts = fu(IDR, 1000);
  // Start lost: nothing was begun, so each orphan fragment is reported.
  assert.equal(errorOf(() => d.push(pkt(parts[1]!, 1, 100)))?.code, 'FuWithoutStart');
  assert.equal(errorOf(() => d.push(pkt(parts[2]!, 2, 100, true)))?.code, 'FuWithoutStart');
  assert.equal(aus.length, 0);

  // A gap inside: the FU is dropped, its later fragments are ignored silently, the AU keeps the rest.
  d.push(pkt(TRAIL, 3, 200));
  d.push(pkt(parts[0]!, 4, 200));
  assert.equal(errorOf(() => d.push(pkt(parts[2]!, 6, 200, true)))?.code, 'FuSequenceGap');
  assert.equal(aus.length, 1);
  assert.deepEqual(aus[0]!.nals, [TRAIL]);

  // Marker before the end fragment.
  assert.equal(errorOf(() => d.push(pkt(parts[0]!, 7, 300, true)))?.code, 'FuUnfinished');
  // A FU of 3 bytes has no room for data.
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([49 << 1, 1, 0x80 | 19]), 8, 400)))?.code, 'FuTruncated');
});

test('truncated aggregation packets, PACI and tiny payloads are named errors that add nothing', () => {
  const { d, aus } = collect();
  const broken = ap(VPS, SPS).subarray(0, 20);
  assert.equal(errorOf(() => d.push(pkt(broken, 1, 1)))?.code, 'ApTruncated');
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([48 << 1, 1]), 2, 1)))?.code, 'EmptyPayload');
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([48 << 1, 1, 0]), 3, 1)))?.code, 'ApTruncated');
  assert.equal(errorOf(() => d.push(pkt(Buffer.from([50 << 1, 1, 0, 0, 0]), 4, 1)))?.code, 'UnsupportedNalType');
  assert.equal(errorOf(() => d.push(pkt(Buffer.alloc(0), 5, 1, true)))?.code, 'EmptyPayload');
  assert.equal(aus.length, 0);
});

test('a lost marker: the next timestamp ends the access unit', () => {
  const { d, aus } = collect();
  d.push(pkt(TRAIL, 1, 1000));
  d.push(pkt(TRAIL, 2, 2000, true));
  assert.deepEqual(aus.map((a) => a.timestamp), [1000, 2000]);
});

test('parameter sets: from sprop-vps/sps/pps, in band, and put in front of every keyframe', () => {
  const fmtp = { 'sprop-vps': VPS.toString('base64'), 'sprop-sps': SPS.toString('base64'), 'sprop-pps': PPS.toString('base64') };
  assert.deepEqual(h265ParamsFromFmtp(fmtp), { vps: VPS, sps: SPS, pps: PPS });
  assert.deepEqual(findH265Params([TRAIL, SPS]), { sps: SPS });
  assert.equal(isH265Keyframe([nal(21)]), true, 'CRA');
  assert.equal(isH265Keyframe([nal(22)]), false, 'reserved IRAP-range type 22 is not one');

  const params: H265Params = {};
  const aud = nal(35, 3);
  assert.deepEqual(withH265ParameterSets([VPS, SPS, PPS, TRAIL], params), [VPS, SPS, PPS, TRAIL], 'not a keyframe: untouched');
  assert.deepEqual(params, { vps: VPS, sps: SPS, pps: PPS }, 'in-band sets recorded');
  assert.deepEqual(withH265ParameterSets([aud, IDR], params), [VPS, SPS, PPS, IDR], 'keyframe gets them first, AUD dropped');
});

test('an SDP H.265 section becomes a track; DON-interleaved H.265 is refused with a reason', () => {
  const text = [
    'v=0', 's=x', 'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H265/90000',
    `a=fmtp:96 sprop-vps=${VPS.toString('base64')};sprop-sps=${SPS.toString('base64')};sprop-pps=${PPS.toString('base64')}`,
    'm=video 0 RTP/AVP 97', 'a=rtpmap:97 H265/90000', 'a=fmtp:97 sprop-max-don-diff=4', '',
  ].join('\r\n');
  const [m0, m1] = parseSdp(text).media;
  const t = trackFromMedia(m0!)!;
  assert.equal(t.codec.name, 'H265');
  assert.deepEqual(t.params, { vps: VPS, sps: SPS, pps: PPS });
  assert.equal(trackFromMedia(m1!), undefined);
  assert.match(unsupportedReason(m1!)!, /sprop-max-don-diff/);
});

test('RtpReceiver turns H.265 RTP into frames with VPS/SPS/PPS on keyframes, dropping bad packets', () => {
  const track = { kind: 'video' as const, codec: { name: 'H265' as const, clockRate: 90000 } };
  const frames: Frame[] = [];
  const r = new RtpReceiver(track, 96, (f) => frames.push(f), pino({ level: 'silent' }));
  const bytes = (payload: Buffer, seq: number, ts: number, marker: boolean) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (marker ? 0x80 : 0) | 96;
    h.writeUInt16BE(seq, 2);
    h.writeUInt32BE(ts, 4);
    return Buffer.concat([h, payload]);
  };
  r.push(bytes(ap(VPS, SPS, PPS), 1, 0, false));
  fu(IDR, 1200).forEach((p, i, all) => r.push(bytes(p, 2 + i, 0, i === all.length - 1)));
  r.push(bytes(Buffer.from([49 << 1, 1]), 9, 3000, false)); // junk: logged and dropped
  r.push(bytes(TRAIL, 10, 3000, true));
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0]!.data.map(h265NalType), [32, 33, 34, 19]);
  assert.equal(frames[0]!.keyframe, true);
  assert.deepEqual(frames[1]!.data, [TRAIL]);
});
