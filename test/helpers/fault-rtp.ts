// What a WebRTC viewer sees across a source fault, read from the H.264 RTP packets it received:
// one continuous RTP stream (one SSRC, every sequence number +1, timestamps never going back),
// and, after the gap, a whole keyframe before any other picture.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { RtpPacket } from 'werift';
import type { Viewer } from './werift-viewer.js';

/**
 * Arrival times (ms) of a viewer's video packets, index for index with `viewer.video` (subscribed
 * after the viewer's own listener, so in the same order). Call before the viewer connects.
 */
export function videoArrivals(v: Viewer): number[] {
  const at: number[] = [];
  v.pc.onTrack.subscribe((t) => {
    if (t.kind === 'video') t.onReceiveRtp.subscribe(() => at.push(performance.now()));
  });
  return at;
}

/** The first packet after the longest silence at or after packet `from`: where a new source began. */
export function afterLongestGap(at: readonly number[], from: number): { index: number; ms: number } {
  let best = { index: -1, ms: -1 };
  for (let i = Math.max(1, from); i < at.length; i++) {
    const ms = at[i]! - at[i - 1]!;
    if (ms > best.ms) best = { index: i, ms: Math.round(ms) };
  }
  assert.ok(best.index > 0, `packets after index ${from}`);
  return best;
}

/** NAL unit types a packet carries (STAP-A: each aggregated one; FU-A: the fragmented one's). */
export function nalTypes(p: RtpPacket): number[] {
  const t = p.payload[0]! & 0x1f;
  if (t === 28) return [p.payload[1]! & 0x1f];
  if (t !== 24) return [t];
  const out: number[] = [];
  for (let i = 1; i + 2 < p.payload.length; ) {
    const size = p.payload.readUInt16BE(i);
    out.push(p.payload[i + 2]! & 0x1f);
    i += 2 + size;
  }
  return out;
}

/** One SSRC, each sequence number exactly one more than the last, timestamps never backwards. */
export function assertContinuous(packets: readonly RtpPacket[], what: string): void {
  assert.ok(packets.length > 1, `${what}: packets to compare`);
  assert.deepEqual([...new Set(packets.map((p) => p.header.ssrc))], [packets[0]!.header.ssrc], `${what}: one SSRC`);
  for (let i = 1; i < packets.length; i++) {
    const a = packets[i - 1]!.header;
    const b = packets[i]!.header;
    const step = (b.sequenceNumber - a.sequenceNumber + 0x10000) % 0x10000;
    assert.equal(step, 1, `${what}: sequence ${a.sequenceNumber} → ${b.sequenceNumber} at packet ${i} of ${packets.length}`);
    const dt = (b.timestamp - a.timestamp + 2 ** 32) % 2 ** 32;
    assert.ok(dt < 2 ** 31, `${what}: timestamp went back (${a.timestamp} → ${b.timestamp}) at packet ${i}`);
  }
}

/**
 * The first picture in `packets` is an IDR with SPS and PPS in front of it (or under its
 * timestamp): a decoder starting there shows a whole picture, with no gray smear.
 */
export function assertKeyframeFirst(packets: readonly RtpPacket[], what: string): void {
  const seen = new Set<number>();
  for (const p of packets) {
    const types = nalTypes(p);
    const slice = types.find((t) => t === 1 || t === 5);
    for (const t of types) seen.add(t);
    if (slice === undefined) continue;
    assert.equal(slice, 5, `${what}: the first picture is a keyframe (NAL types before it: ${[...seen].join(',')})`);
    assert.ok(seen.has(7) && seen.has(8), `${what}: SPS and PPS come with the first keyframe (saw ${[...seen].join(',')})`);
    return;
  }
  assert.fail(`${what}: no picture in ${packets.length} packets`);
}
