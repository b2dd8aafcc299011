// One ffmpeg MJPEG encoder per stream and picture size, shared by every MJPEG viewer of that
// stream at that size (HTTP multipart and WebSocket alike): decode once, encode once, and hand
// the same JPEG buffer to every viewer.
import { Owned } from '../core/owned.js';
import type { Frame, Track } from '../core/media.js';
import { log, type Logger } from '../core/log.js';
import { toAnnexB } from '../codecs/annexb.js';
import { ChildProcessOwner, type StopGrace } from '../process/child.js';
import { JpegSplitter } from './jpeg-split.js';
import { scaleFilter } from './snapshot.js';

/** Unsent H.264 bytes to ffmpeg beyond which the encoder counts as stuck and stops. */
const MAX_PENDING = 8 * 1024 * 1024;
/** The largest JPEG ffmpeg may write (or bytes without an end of image) before the encoder stops. */
const MAX_JPEG = 16 * 1024 * 1024;

/** What the encoder feeds and serves: a viewer. */
export interface JpegSubscriber {
  readonly closed: boolean;
  /** One whole JPEG; the buffer is shared with every other subscriber and must not be changed. */
  deliver(jpeg: Buffer): void;
  close(reason?: Error): void;
}

export interface EncoderOptions {
  ffmpegBin: string;
  grace: StopGrace;
  width?: number;
  height?: number;
  /** For logs. */
  stream: string;
}

/**
 * Owns the ffmpeg child. Its subscribers are its viewers: it closes them when it fails, and
 * closes itself when the last one leaves. Every viewer is attached to the stream as its own
 * consumer (each is listed in /api/streams, as in go2rtc), and all get the same frames; the
 * encoder takes them from one viewer at a time (the feeder) and, when that one leaves, from
 * another one from the frame after the last it wrote, so the decode never sees a frame twice.
 */
export class MjpegEncoder extends Owned {
  #subs = new Set<JpegSubscriber>();
  #child: ChildProcessOwner | undefined;
  #feeder: JpegSubscriber | undefined;
  /** The last frame written, to tell a continuation from a replay (not the frame: its buffers would stay). */
  #last: { track: Track; timestamp: number } | undefined;
  #latest: Buffer | undefined;
  #jpegs = 0;
  #log: Logger;

  constructor(private readonly opts: EncoderOptions) {
    super('MjpegEncoder');
    this.#log = log.child({ stream: opts.stream, output: 'mjpeg', size: `${opts.width ?? ''}x${opts.height ?? ''}` });
  }

  get running(): boolean {
    return this.#child !== undefined && !this.closed;
  }
  get viewers(): number {
    return this.#subs.size;
  }
  /** The newest JPEG, for a viewer that joins a running encoder. */
  get latest(): Buffer | undefined {
    return this.#latest;
  }

  add(s: JpegSubscriber): void {
    if (this.closed) throw new Error('mjpeg encoder closed');
    this.#subs.add(s);
  }

  /** The last viewer leaving stops the encoder. */
  remove(s: JpegSubscriber): void {
    if (!this.#subs.delete(s)) return;
    if (this.#feeder === s) this.#feeder = undefined;
    if (this.#subs.size === 0) this.close();
  }

  /** Starts ffmpeg for the first viewer whose stream gave its video track; later calls do nothing. */
  start(codec: string): void {
    if (this.#child || this.closed) return;
    const child = new ChildProcessOwner({
      bin: this.opts.ffmpegBin,
      label: 'ffmpeg-mjpeg',
      grace: this.opts.grace,
      stdout: 'pipe',
      args: [
        '-hide_banner', '-loglevel', 'error', '-fflags', 'nobuffer', '-probesize', '32768', '-analyzeduration', '0',
        '-f', codec === 'H265' ? 'hevc' : 'h264', '-i', 'pipe:0',
        ...scaleFilter(this.opts.width, this.opts.height), '-c:v', 'mjpeg', '-q:v', '5',
        // Raw JPEGs, each flushed as it is made: the viewers' framing is ours (mjpeg.ts, ws-mjpeg.ts).
        '-flush_packets', '1', '-f', 'mjpeg', 'pipe:1',
      ],
    });
    this.#child = child;
    const split = new JpegSplitter(MAX_JPEG);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      let jpegs: Buffer[];
      try {
        jpegs = split.push(chunk);
      } catch (e) {
        this.close(e as Error);
        return;
      }
      for (const j of jpegs) this.#publish(j);
    });
    child.stdin!.on('error', (e) => this.close(e));
    void child.exited.then((exit) => this.close(new Error(child.describeExit(exit))));
    this.#log.info({ pid: child.pid }, 'mjpeg encoder started');
  }

  /** A frame one of the viewers was given: written once, from the feeder. */
  feed(f: Frame, from: JpegSubscriber): void {
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed || this.closed) return;
    if (this.#feeder !== from) {
      if (this.#feeder) return;
      // A new feeder takes over at a keyframe, or at the frame that follows the last one written.
      const continues = this.#last !== undefined && this.#last.track === f.track && f.timestamp > this.#last.timestamp;
      if (!f.keyframe && !continues) return;
      this.#feeder = from;
    }
    if (stdin.writableLength > MAX_PENDING) {
      this.#log.warn({ pending: stdin.writableLength }, 'mjpeg encoder cannot keep up: stopping it');
      this.close(new Error('mjpeg encoder cannot keep up'));
      return;
    }
    this.#last = { track: f.track, timestamp: f.timestamp };
    stdin.write(toAnnexB(f.data));
  }

  #publish(jpeg: Buffer): void {
    this.#latest = jpeg;
    this.#jpegs++;
    // A viewer dropped while this runs leaves the set: iterate over a copy.
    for (const s of [...this.#subs]) if (!s.closed) s.deliver(jpeg);
  }

  protected onClose(reason?: Error): Promise<void> {
    const child = this.#child;
    child?.close();
    const subs = [...this.#subs];
    this.#subs.clear();
    this.#feeder = undefined;
    this.#latest = undefined;
    // Viewers still here lose their picture: the encoder failed (or the hub was told to stop).
    for (const s of subs) s.close(reason ?? new Error('mjpeg encoder stopped'));
    this.#log.info({ jpegs: this.#jpegs, reason: reason?.message }, 'mjpeg encoder stopped');
    return child ? child.done : Promise.resolve();
  }
}
