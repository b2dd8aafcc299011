// AAC as ffmpeg writes it to a pipe (ADTS, ISO/IEC 13818-7 6.2, 14496-3 1.A.2) cut into access
// units, and an access unit as an RFC 3640 AAC-hbr RTP payload with the AU header layout a
// camera's fmtp asked for. The reader holds at most one frame's bytes (the 13-bit frame length
// caps a frame at 8191): whatever a chunk leaves over is less than the frame it starts.

/** The ADTS sampling frequency indexes (ISO/IEC 14496-3 1.6.3.4), index → Hz. */
export const ADTS_RATES: readonly number[] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** What the frames must say: the stream ffmpeg was asked for. */
export interface AdtsExpect {
  sampleRate: number;
  channels: number;
}

/** A header that is not ADTS, or not the stream asked for: the encoder's output cannot be trusted past it. */
export class AdtsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdtsError';
  }
}

export class AdtsReader {
  #pending: Buffer = Buffer.alloc(0);
  readonly #rateIndex: number;
  readonly #channels: number;
  /** Frames read. */
  frames = 0;

  constructor(expect: AdtsExpect) {
    this.#rateIndex = ADTS_RATES.indexOf(expect.sampleRate);
    if (this.#rateIndex < 0) throw new RangeError(`ADTS has no sampling index for ${expect.sampleRate} Hz`);
    this.#channels = expect.channels;
  }

  /** Bytes waiting for the rest of their frame (under 8191). */
  get pending(): number {
    return this.#pending.length;
  }

  /** The raw access units (ADTS headers removed) that `chunk` completes; throws AdtsError on a malformed header. */
  push(chunk: Buffer): Buffer[] {
    let buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const out: Buffer[] = [];
    for (;;) {
      if (buf.length < 7) break;
      const { headerLength, frameLength } = this.#header(buf);
      if (buf.length < frameLength) break;
      // A copy: the chunk is the pipe's buffer, the unit outlives it.
      out.push(Buffer.from(buf.subarray(headerLength, frameLength)));
      this.frames++;
      buf = buf.subarray(frameLength);
    }
    this.#pending = Buffer.from(buf);
    return out;
  }

  #header(b: Buffer): { headerLength: number; frameLength: number } {
    const at = `ADTS frame ${this.frames}`;
    if (b[0] !== 0xff || (b[1]! & 0xf6) !== 0xf0) throw new AdtsError(`${at}: no ADTS sync word (${b.subarray(0, 2).toString('hex')})`);
    const protectionAbsent = b[1]! & 1;
    const objectType = (b[2]! >> 6) + 1;
    const rateIndex = (b[2]! >> 2) & 0x0f;
    const channels = ((b[2]! & 1) << 2) | (b[3]! >> 6);
    const frameLength = ((b[3]! & 3) << 11) | (b[4]! << 3) | (b[5]! >> 5);
    const blocks = (b[6]! & 3) + 1;
    const headerLength = protectionAbsent ? 7 : 9;
    if (objectType !== 2) throw new AdtsError(`${at}: object type ${objectType}, not AAC-LC`);
    if (rateIndex !== this.#rateIndex) throw new AdtsError(`${at}: ${ADTS_RATES[rateIndex] ?? `index ${rateIndex}`} Hz, not ${ADTS_RATES[this.#rateIndex]}`);
    if (channels !== this.#channels) throw new AdtsError(`${at}: ${channels} channels, not ${this.#channels}`);
    if (blocks !== 1) throw new AdtsError(`${at}: ${blocks} raw data blocks (one access unit per frame expected)`);
    if (frameLength <= headerLength) throw new AdtsError(`${at}: frame length ${frameLength}`);
    return { headerLength, frameLength };
  }
}

/** RFC 3640 3.2.1: the AU header fields this payload carries (AU-size, AU-index; nothing else). */
export interface AuHeaderLayout {
  sizeLength: number;
  indexLength: number;
}

/**
 * One access unit as one RTP payload: AU-headers-length (16 bits), one AU header (AU-size in
 * `sizeLength` bits, AU-index 0 in `indexLength` bits, padded to a byte), the unit. For the usual
 * 13/3 layout the bytes are packetizeAac's. Throws RangeError for a unit its AU-size cannot hold.
 */
export function auPayload(au: Buffer, layout: AuHeaderLayout): Buffer {
  const { sizeLength, indexLength } = layout;
  if (au.length === 0 || au.length >= 2 ** sizeLength) throw new RangeError(`an access unit of ${au.length} bytes does not fit a ${sizeLength}-bit AU-size`);
  const bits = sizeLength + indexLength;
  const bytes = Math.ceil(bits / 8);
  const out = Buffer.allocUnsafe(2 + bytes + au.length);
  out.writeUInt16BE(bits, 0);
  // AU-size then AU-index (0), left-aligned in the header bytes (bits ≤ 32: exact in a double).
  let v = au.length * 2 ** (indexLength + bytes * 8 - bits);
  for (let i = bytes - 1; i >= 0; i--) {
    out[2 + i] = v % 256;
    v = Math.floor(v / 256);
  }
  au.copy(out, 2 + bytes);
  return out;
}
