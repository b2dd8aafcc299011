// G.711 A-law and µ-law sample conversion (ITU-T G.711): 16-bit linear PCM to one byte a sample
// and back. Table-driven, so converting a sample is one lookup: 512 bytes per law to decode, built
// at load, and 16 KiB per law to encode, built on first use (building them at load made V8
// optimize the loop at every start and page in its optimizing compiler: ~3.8 MiB of an idle
// camrelay's RSS, for a talk feature most never use). The encoder rounds to the nearest quantization
// level exactly as ffmpeg's pcm_alaw/pcm_mulaw encoders do (libavcodec/pcm_tablegen.h), so what a
// camera gets from camrelay and from an ffmpeg transcode is the same, byte for byte; decoding
// gives G.711's reconstruction values (the middle of each interval), again as ffmpeg does.

export type G711Codec = 'PCMA' | 'PCMU';

/** The linear value of each A-law code (even bits inverted, 0x55), sign in bit 7. */
function alawToLinearComputed(code: number): number {
  const a = code ^ 0x55;
  const mantissa = a & 0x0f;
  const segment = (a & 0x70) >> 4;
  const t = segment ? (mantissa * 2 + 1 + 32) << (segment + 2) : (mantissa * 2 + 1) << 3;
  return a & 0x80 ? t : -t;
}

/** The linear value of each µ-law code (all bits inverted, bias 0x84), sign in bit 7. */
function ulawToLinearComputed(code: number): number {
  const u = ~code & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function decodeTable(toLinear: (code: number) => number): Int16Array {
  const table = new Int16Array(256);
  for (let c = 0; c < 256; c++) table[c] = toLinear(c);
  return table;
}

/**
 * linear → code, indexed by (sample + 32768) >> 2 (14 bits): each code owns the inputs nearer to
 * its value than to its neighbours', positive codes above index 8192 and their mirror below.
 * `mask` is the law's bit inversion (0xd5 for A-law, 0xff for µ-law).
 */
function encodeTable(toLinear: (code: number) => number, mask: number): Uint8Array {
  const table = new Uint8Array(16384);
  let j = 1;
  table[8192] = mask;
  for (let i = 0; i < 127; i++) {
    const v1 = toLinear(i ^ mask);
    const v2 = toLinear((i + 1) ^ mask);
    const v = (v1 + v2 + 4) >> 3;
    for (; j < v; j++) {
      table[8192 - j] = i ^ (mask ^ 0x80);
      table[8192 + j] = i ^ mask;
    }
  }
  for (; j < 8192; j++) {
    table[8192 - j] = 127 ^ (mask ^ 0x80);
    table[8192 + j] = 127 ^ mask;
  }
  table[0] = table[1]!;
  return table;
}

/** Code → linear sample, for each law. */
export const ALAW_TO_LINEAR: Readonly<Int16Array> = decodeTable(alawToLinearComputed);
export const ULAW_TO_LINEAR: Readonly<Int16Array> = decodeTable(ulawToLinearComputed);
/** ((sample + 32768) >> 2) → code, for each law; built on first use. */
let linearToAlawTable: Uint8Array | undefined;
let linearToUlawTable: Uint8Array | undefined;

/** Clamps to the 16-bit range (and truncates a fraction toward zero). */
function toS16(sample: number): number {
  return sample >= 32767 ? 32767 : sample <= -32768 ? -32768 : sample | 0;
}

export function linearToAlaw(sample: number): number {
  return g711EncodeTable('PCMA')[(toS16(sample) + 32768) >> 2]!;
}

export function linearToUlaw(sample: number): number {
  return g711EncodeTable('PCMU')[(toS16(sample) + 32768) >> 2]!;
}

export function alawToLinear(code: number): number {
  return ALAW_TO_LINEAR[code & 0xff]!;
}

export function ulawToLinear(code: number): number {
  return ULAW_TO_LINEAR[code & 0xff]!;
}

/** The encode table of a codec: `table[(s16 + 32768) >> 2]` is the code of s16. */
export function g711EncodeTable(codec: G711Codec): Readonly<Uint8Array> {
  if (codec === 'PCMA') return (linearToAlawTable ??= encodeTable(alawToLinearComputed, 0xd5));
  return (linearToUlawTable ??= encodeTable(ulawToLinearComputed, 0xff));
}

/** The decode table of a codec: `table[code]` is the linear sample. */
export function g711DecodeTable(codec: G711Codec): Readonly<Int16Array> {
  return codec === 'PCMA' ? ALAW_TO_LINEAR : ULAW_TO_LINEAR;
}

/** Encodes 16-bit samples, one code a sample, into `out` (a new buffer when not given). */
export function g711Encode(codec: G711Codec, pcm: Int16Array, out: Uint8Array = Buffer.allocUnsafe(pcm.length)): Uint8Array {
  if (out.length < pcm.length) throw new RangeError(`g711Encode: ${pcm.length} samples do not fit in ${out.length} bytes`);
  const table = g711EncodeTable(codec);
  // Int16Array elements are in range: no clamp needed.
  for (let i = 0; i < pcm.length; i++) out[i] = table[(pcm[i]! + 32768) >> 2]!;
  return out;
}

/** Decodes codes into 16-bit samples, into `out` (a new array when not given). */
export function g711Decode(codec: G711Codec, codes: Uint8Array, out: Int16Array = new Int16Array(codes.length)): Int16Array {
  if (out.length < codes.length) throw new RangeError(`g711Decode: ${codes.length} codes do not fit in ${out.length} samples`);
  const table = g711DecodeTable(codec);
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]!]!;
  return out;
}
