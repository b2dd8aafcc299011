// AAC as cameras send it over RTP: MPEG4-GENERIC (RFC 3640) with an AudioSpecificConfig
// (ISO/IEC 14496-3 1.6.2.1) in the fmtp `config` parameter.

export interface AudioSpecificConfig {
  /** 2 = AAC-LC, 5 = SBR (HE-AAC), 29 = PS (HE-AACv2), ... */
  objectType: number;
  sampleRate: number;
  /** 0 means "defined in the stream" (a program config element). */
  channels: number;
  /** Samples per access unit at `sampleRate`: 1024, or 960 with frameLengthFlag. */
  frameLength: number;
}

const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

class BitReader {
  #pos = 0;
  constructor(private readonly buf: Buffer) {}
  read(bits: number): number | undefined {
    let v = 0;
    for (let i = 0; i < bits; i++) {
      const byte = this.buf[this.#pos >> 3];
      if (byte === undefined) return undefined;
      v = v * 2 + ((byte >> (7 - (this.#pos & 7))) & 1);
      this.#pos++;
    }
    return v;
  }
}

/** Parses the hex `config` of an fmtp line; undefined when it is not a usable config. */
export function parseAudioSpecificConfig(hex: string): AudioSpecificConfig | undefined {
  if (!/^([0-9a-f]{2})+$/i.test(hex.trim())) return undefined;
  const r = new BitReader(Buffer.from(hex.trim(), 'hex'));
  let objectType = r.read(5);
  if (objectType === 31) {
    const ext = r.read(6);
    objectType = ext === undefined ? undefined : 32 + ext;
  }
  const freqIndex = r.read(4);
  if (objectType === undefined || objectType === 0 || freqIndex === undefined) return undefined;
  const sampleRate = freqIndex === 15 ? r.read(24) : SAMPLE_RATES[freqIndex];
  const channels = r.read(4);
  if (!sampleRate || channels === undefined) return undefined;
  // GASpecificConfig starts with frameLengthFlag for the AAC object types that use it.
  const frameLengthFlag = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23].includes(objectType) ? r.read(1) : 0;
  return { objectType, sampleRate, channels, frameLength: frameLengthFlag === 1 ? 960 : 1024 };
}

/**
 * A 2-byte AAC-LC AudioSpecificConfig (ISO 14496-3 1.6.2.1) as hex, for an SDP that has no
 * `config=` to pass on. Undefined for a rate or channel count it cannot express.
 */
export function aacLcConfig(sampleRate: number, channels: number): string | undefined {
  const freqIndex = SAMPLE_RATES.indexOf(sampleRate);
  if (freqIndex < 0 || channels < 1 || channels > 7) return undefined;
  const objectType = 2; // AAC LC
  const v = (objectType << 11) | (freqIndex << 7) | (channels << 3);
  return v.toString(16).padStart(4, '0');
}

/** The RFC 3640 AU header layout and timing an AAC depacketizer needs. */
export interface AacRtpConfig {
  sizeLength: number;
  indexLength: number;
  indexDeltaLength: number;
  /** RTP clock ticks per access unit, to time several AUs carried in one packet. */
  auDuration: number;
}

/**
 * Reads the fmtp parameters (keys lower-cased) of an MPEG4-GENERIC audio track. Only the
 * AAC-hbr/AAC-lbr layouts are supported: AU headers with size and index, nothing else (no CTS/DTS
 * deltas, no random-access flags, no auxiliary data), which is what cameras and encoders send.
 */
export function aacRtpConfig(fmtp: Record<string, string>, clockRate: number): AacRtpConfig | { unsupported: string } {
  const num = (k: string) => (fmtp[k] === undefined || fmtp[k] === '' ? 0 : Number(fmtp[k]));
  const mode = (fmtp['mode'] ?? '').toLowerCase();
  if (mode !== 'aac-hbr' && mode !== 'aac-lbr') return { unsupported: `mode=${fmtp['mode'] ?? '(none)'}` };
  const sizeLength = num('sizelength');
  const indexLength = num('indexlength');
  const indexDeltaLength = num('indexdeltalength');
  for (const [k, v] of [['sizelength', sizeLength], ['indexlength', indexLength], ['indexdeltalength', indexDeltaLength]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 16) return { unsupported: `${k}=${fmtp[k]}` };
  }
  if (sizeLength === 0) return { unsupported: 'sizelength=0' };
  for (const k of ['ctsdeltalength', 'dtsdeltalength', 'randomaccessindication', 'streamstateindication', 'auxiliarydatasizelength']) {
    if (num(k) !== 0) return { unsupported: `${k}=${fmtp[k]}` };
  }
  const asc = fmtp['config'] ? parseAudioSpecificConfig(fmtp['config']) : undefined;
  const constant = num('constantduration');
  let auDuration = 1024;
  if (Number.isInteger(constant) && constant > 0) auDuration = constant;
  else if (asc) auDuration = Math.round((asc.frameLength * clockRate) / asc.sampleRate);
  return { sizeLength, indexLength, indexDeltaLength, auDuration };
}
