// libopus (the opus-decoder package's WebAssembly build) behind a small interface, loaded with a
// dynamic import the first time a talker needs it: a camrelay nobody talks through never reads
// the module nor compiles its wasm (about 3.4 MB of resident memory for the module, 0.7 MB per
// decoder). The decoder decodes one packet at a time, synchronously, to mono at any of Opus's
// native rates (8, 12, 16, 24 or 48 kHz): libopus itself downmixes a stereo stream and band-limits
// to the output rate, so 8 kHz G.711 needs no resampler.

/** The rates libopus decodes to natively. */
export const OPUS_DECODE_RATES: readonly number[] = [8000, 12000, 16000, 24000, 48000];

/** The decoder's input buffer (32 kB/s × 120 ms): a longer packet is refused before decoding. */
export const MAX_OPUS_PACKET_BYTES = 3840;

export interface MonoOpusDecoder {
  readonly sampleRate: number;
  /**
   * Decodes one packet (checked with checkOpusPacket first) into mono float samples, a view
   * valid until the next call; undefined when libopus refused it.
   */
  decode(packet: Uint8Array): Float32Array | undefined;
  /** Releases the decoder's wasm memory; idempotent. */
  free(): void;
}

type OpusModule = typeof import('opus-decoder');

let loading: Promise<OpusModule> | undefined;

/** The module, imported once; a failed import is tried again next time. */
function opusModule(): Promise<OpusModule> {
  loading ??= import('opus-decoder').catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

/** A ready decoder at `sampleRate` (one of OPUS_DECODE_RATES). */
export async function createOpusDecoder(sampleRate: number): Promise<MonoOpusDecoder> {
  if (!OPUS_DECODE_RATES.includes(sampleRate)) throw new RangeError(`Opus decodes at ${OPUS_DECODE_RATES.join(', ')} Hz, not ${sampleRate}`);
  const { OpusDecoder } = await opusModule();
  const decoder = new OpusDecoder({ sampleRate: sampleRate as 8000, channels: 1 });
  try {
    await decoder.ready;
  } catch (e) {
    try {
      decoder.free();
    } catch {
      // Whatever it had allocated before failing is gone with it, or was never there.
    }
    throw new Error(`the Opus decoder did not start: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  let freed = false;
  return {
    sampleRate,
    decode(packet) {
      if (freed || packet.length === 0 || packet.length > MAX_OPUS_PACKET_BYTES) return undefined;
      const r = decoder.decodeFrame(packet);
      if (r.errors.length > 0 || r.samplesDecoded === 0) return undefined;
      return r.channelData[0]!.subarray(0, r.samplesDecoded);
    },
    free() {
      if (freed) return;
      freed = true;
      decoder.free();
    },
  };
}
