// A viewer's microphone to a camera's backchannel codec (issue 18): RTP payloads in, RTP payloads
// out, no transport. Opus (a browser's usual, 48 kHz) is decoded in-process by libopus's wasm
// build straight to the camera's rate and to mono, then G.711-encoded here; G.711 in is
// transcoded or rate-converted when the camera wants another law or clock; the same codec passes
// through. Output G.711 comes in packets of `packetMs` (160 samples at 8 kHz for the default
// 20 ms), timestamps in the camera's clock. An AAC camera (MPEG4-GENERIC, AAC-hbr) gets the same
// PCM encoded by one ffmpeg child per talker (aac-encoder.ts), started with the converter and
// stopped with it: one access unit per packet (1024 samples), each marked (RFC 3640), its AU header
// in the layout of the camera's fmtp; gaps up to a second are filled with silence, longer ones
// move the timestamps on.
//
// The input's timeline is followed, not its arrival: a packet behind the newest one taken (late,
// reordered) or seen twice is dropped; a timestamp jump (loss, DTX silence) completes the packet
// being filled with silence and moves the output timestamp on by the rest of the gap, the first
// packet after it marked (RFC 3551 4.1's start of a talkspurt, as is the very first). A sequence
// number far off starts a new run once a second packet confirms it (RFC 3550 A.1). Packets that
// arrive while the decoder loads wait in a queue of `maxQueued`, the oldest dropped beyond it.
// Malformed Opus is skipped and counted, before it reaches the decoder; nothing here throws on
// input. close() releases the decoder; what was not yet a whole packet is dropped (flush() first
// to send it).
import type { Codec } from '../../core/media.js';
import { Owned } from '../../core/owned.js';
import { log } from '../../core/log.js';
import { TimestampUnwrapper } from '../../rtp/timestamp.js';
import { g711DecodeTable, g711EncodeTable, type G711Codec } from '../../codecs/g711.js';
import { aacRtpConfig, parseAudioSpecificConfig } from '../../codecs/aac.js';
import { parseFmtp } from '../../codecs/fmtp.js';
import { AAC_FRAME, AacEncoder, type TalkFfmpeg } from './aac-encoder.js';
import { ADTS_RATES, type AuHeaderLayout } from './adts.js';
import { createOpusDecoder, MAX_OPUS_PACKET_BYTES, OPUS_DECODE_RATES, type MonoOpusDecoder } from './opus-decoder.js';
import { checkOpusPacket } from './opus-packet.js';
import { Resampler } from './resampler.js';

/** One RTP packet of the microphone: its payload, raw 32-bit timestamp and sequence number. */
export interface MicPacket {
  payload: Buffer;
  timestamp: number;
  sequenceNumber: number;
}

/** One RTP payload for the camera, `timestamp` in its clock (32-bit, wrapped). */
export interface TalkPacket {
  payload: Buffer;
  timestamp: number;
  marker: boolean;
}

export interface MicConverterOptions {
  /** The microphone's codec: OPUS/48000, PCMA/8000 or PCMU/8000 (G.711 at other rates too). */
  input: Codec;
  /**
   * The backchannel's: PCMA or PCMU (at any rate), OPUS/48000 from Opus only, or AAC (its fmtp:
   * mode AAC-hbr or another layout with AU-size and AU-index only, config an AAC-LC one).
   */
  target: Codec;
  /** Duration of one G.711 output packet (default 20). Opus passes through as it came. */
  packetMs?: number;
  /** Timestamp of the first output sample (default 0). */
  initialTimestamp?: number;
  /** Packets held while the Opus decoder loads (default 25, half a second of 20 ms packets). */
  maxQueued?: number;
  /** For an AAC target: the ffmpeg to run (default: setTalkFfmpeg's, else `ffmpeg` on PATH). */
  ffmpeg?: TalkFfmpeg;
}

export interface MicConverterStats {
  /** Packets pushed. */
  received: number;
  /** Packets emitted. */
  emitted: number;
  /** Dropped: seen before. */
  duplicate: number;
  /** Dropped: behind the newest packet taken, or the first of a sequence jump not yet confirmed. */
  late: number;
  /** Dropped: not a valid Opus packet (or one libopus refused), or empty. */
  malformed: number;
  /** Dropped: the oldest of the queue while the decoder loaded. */
  overflow: number;
  /** Timestamp jumps forward (loss, DTX), each closed with silence and a marked packet. */
  gaps: number;
  /** New runs: a confirmed sequence-number jump, or the timestamps going back. */
  resyncs: number;
  /** AAC only: chunks of PCM dropped because the encoder (ffmpeg) fell a second behind. */
  behind?: number;
}

export interface MicConverterEvents {
  packet: [TalkPacket];
}

/** A backchannel or microphone codec that camrelay cannot convert (yet). */
export class UnsupportedTalkCodecError extends Error {
  constructor(
    /** The codec at fault, e.g. "AAC". */
    readonly codec: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnsupportedTalkCodecError';
  }
}

type Plan =
  | { kind: 'opus-pass' }
  | { kind: 'g711-pass' }
  | { kind: 'decode-opus'; decodeRate: number; resampleFrom?: number; encode: G711Codec }
  | { kind: 'g711-transcode'; decode: G711Codec; resampleFrom?: number; encode: G711Codec }
  | { kind: 'aac'; decode: 'OPUS' | G711Codec; decodeRate: number; resampleFrom?: number; channels: number; layout: AuHeaderLayout };

/** The largest AAC-LC access unit: 6144 bits a channel (ISO/IEC 14496-3 4.5.3.2). */
const MAX_AU_BYTES_PER_CHANNEL = 768;

const describe = (c: Codec): string => `${c.name}/${c.clockRate}${c.channels && c.channels > 1 ? `/${c.channels}` : ''}`;
const isG711 = (name: string): name is G711Codec => name === 'PCMA' || name === 'PCMU';

/** The AAC target's encoder settings from its rtpmap and fmtp; throws UnsupportedTalkCodecError. */
function aacTarget(target: Codec): { channels: number; layout: AuHeaderLayout } {
  const refuse = (why: string) => new UnsupportedTalkCodecError('AAC', `backchannel codec ${describe(target)} not supported: ${why}`);
  const fmtp = parseFmtp(target.fmtp ?? '');
  const cfg = aacRtpConfig(fmtp, target.clockRate);
  if ('unsupported' in cfg) throw refuse(`fmtp ${cfg.unsupported}`);
  if (!ADTS_RATES.includes(target.clockRate) || target.clockRate > 48000) throw refuse('camrelay encodes AAC at 7350-48000 Hz, the rates of AAC');
  let channels = target.channels ?? 1;
  if (fmtp['config']) {
    const asc = parseAudioSpecificConfig(fmtp['config']);
    if (!asc) throw refuse(`config=${fmtp['config']} is not an AudioSpecificConfig`);
    if (asc.objectType !== 2) throw refuse(`config=${fmtp['config']} is object type ${asc.objectType}; camrelay encodes AAC-LC (2)`);
    if (asc.sampleRate !== target.clockRate) throw refuse(`config=${fmtp['config']} says ${asc.sampleRate} Hz, the RTP clock ${target.clockRate}`);
    if (asc.frameLength !== AAC_FRAME) throw refuse(`config=${fmtp['config']} has ${asc.frameLength}-sample frames; camrelay makes ${AAC_FRAME}`);
    channels = asc.channels;
  }
  if (channels !== 1 && channels !== 2) throw refuse(`${channels} channels (camrelay sends mono, or mono on both channels of a stereo one)`);
  if (cfg.auDuration !== AAC_FRAME) throw refuse(`access units of ${cfg.auDuration} ticks; camrelay makes ${AAC_FRAME}`);
  if (2 ** cfg.sizeLength - 1 < MAX_AU_BYTES_PER_CHANNEL * channels) throw refuse(`sizelength=${cfg.sizeLength} cannot give the size of an access unit of up to ${MAX_AU_BYTES_PER_CHANNEL * channels} bytes`);
  return { channels, layout: { sizeLength: cfg.sizeLength, indexLength: cfg.indexLength } };
}

/** Throws UnsupportedTalkCodecError when the resampler cannot take `from` to the target's rate. */
function checkResample(from: number, target: Codec): void {
  try {
    new Resampler(from, target.clockRate);
  } catch (e) {
    throw new UnsupportedTalkCodecError(target.name, `backchannel codec ${describe(target)} not supported from ${from} Hz: ${(e as Error).message}`);
  }
}

/** How `input` becomes `target`; throws UnsupportedTalkCodecError when it cannot. */
function plan(input: Codec, target: Codec): Plan {
  if (target.name === 'AAC') {
    const { channels, layout } = aacTarget(target);
    const rate = target.clockRate;
    const resamples = (from: number): number | undefined => {
      if (from === rate) return undefined;
      checkResample(from, target);
      return from;
    };
    if (input.name === 'OPUS') {
      if (input.clockRate !== 48000) throw new UnsupportedTalkCodecError('OPUS', `microphone codec ${describe(input)} not supported: Opus runs at 48000 Hz`);
      const decodeRate = OPUS_DECODE_RATES.includes(rate) ? rate : 48000;
      return { kind: 'aac', decode: 'OPUS', decodeRate, resampleFrom: resamples(decodeRate), channels, layout };
    }
    if (isG711(input.name)) {
      if ((input.channels ?? 1) !== 1) throw new UnsupportedTalkCodecError(input.name, `microphone codec ${describe(input)} not supported: only mono`);
      return { kind: 'aac', decode: input.name, decodeRate: input.clockRate, resampleFrom: resamples(input.clockRate), channels, layout };
    }
    throw new UnsupportedTalkCodecError(input.name, `microphone codec ${describe(input)} not supported (camrelay takes OPUS, PCMA or PCMU)`);
  }
  if (target.name === 'OPUS') {
    if (target.clockRate !== 48000) throw new UnsupportedTalkCodecError('OPUS', `backchannel codec ${describe(target)} not supported: Opus runs at 48000 Hz`);
    if (input.name === 'OPUS' && input.clockRate === 48000) return { kind: 'opus-pass' };
    throw new UnsupportedTalkCodecError('OPUS', `backchannel codec OPUS from a ${describe(input)} microphone not supported yet: camrelay has no Opus encoder`);
  }
  if (!isG711(target.name)) throw new UnsupportedTalkCodecError(target.name, `backchannel codec ${target.name} not supported yet (camrelay converts to PCMA, PCMU, OPUS or AAC)`);
  if ((target.channels ?? 1) !== 1) throw new UnsupportedTalkCodecError(target.name, `backchannel codec ${describe(target)} not supported: only mono`);
  if (!(Number.isInteger(target.clockRate) && target.clockRate >= 4000 && target.clockRate <= 48000)) {
    throw new UnsupportedTalkCodecError(target.name, `backchannel codec ${describe(target)} not supported: rate out of 4000-48000 Hz`);
  }
  if (input.name === 'OPUS') {
    if (input.clockRate !== 48000) throw new UnsupportedTalkCodecError('OPUS', `microphone codec ${describe(input)} not supported: Opus runs at 48000 Hz`);
    if (OPUS_DECODE_RATES.includes(target.clockRate)) return { kind: 'decode-opus', decodeRate: target.clockRate, encode: target.name };
    checkResample(48000, target);
    return { kind: 'decode-opus', decodeRate: 48000, resampleFrom: 48000, encode: target.name };
  }
  if (isG711(input.name)) {
    if ((input.channels ?? 1) !== 1) throw new UnsupportedTalkCodecError(input.name, `microphone codec ${describe(input)} not supported: only mono`);
    if (input.name === target.name && input.clockRate === target.clockRate) return { kind: 'g711-pass' };
    if (input.clockRate !== target.clockRate) checkResample(input.clockRate, target);
    return { kind: 'g711-transcode', decode: input.name, resampleFrom: input.clockRate !== target.clockRate ? input.clockRate : undefined, encode: target.name };
  }
  throw new UnsupportedTalkCodecError(input.name, `microphone codec ${describe(input)} not supported (camrelay takes OPUS, PCMA or PCMU)`);
}

/**
 * Whether a microphone in `input` can reach a backchannel in `target`: undefined when it can,
 * else the error a MicConverter would throw (its message says which codec and why).
 */
export function micConversionError(input: Codec, target: Codec): UnsupportedTalkCodecError | undefined {
  try {
    plan(input, target);
    return undefined;
  } catch (e) {
    if (e instanceof UnsupportedTalkCodecError) return e;
    throw e;
  }
}

/** RFC 3550 A.1: a jump this far ahead is loss; behind by this much, reordering. */
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;
/** Sequence numbers remembered to tell a duplicate from a late packet. */
const RECENT = 64;

interface Pending {
  payload: Buffer;
  /** Unwrapped input timestamp. */
  ts: number;
  /** Duration in the input clock. */
  ticks: number;
  /** First of a new run (sequence jump confirmed): the timeline starts again here. */
  restart: boolean;
}

export class MicConverter extends Owned<MicConverterEvents> {
  readonly input: Codec;
  readonly target: Codec;
  /** Resolves once packets are converted (at once, unless an Opus decoder must load); rejects if it cannot load or close() came first. */
  readonly ready: Promise<void>;
  readonly #plan: Plan;
  readonly #frameSamples: number;
  readonly #initialTimestamp: number;
  readonly #maxQueued: number;
  readonly #stats: MicConverterStats = { received: 0, emitted: 0, duplicate: 0, late: 0, malformed: 0, overflow: 0, gaps: 0, resyncs: 0 };

  // Sequence numbers: the newest taken (extended past the 16-bit wrap), the recent ones taken.
  #highest: number | undefined;
  readonly #recent = new Float64Array(RECENT).fill(Number.NaN);
  #badSeq: number | undefined;
  readonly #unwrap = new TimestampUnwrapper();

  // Waiting for the decoder.
  #loaded: boolean;
  #queue: Pending[] = [];
  #decoder: MonoOpusDecoder | undefined;
  readonly #resampler: Resampler | undefined;
  readonly #encode: Readonly<Uint8Array> | undefined;
  readonly #decode: Readonly<Int16Array> | undefined;
  /** G.711 decoded to floats on its way to the resampler. */
  #scratch = new Float32Array(0);
  /** AAC: the ffmpeg encoder (this converter's child), and the longest gap filled with silence. */
  readonly #aac: AacEncoder | undefined;
  readonly #maxFill: number;

  // The timeline: input timestamp `#inBase` is output position `#outBase`; `#outWrite` is the
  // output position (in target samples, from 0) of the next sample or packet.
  #started = false;
  #inBase = 0;
  #outBase = 0;
  #outWrite = 0;
  #markNext = true;
  /** The packet being filled, its first sample's position and how many samples it holds. */
  #chunk: Buffer | undefined;
  #chunkStart = 0;
  #fill = 0;

  /** Throws UnsupportedTalkCodecError (before anything is made) when `target` cannot be reached from `input`. */
  constructor(options: MicConverterOptions) {
    const how = plan(options.input, options.target);
    const packetMs = options.packetMs ?? 20;
    const frameSamples = (options.target.clockRate * packetMs) / 1000;
    if (!(Number.isInteger(frameSamples) && frameSamples > 0)) throw new RangeError(`packetMs ${packetMs} is not a whole number of samples at ${options.target.clockRate} Hz`);
    super('MicConverter');
    this.input = options.input;
    this.target = options.target;
    this.#plan = how;
    this.#frameSamples = frameSamples;
    this.#initialTimestamp = options.initialTimestamp ?? 0;
    this.#maxQueued = Math.max(1, options.maxQueued ?? 25);
    if (isG711(options.target.name)) this.#encode = g711EncodeTable(options.target.name);
    if ((how.kind === 'decode-opus' || how.kind === 'g711-transcode' || how.kind === 'aac') && how.resampleFrom !== undefined) {
      this.#resampler = new Resampler(how.resampleFrom, options.target.clockRate);
    }
    if (how.kind === 'g711-transcode') this.#decode = g711DecodeTable(how.decode);
    if (how.kind === 'aac' && how.decode !== 'OPUS') this.#decode = g711DecodeTable(how.decode);
    const opusRate = how.kind === 'decode-opus' || (how.kind === 'aac' && how.decode === 'OPUS') ? how.decodeRate : undefined;
    this.#maxFill = options.target.clockRate;
    this.#loaded = opusRate === undefined;
    let ready = opusRate !== undefined ? this.#load(opusRate) : Promise.resolve();
    if (how.kind === 'aac') {
      const aac = new AacEncoder({ sampleRate: options.target.clockRate, channels: how.channels, layout: how.layout, ...(options.ffmpeg && { ffmpeg: options.ffmpeg }) });
      this.#aac = aac;
      aac.on('unit', (u) => {
        if (this.closed) return;
        this.#stats.emitted++;
        this.emit('packet', { payload: u.payload, timestamp: (this.#initialTimestamp + u.position) >>> 0, marker: true });
      });
      // The encoder failing (ffmpeg gone, a malformed frame) ends the conversion.
      aac.once('close', (reason) => {
        if (this.closed) return;
        log.warn({ err: reason?.message }, 'the talker\'s AAC encoder stopped; the microphone is no longer converted');
        this.close(reason ?? new Error('the AAC encoder stopped'));
      });
      const started = aac.started;
      ready = Promise.all([ready, started]).then(() => undefined);
    }
    this.ready = ready;
    // Awaiting it is optional: a failure also closes the converter with the error as reason.
    this.ready.catch(() => undefined);
  }

  get stats(): Readonly<MicConverterStats> {
    return this.#aac ? { ...this.#stats, behind: this.#aac.dropped } : { ...this.#stats };
  }

  /** AAC: the pid of the ffmpeg encoding for this talker. */
  get encoderPid(): number | undefined {
    return this.#aac?.pid;
  }

  /** Takes one microphone packet; never throws on what it carries. Ignored once closed. */
  push(packet: MicPacket): void {
    if (this.closed) return;
    this.#stats.received++;
    const order = this.#order(packet.sequenceNumber & 0xffff);
    if (order === 'duplicate' || order === 'late') {
      this.#stats[order]++;
      return;
    }
    const ticks = this.#duration(packet.payload);
    if (ticks === undefined) {
      this.#stats.malformed++;
      return;
    }
    const pending: Pending = { payload: packet.payload, ts: this.#unwrap.unwrap(packet.timestamp >>> 0), ticks, restart: order === 'restart' };
    if (order === 'restart') this.#stats.resyncs++;
    if (!this.#loaded) {
      this.#queue.push(pending);
      if (this.#queue.length > this.#maxQueued) {
        this.#queue.shift();
        this.#stats.overflow++;
      }
      return;
    }
    this.#process(pending);
  }

  /**
   * Completes the packet being filled with silence and emits it (the talker stopped). AAC: the
   * encoder holds its last units until more audio comes (or it is closed); nothing to do.
   */
  flush(): void {
    if (this.closed || this.#fill === 0) return;
    this.#silence(this.#frameSamples - this.#fill);
  }

  protected onClose(): Promise<void> | void {
    this.#queue = [];
    this.#chunk = undefined;
    this.#fill = 0;
    this.#decoder?.free();
    this.#decoder = undefined;
    // AAC: stopping ffmpeg ('q' and EOF on its stdin, then signals); `done` waits for its exit.
    const aac = this.#aac;
    if (!aac) return;
    aac.close();
    return aac.done;
  }

  async #load(rate: number): Promise<void> {
    let decoder: MonoOpusDecoder;
    try {
      decoder = await createOpusDecoder(rate);
    } catch (e) {
      const err = new Error(`the Opus decoder for the microphone did not load: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      this.close(err);
      throw err;
    }
    if (this.closed) {
      decoder.free();
      throw new Error('the microphone converter closed before its Opus decoder loaded');
    }
    this.#decoder = decoder;
    this.#loaded = true;
    const queued = this.#queue;
    this.#queue = [];
    for (const p of queued) {
      if (this.closed) break;
      this.#process(p);
    }
  }

  /** Where a sequence number stands against those taken (RFC 3550 A.1, simplified). */
  #order(seq: number): 'next' | 'restart' | 'duplicate' | 'late' {
    const highest = this.#highest;
    if (highest === undefined) return this.#take(seq, 'next');
    const delta = ((seq - highest) << 16) >> 16;
    if (delta > 0 && delta <= MAX_DROPOUT) return this.#take(highest + delta, 'next');
    if (delta <= 0 && delta >= -MAX_MISORDER) {
      const ext = highest + delta;
      return -delta < RECENT && this.#recent[ext & (RECENT - 1)] === ext ? 'duplicate' : 'late';
    }
    // A jump: a new run if the next packet follows this one.
    if (this.#badSeq === seq) {
      this.#recent.fill(Number.NaN);
      return this.#take(seq, 'restart');
    }
    this.#badSeq = (seq + 1) & 0xffff;
    return 'late';
  }

  #take<T>(ext: number, result: T): T {
    this.#highest = ext;
    this.#recent[ext & (RECENT - 1)] = ext;
    this.#badSeq = undefined;
    return result;
  }

  /** The payload's duration in the input clock; undefined if it is no valid packet. */
  #duration(payload: Buffer): number | undefined {
    if (payload.length === 0) return undefined;
    if (this.input.name !== 'OPUS') return payload.length;
    if (payload.length > MAX_OPUS_PACKET_BYTES) return undefined;
    const check = checkOpusPacket(payload);
    return check.ok ? check.samples : undefined;
  }

  #process(p: Pending): void {
    const inRate = this.input.clockRate;
    const outRate = this.target.clockRate;
    const toOut = (ticks: number): number => Math.round((ticks * outRate) / inRate);
    if (!this.#started || p.restart) {
      if (this.#started) this.flush();
      this.#started = true;
      this.#inBase = p.ts;
      this.#outBase = this.#outWrite;
      this.#markNext = true;
      this.#resampler?.reset();
    }
    const expected = this.#outBase + toOut(p.ts - this.#inBase);
    const ahead = expected - this.#outWrite;
    const slack = Math.max(1, Math.round(outRate / 1000));
    if (ahead > slack) {
      this.#stats.gaps++;
      this.#gap(ahead);
    } else if (ahead < -2 * Math.max(this.#frameSamples, toOut(p.ticks))) {
      // The timestamps went back (a sender that restarted its clock): carry on from here.
      this.#stats.resyncs++;
      this.#inBase = p.ts;
      this.#outBase = this.#outWrite;
    }
    if (this.closed) return;
    switch (this.#plan.kind) {
      case 'opus-pass':
        this.#emit(p.payload, this.#outWrite);
        this.#outWrite += p.ticks;
        return;
      case 'g711-pass':
        for (let i = 0; i < p.payload.length && !this.closed; i++) this.#put(p.payload[i]!);
        return;
      case 'decode-opus': {
        const decoded = this.#decode0(p.payload);
        if (!decoded) {
          this.#stats.malformed++;
          return;
        }
        this.#putFloats(this.#resampler ? this.#resampler.process(decoded) : decoded);
        return;
      }
      case 'aac': {
        const linear = this.#plan.decode === 'OPUS' ? this.#decode0(p.payload) : this.#g711ToFloats(p.payload);
        if (!linear) {
          this.#stats.malformed++;
          return;
        }
        this.#putFloats(this.#resampler ? this.#resampler.process(linear) : linear);
        return;
      }
      case 'g711-transcode': {
        if (this.#resampler) {
          this.#putFloats(this.#resampler.process(this.#g711ToFloats(p.payload)));
        } else {
          const table = this.#decode!;
          const encode = this.#encode!;
          for (let i = 0; i < p.payload.length && !this.closed; i++) this.#put(encode[(table[p.payload[i]!]! + 32768) >> 2]!);
        }
        return;
      }
    }
  }

  /** G.711 codes decoded to floats (±1.0), in a scratch buffer reused from packet to packet. */
  #g711ToFloats(payload: Buffer): Float32Array {
    const table = this.#decode!;
    if (this.#scratch.length < payload.length) this.#scratch = new Float32Array(payload.length);
    const linear = this.#scratch.subarray(0, payload.length);
    for (let i = 0; i < linear.length; i++) linear[i] = table[payload[i]!]! / 32768;
    return linear;
  }

  #decode0(payload: Buffer): Float32Array | undefined {
    try {
      return this.#decoder?.decode(payload);
    } catch {
      return undefined;
    }
  }

  /** Float samples (±1.0 full scale) to codes (AAC: to the encoder). */
  #putFloats(samples: Float32Array): void {
    if (this.#aac) {
      this.#aac.write(samples);
      this.#outWrite += samples.length;
      return;
    }
    const encode = this.#encode!;
    for (let i = 0; i < samples.length && !this.closed; i++) {
      const v = Math.round(samples[i]! * 32768);
      this.#put(encode[((v > 32767 ? 32767 : v < -32768 ? -32768 : v) + 32768) >> 2]!);
    }
  }

  /** A jump of `samples` output samples: silence up to the end of the packet being filled, then a skip. */
  #gap(samples: number): void {
    const aac = this.#aac;
    if (aac) {
      // Short gaps (loss, a DTX pause) are silence the camera plays; a longer one ends the unit
      // being filled and moves the timestamps on.
      if (samples <= this.#maxFill) {
        aac.silence(samples);
        this.#outWrite += samples;
        return;
      }
      const pad = Math.min(samples, aac.padToUnit());
      aac.skip(samples - pad);
      this.#outWrite += samples;
      this.#resampler?.reset();
      return;
    }
    if (this.#plan.kind === 'opus-pass') {
      this.#outWrite += samples;
      this.#markNext = true;
      return;
    }
    let left = samples;
    if (this.#fill > 0) {
      const fill = Math.min(left, this.#frameSamples - this.#fill);
      this.#silence(fill);
      left -= fill;
    }
    if (left > 0) {
      this.#outWrite += left;
      this.#markNext = true;
      this.#resampler?.reset();
    }
  }

  #silence(samples: number): void {
    // The code of 0 (0xd5 in A-law, 0xff in µ-law).
    const code = this.#encode![8192]!;
    for (let i = 0; i < samples && !this.closed; i++) this.#put(code);
  }

  /** One output code into the packet being filled; the packet goes out when full. */
  #put(code: number): void {
    if (!this.#chunk) {
      this.#chunk = Buffer.allocUnsafe(this.#frameSamples);
      this.#chunkStart = this.#outWrite;
    }
    this.#chunk[this.#fill++] = code;
    this.#outWrite++;
    if (this.#fill === this.#frameSamples) {
      const chunk = this.#chunk;
      this.#chunk = undefined;
      this.#fill = 0;
      this.#emit(chunk, this.#chunkStart);
    }
  }

  #emit(payload: Buffer, position: number): void {
    const marker = this.#markNext;
    this.#markNext = false;
    this.#stats.emitted++;
    this.emit('packet', { payload, timestamp: (this.#initialTimestamp + position) >>> 0, marker });
  }
}
