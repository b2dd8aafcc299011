// One long-lived ffmpeg per stream and picture size that turns keyframes into JPEGs: a snapshot
// used to start an ffmpeg per request (probe, decoder and encoder set-up: ~250 ms of CPU for a
// 1080p picture, most of it before the first pixel); kept running, a keyframe costs its decode
// and encode alone. It is fed only the keyframes requests ask for (Annex B, the parameter sets
// in front of each, an access unit delimiter after it so that ffmpeg's parser ends the picture at
// once) and writes one JPEG per frame, cut at their real ends (jpeg-split.ts). The pool
// (snapshot-pool.ts) owns it, gives it one keyframe at a time and closes it after a quiet period.
import { Owned } from '../core/owned.js';
import type { CodecName, Frame } from '../core/media.js';
import { log, type Logger } from '../core/log.js';
import { toAnnexB } from '../codecs/annexb.js';
import { ChildProcessOwner, type StopGrace } from '../process/child.js';
import { JpegSplitter } from './jpeg-split.js';
import { scaleFilter, SnapshotAborted, SNAPSHOT_NICE } from './snapshot.js';

/** The largest JPEG (or bytes without an end of image) before the decoder counts as broken. */
const MAX_JPEG = 16 * 1024 * 1024;
/** Unsent bytes on the decoder's stdin beyond which it counts as stuck (a few 4K keyframes). */
const MAX_PENDING = 8 * 1024 * 1024;
/** A keyframe not out as a JPEG after this long fails its requests and stops the decoder. */
export const DECODE_TIMEOUT_MS = 5000;
/**
 * No JPEG this long after the last copy was written: write the keyframe once more. A decoder
 * holds back as many pictures as the stream's SPS says it may reorder (none without B-frames,
 * as most cameras; x264's default holds 2); only more input pushes them out.
 * A slow decode that gets one copy too many only costs that copy's decode.
 */
export const PUMP_MS = 120;
/** Copies of one keyframe in flight at most (H.264 reorders 16 pictures at most; cameras 0–2). */
const MAX_COPIES = 8;

/** Written after each keyframe: an access unit delimiter, so that ffmpeg's parser ends the picture at once. */
const AFTER: Record<'H264' | 'H265', Buffer> = {
  // AUD: nal_unit_type 9, primary_pic_type 7 (any), stop bit.
  H264: Buffer.from([0, 0, 0, 1, 0x09, 0xf0]),
  // End of sequence (nal_unit_type 36) first: the next keyframe starts a new sequence. Without it
  // a CRA keyframe written twice (see PUMP_MS) is dropped as a duplicate POC, and nothing comes
  // out. Then the AUD: nal_unit_type 35, layer 0, temporal id 1; pic_type 2 (any), stop bit.
  H265: Buffer.from([0, 0, 0, 1, 0x48, 0x01, 0, 0, 0, 1, 0x46, 0x01, 0x50]),
};

/** The codecs a snapshot decoder reads (the input format follows the codec). */
export function snapshotCodec(name: CodecName): 'H264' | 'H265' | undefined {
  return name === 'H264' || name === 'H265' ? name : undefined;
}

/** The parameter sets in front of a keyframe, as one buffer: keyframes with other ones (another camera model, or one reconfigured) go to another decoder. */
export function parameterSetsOf(frame: Frame): Buffer {
  const h265 = frame.track.codec.name === 'H265';
  const sets = frame.data.filter((n) => {
    const type = h265 ? (n[0]! >> 1) & 0x3f : n[0]! & 0x1f;
    return h265 ? type >= 32 && type <= 34 : type === 7 || type === 8;
  });
  return Buffer.concat(sets);
}

export interface DecoderOptions {
  ffmpegBin: string;
  grace: StopGrace;
  codec: 'H264' | 'H265';
  width?: number;
  height?: number;
  /** For logs. */
  stream: string;
}

/** One keyframe's way through the decoder. */
interface Job {
  /** Until the job is answered: its buffers are the GOP cache's, not to be kept past that. */
  frame: Frame | undefined;
  copies: number;
  settled: boolean;
  resolve: (jpeg: Buffer) => void;
  reject: (e: Error) => void;
  pump?: NodeJS.Timeout;
  deadline: NodeJS.Timeout;
}

/**
 * Owns the ffmpeg child (nice 19, SCHED_IDLE, one thread for decoding and one for encoding: a
 * frame-threaded codec holds a picture per extra thread). decode() takes one keyframe at a time;
 * every copy written is remembered in order, and each JPEG that comes out answers the oldest
 * (ffmpeg keeps the order: every picture here is a keyframe, shown as decoded).
 */
export class SnapshotDecoder extends Owned {
  readonly codec: 'H264' | 'H265';
  #child: ChildProcessOwner;
  #split = new JpegSplitter(MAX_JPEG);
  /** For each copy written and not yet out as a JPEG: the job it was written for. */
  #inFlight: Job[] = [];
  #job: Job | undefined;
  /** Pictures the decoder holds back (its reorder depth), as last seen; see decode(). */
  #held = 0;
  #lastWrite = 0;
  #lastOutput = 0;
  #jpegs = 0;
  #written = 0;
  #log: Logger;

  constructor(private readonly opts: DecoderOptions) {
    super('SnapshotDecoder');
    this.codec = opts.codec;
    this.#log = log.child({ stream: opts.stream, output: 'snapshot', size: `${opts.width ?? ''}x${opts.height ?? ''}` });
    const child = new ChildProcessOwner({
      bin: opts.ffmpegBin,
      label: 'ffmpeg-snapshot',
      grace: opts.grace,
      stdout: 'pipe',
      // A snapshot may wait a few ms; the event loop and the streams' own children may not.
      nice: SNAPSHOT_NICE,
      idle: true,
      args: [
        '-hide_banner', '-loglevel', 'error',
        // No probing beyond the first picture: ffmpeg would wait for more input. (Not -fflags
        // nobuffer: it drops the probed picture, and the first answer would be the second copy.)
        '-threads', '1', '-probesize', '32', '-analyzeduration', '0',
        '-f', opts.codec === 'H265' ? 'hevc' : 'h264', '-i', 'pipe:0',
        ...scaleFilter(opts.width, opts.height),
        // One JPEG per picture in, each written out as soon as it is made (the pipe is not buffered).
        // The standard Huffman tables, not ones computed per picture: 4 of a 1080p picture's ~28 ms
        // of CPU, for a JPEG ~19% larger.
        '-threads', '1', '-vsync', 'passthrough', '-q:v', '4', '-huffman', 'default', '-c:v', 'mjpeg', '-flush_packets', '1', '-f', 'image2pipe', 'pipe:1',
      ],
    });
    this.#child = child;
    child.stdout!.on('data', (chunk: Buffer) => this.#onOutput(chunk));
    child.stdin!.on('error', (e) => this.close(e));
    void child.exited.then((exit) => this.close(new Error(`snapshot decoder ended (${child.describeExit(exit)})`)));
    this.#log.debug({ pid: child.pid }, 'snapshot decoder started');
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Keyframe copies written so far (more than the decodes asked when the decoder holds pictures back). */
  get written(): number {
    return this.#written;
  }

  /** A keyframe is being decoded now. */
  get busy(): boolean {
    return this.#job !== undefined;
  }

  /**
   * The JPEG of `frame` (a keyframe with its parameter sets). One at a time: the pool never asks
   * twice at once. An abort answers SnapshotAborted and leaves the decoder running (the copies
   * already written come out and are dropped); a failure or the deadline closes it.
   */
  decode(frame: Frame, signal?: AbortSignal): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('snapshot decoder closed'));
    if (this.#job) return Promise.reject(new Error('snapshot decoder busy'));
    if (signal?.aborted) return Promise.reject(new SnapshotAborted());
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = (): void => this.#settle(job, new SnapshotAborted());
      const job: Job = {
        frame,
        copies: 0,
        settled: false,
        resolve: (jpeg) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(jpeg);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        deadline: setTimeout(() => {
          const e = new Error(`snapshot decoder gave no picture within ${DECODE_TIMEOUT_MS} ms: ${this.#child.lastStderr().slice(-2).join(' | ')}`);
          this.#settle(job, e);
          this.close(e);
        }, DECODE_TIMEOUT_MS),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#job = job;
      // Pictures the decoder holds come out before ours: write ours once more for each. After a
      // quiet moment (nothing written and nothing out for PUMP_MS; copies pumped while ffmpeg was
      // starting may still be coming out) every copy still in flight is one it holds; otherwise
      // the last count stands.
      // (A picture the decoder dropped also stays counted until the next JPEG passes it: bounded.)
      const now = performance.now();
      if (now - this.#lastWrite >= PUMP_MS && now - this.#lastOutput >= PUMP_MS) this.#held = Math.min(this.#inFlight.length, MAX_COPIES - 1);
      const copies = Math.min(MAX_COPIES, this.#held + 1);
      for (let i = 0; i < copies; i++) this.#write(job);
      this.#armPump(job);
    });
  }

  #write(job: Job): void {
    const stdin = this.#child.stdin;
    const frame = job.frame;
    if (!stdin || stdin.destroyed || this.closed || !frame) return;
    if (stdin.writableLength > MAX_PENDING) {
      this.close(new Error(`snapshot decoder cannot keep up: ${stdin.writableLength} bytes unsent`));
      return;
    }
    job.copies++;
    this.#written++;
    this.#lastWrite = performance.now();
    this.#inFlight.push(job);
    stdin.write(toAnnexB(frame.data));
    stdin.write(AFTER[this.codec]);
  }

  #armPump(job: Job): void {
    job.pump = setTimeout(() => {
      job.pump = undefined;
      if (job.settled || this.closed || job.copies >= MAX_COPIES) return;
      this.#write(job);
      this.#armPump(job);
    }, PUMP_MS);
  }

  #onOutput(chunk: Buffer): void {
    if (this.closed) return;
    let jpegs: Buffer[];
    try {
      jpegs = this.#split.push(chunk);
    } catch (e) {
      this.close(e as Error);
      return;
    }
    if (jpegs.length > 0) this.#lastOutput = performance.now();
    for (const jpeg of jpegs) {
      this.#jpegs++;
      const job = this.#inFlight.shift();
      // Copies of a job already answered (or aborted) are dropped.
      if (!job || job.settled) continue;
      this.#settle(job, jpeg);
    }
  }

  #settle(job: Job, outcome: Buffer | Error): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.deadline);
    clearTimeout(job.pump);
    if (this.#job === job) this.#job = undefined;
    job.frame = undefined;
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
  }

  protected onClose(reason?: Error): Promise<void> {
    if (this.#job) this.#settle(this.#job, reason ?? new Error('snapshot decoder stopped'));
    this.#inFlight = [];
    this.#child.close();
    this.#log.debug({ jpegs: this.#jpegs, written: this.#written, reason: reason?.message }, 'snapshot decoder stopped');
    return this.#child.done;
  }
}

