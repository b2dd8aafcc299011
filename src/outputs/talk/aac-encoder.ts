// One talker's AAC encoder: an ffmpeg child (ffmpeg's native AAC-LC encoder) that reads the
// microphone as s16le mono PCM at the camera's rate on stdin and writes ADTS on stdout; each
// access unit comes out as one RFC 3640 RTP payload (AU header in the camera's layout) with its
// timestamp in the camera's clock: 1024 per unit, plus the jumps the timeline made (skip(), and
// PCM dropped because ffmpeg fell behind). Made and closed by its MicConverter: it lives exactly
// while someone talks to an AAC camera: measured at 16 kHz, about 1% of a core, 11 MB of memory of
// its own (52 MB resident with the shared libraries), and each unit out about 2900 samples after
// its last one went in (0.18 s at 16 kHz: ffmpeg reads 1024-sample blocks and encodes one ahead).
//
// ffmpeg's encoder puts one unit of priming before the audio (initial padding 1024): unit k holds
// the input samples from (k - 1) × 1024 on. A jump at input sample P moves the timestamps of the
// units that start at or after P.
import { Owned } from '../../core/owned.js';
import { log, type Logger } from '../../core/log.js';
import { ChildProcessOwner, type StopGrace } from '../../process/child.js';
import { AdtsReader, auPayload, type AuHeaderLayout } from './adts.js';

/** The ffmpeg to run and how to stop it (config ffmpeg.bin, ffmpeg.stop_grace). */
export interface TalkFfmpeg {
  bin: string;
  grace: StopGrace;
}

// Until the app says otherwise (setTalkFfmpeg): ffmpeg on PATH, config's default stop grace.
let configured: TalkFfmpeg = { bin: 'ffmpeg', grace: { quit: 300, term: 500 } };

/** The ffmpeg every AAC talker runs from now on (set at startup from the found binary and config). */
export function setTalkFfmpeg(f: TalkFfmpeg): void {
  configured = { bin: f.bin, grace: { ...f.grace } };
}

/** Samples per AAC-LC access unit, and the encoder's priming (ffmpeg's aac: one unit). */
export const AAC_FRAME = 1024;
const PRIMING = 1024;
/** PCM that may wait unsent on ffmpeg's stdin (beyond the pipe's own 64 KiB) before more is dropped. */
export const MAX_BACKLOG_MS = 1000;
/** Jumps waiting for their first unit; more are merged into the last (each needs a gap of a second or a drop). */
const MAX_JUMPS = 64;

export interface AacEncoderOptions {
  /** The camera's sampling rate (= its RTP clock) and channels (mono PCM in, upmixed by ffmpeg for 2). */
  sampleRate: number;
  channels: number;
  layout: AuHeaderLayout;
  ffmpeg?: TalkFfmpeg;
}

/** One access unit for the camera: its RTP payload and timestamp (from 0, in the camera's clock, not wrapped). */
export interface AacUnit {
  payload: Buffer;
  position: number;
}

export interface AacEncoderEvents {
  unit: [AacUnit];
}

export class AacEncoder extends Owned<AacEncoderEvents> {
  readonly sampleRate: number;
  /** Resolves once ffmpeg runs; rejects (and the encoder is closed) when it could not start. */
  readonly started: Promise<void>;
  readonly #child: ChildProcessOwner;
  readonly #reader: AdtsReader;
  readonly #layout: AuHeaderLayout;
  readonly #maxBacklog: number;
  readonly #log: Logger;
  /** Samples written to ffmpeg. */
  #written = 0;
  #units = 0;
  #offset = 0;
  #jumps: { at: number; ticks: number }[] = [];
  /** Chunks of PCM dropped because ffmpeg's stdin held more than MAX_BACKLOG_MS. */
  dropped = 0;

  constructor(opts: AacEncoderOptions) {
    const ffmpeg = opts.ffmpeg ?? configured;
    const reader = new AdtsReader({ sampleRate: opts.sampleRate, channels: opts.channels });
    super('AacEncoder');
    this.sampleRate = opts.sampleRate;
    this.#reader = reader;
    this.#layout = opts.layout;
    this.#maxBacklog = Math.round((opts.sampleRate * 2 * MAX_BACKLOG_MS) / 1000);
    this.#log = log.child({ output: 'talk', codec: 'AAC' });
    // Speech: 16 kbit/s a channel at 8 kHz, 24 at 12 kHz, 32 from 16 kHz on.
    const bitrate = opts.channels * Math.min(32000, 2 * opts.sampleRate);
    const child = new ChildProcessOwner({
      bin: ffmpeg.bin,
      label: 'ffmpeg-talk-aac',
      grace: ffmpeg.grace,
      stdout: 'pipe',
      args: [
        '-hide_banner', '-loglevel', 'error', '-nostdin',
        // Raw PCM needs no probing: nothing waits for input beyond the first block.
        '-probesize', '32', '-analyzeduration', '0', '-fflags', 'nobuffer',
        '-f', 's16le', '-ar', String(opts.sampleRate), '-ac', '1', '-i', 'pipe:0',
        // The fast coder: a third of the default's CPU, the same for speech.
        '-threads', '1', '-ac', String(opts.channels), '-c:a', 'aac', '-profile:a', 'aac_low', '-aac_coder', 'fast', '-b:a', String(bitrate),
        // Each frame written as it is made (the pipe is not buffered).
        '-flush_packets', '1', '-f', 'adts', 'pipe:1',
      ],
    });
    this.#child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.#onOutput(chunk));
    child.stdin?.on('error', (e) => this.close(e));
    void child.exited.then((exit) => this.close(new Error(`the AAC encoder for the talker ended (${child.describeExit(exit)})`)));
    // spawn fails synchronously (no pid) for a binary that is not there; 'exit' says why a tick later.
    this.started =
      child.pid !== undefined
        ? Promise.resolve()
        : child.exited.then((exit) => {
            throw new Error(child.describeExit(exit));
          });
    this.started.catch(() => undefined);
    this.#log.debug({ pid: child.pid, rate: opts.sampleRate, channels: opts.channels, bitrate }, 'talk AAC encoder started');
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Mono samples (±1.0 full scale) to ffmpeg; dropped (a jump of their length) when it is behind. */
  write(samples: ArrayLike<number>): void {
    const stdin = this.#child.stdin;
    if (this.closed || samples.length === 0 || !stdin || stdin.destroyed) return;
    if (stdin.writableLength > this.#maxBacklog) {
      if (this.dropped++ === 0) this.#log.warn({ backlog: stdin.writableLength }, 'the talk AAC encoder falls behind: dropping microphone audio');
      this.skip(samples.length);
      return;
    }
    const pcm = Buffer.allocUnsafe(samples.length * 2);
    for (let i = 0; i < samples.length; i++) {
      const v = Math.round(samples[i]! * 32768);
      pcm.writeInt16LE(v > 32767 ? 32767 : v < -32768 ? -32768 : v, i * 2);
    }
    this.#written += samples.length;
    stdin.write(pcm);
  }

  /** `samples` of silence. */
  silence(samples: number): void {
    if (samples > 0) this.write(new Float32Array(samples));
  }

  /** Silence up to the end of the access unit being filled (so that a jump starts a unit); returns how much. */
  padToUnit(): number {
    const pad = (AAC_FRAME - (this.#written % AAC_FRAME)) % AAC_FRAME;
    this.silence(pad);
    return pad;
  }

  /** The timeline moves on by `ticks` without audio: the units after this point carry it in their timestamps. */
  skip(ticks: number): void {
    if (this.closed || ticks <= 0) return;
    const last = this.#jumps.at(-1);
    if (last && (last.at === this.#written || this.#jumps.length >= MAX_JUMPS)) last.ticks += ticks;
    else this.#jumps.push({ at: this.#written, ticks });
  }

  #onOutput(chunk: Buffer): void {
    if (this.closed) return;
    let units: Buffer[];
    try {
      units = this.#reader.push(chunk);
    } catch (e) {
      this.#log.warn({ err: (e as Error).message }, 'the talk AAC encoder wrote a malformed frame: stopping it');
      this.close(e as Error);
      return;
    }
    for (const au of units) {
      if (this.closed) return;
      const start = this.#units * AAC_FRAME - PRIMING;
      while (this.#jumps.length > 0 && this.#jumps[0]!.at <= start) this.#offset += this.#jumps.shift()!.ticks;
      const position = this.#units * AAC_FRAME + this.#offset;
      this.#units++;
      let payload: Buffer;
      try {
        payload = auPayload(au, this.#layout);
      } catch (e) {
        this.#log.warn({ err: (e as Error).message }, 'the talk AAC encoder made a unit the camera cannot take: stopping it');
        this.close(e as Error);
        return;
      }
      this.emit('unit', { payload, position });
    }
  }

  protected onClose(reason?: Error): Promise<void> {
    this.#jumps = [];
    const child = this.#child;
    child.close();
    this.#log.debug({ units: this.#units, written: this.#written, dropped: this.dropped, reason: reason?.message }, 'talk AAC encoder stopped');
    return child.done;
  }
}
