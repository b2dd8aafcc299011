// An Opus packet's duration from its TOC byte and frame-count framing (RFC 6716 3.1, 3.2), with
// the validity rules of 3.4 (R1-R7) that libopus's opus_packet_parse applies: a packet that
// passes here is one the decoder accepts, so garbage is refused before it reaches the decoder
// (whose wasm build prints a line to stderr for every packet it refuses).

/** Samples at 48 kHz of one frame, by TOC configuration number (RFC 6716 table 2). */
const FRAME_SAMPLES: readonly number[] = [
  // SILK NB, MB, WB: 10, 20, 40, 60 ms
  480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880,
  // Hybrid SWB, FB: 10, 20 ms
  480, 960, 480, 960,
  // CELT NB, WB, SWB, FB: 2.5, 5, 10, 20 ms
  120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960,
];

const MAX_FRAME_BYTES = 1275;
/** 120 ms at 48 kHz: the longest packet (R5). */
const MAX_PACKET_SAMPLES = 5760;

export type OpusPacketCheck = { ok: true; samples: number; frames: number } | { ok: false; reason: string };

/** A frame length coded in one or two bytes (RFC 6716 3.2.1) at `at`; undefined past the end. */
function frameLength(p: Uint8Array, at: number): { length: number; bytes: number } | undefined {
  if (at >= p.length) return undefined;
  const b = p[at]!;
  if (b < 252) return { length: b, bytes: 1 };
  if (at + 1 >= p.length) return undefined;
  return { length: b + 4 * p[at + 1]!, bytes: 2 };
}

/** The duration (48 kHz samples) and frame count of a packet, or why it is not a valid one. */
export function checkOpusPacket(p: Uint8Array): OpusPacketCheck {
  if (p.length < 1) return { ok: false, reason: 'empty packet' };
  const toc = p[0]!;
  const frameSamples = FRAME_SAMPLES[toc >> 3]!;
  const code = toc & 3;
  const rest = p.length - 1;
  if (code === 0) {
    if (rest > MAX_FRAME_BYTES) return { ok: false, reason: `a ${rest}-byte frame` };
    return { ok: true, samples: frameSamples, frames: 1 };
  }
  if (code === 1) {
    if (rest % 2 !== 0) return { ok: false, reason: 'two equal frames in an odd number of bytes' };
    if (rest / 2 > MAX_FRAME_BYTES) return { ok: false, reason: `two ${rest / 2}-byte frames` };
    return { ok: true, samples: 2 * frameSamples, frames: 2 };
  }
  if (code === 2) {
    const first = frameLength(p, 1);
    if (!first) return { ok: false, reason: 'first frame length truncated' };
    const left = p.length - 1 - first.bytes;
    if (first.length > left) return { ok: false, reason: `first frame of ${first.length} bytes with ${left} left` };
    if (left - first.length > MAX_FRAME_BYTES) return { ok: false, reason: `a ${left - first.length}-byte frame` };
    return { ok: true, samples: 2 * frameSamples, frames: 2 };
  }
  // code 3: a frame count byte, optional padding, CBR or VBR frames.
  if (p.length < 2) return { ok: false, reason: 'frame count byte missing' };
  const fc = p[1]!;
  const frames = fc & 0x3f;
  if (frames === 0) return { ok: false, reason: 'zero frames' };
  if (frames * frameSamples > MAX_PACKET_SAMPLES) return { ok: false, reason: `${frames} frames last over 120 ms` };
  let at = 2;
  let padding = 0;
  if (fc & 0x40) {
    for (;;) {
      if (at >= p.length) return { ok: false, reason: 'padding length truncated' };
      const b = p[at++]!;
      padding += b === 255 ? 254 : b;
      if (b !== 255) break;
    }
  }
  let left = p.length - at - padding;
  if (left < 0) return { ok: false, reason: `${padding} bytes of padding do not fit` };
  if (fc & 0x80) {
    // VBR: the lengths of all frames but the last.
    for (let i = 0; i < frames - 1; i++) {
      const f = frameLength(p, at);
      if (!f) return { ok: false, reason: 'frame length truncated' };
      at += f.bytes;
      left -= f.bytes;
      if (f.length > MAX_FRAME_BYTES) return { ok: false, reason: `a ${f.length}-byte frame` };
      if (f.length > left) return { ok: false, reason: `a frame of ${f.length} bytes with ${left} left` };
      left -= f.length;
    }
    if (left < 0) return { ok: false, reason: 'frame lengths overrun the packet' };
    if (left > MAX_FRAME_BYTES) return { ok: false, reason: `a last frame of ${left} bytes` };
  } else {
    if (left % frames !== 0) return { ok: false, reason: `${left} bytes do not split into ${frames} equal frames` };
    if (left / frames > MAX_FRAME_BYTES) return { ok: false, reason: `${frames} frames of ${left / frames} bytes` };
  }
  return { ok: true, samples: frames * frameSamples, frames };
}
