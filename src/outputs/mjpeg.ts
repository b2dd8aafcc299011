// Multipart MJPEG (Home Assistant's MJPEG camera, simple players): the stream's H.264/H.265
// decoded and re-encoded to JPEG by an ffmpeg that lives exactly as long as the HTTP response.
import type { ServerResponse } from 'node:http';
import { Owned } from '../core/owned.js';
import { SourceError } from '../core/errors.js';
import type { Stream } from '../core/stream.js';
import type { Frame } from '../core/media.js';
import { log, type Logger } from '../core/log.js';
import { toAnnexB } from '../codecs/annexb.js';
import { ChildProcessOwner, type StopGrace } from '../process/child.js';
import { VideoFrameConsumer } from './frame-consumer.js';
import { scaleFilter } from './snapshot.js';

export const MJPEG_BOUNDARY = 'frame';
/** Unsent H.264 bytes to ffmpeg beyond which this viewer is dropped rather than buffered. */
const MAX_PENDING = 8 * 1024 * 1024;

export interface MjpegOptions {
  ffmpegBin: string;
  grace: StopGrace;
  width?: number;
  height?: number;
  remoteAddr?: string;
  userAgent?: string;
}

/** Owns the consumer, the ffmpeg encoder and the response; closes all three together. */
export class MjpegOutput extends Owned {
  readonly consumer: VideoFrameConsumer;
  #child: ChildProcessOwner | undefined;
  #log: Logger;

  constructor(
    private readonly stream: Stream,
    private readonly res: ServerResponse,
    private readonly opts: MjpegOptions,
  ) {
    super('MjpegOutput');
    this.#log = log.child({ stream: stream.name, output: 'mjpeg' });
    this.consumer = new VideoFrameConsumer('mjpeg', (f) => this.#feed(f), opts);
    this.consumer.once('close', () => this.close());
    res.once('close', () => this.close());
  }

  /** Resolves once the stream gave its tracks and the encoder runs; rejects with the reason otherwise. */
  async start(): Promise<void> {
    const tracks = await this.stream.attach(this.consumer);
    const video = tracks.find((t) => t.kind === 'video');
    if (!video) throw new SourceError(`stream "${this.stream.name}" has no H.264/H.265 video`);
    if (this.closed) throw new Error('viewer left');
    const child = new ChildProcessOwner({
      bin: this.opts.ffmpegBin,
      label: 'ffmpeg-mjpeg',
      grace: this.opts.grace,
      stdout: 'pipe',
      args: [
        '-hide_banner', '-loglevel', 'error', '-fflags', 'nobuffer', '-probesize', '32768', '-analyzeduration', '0',
        '-f', video.codec.name === 'H265' ? 'hevc' : 'h264', '-i', 'pipe:0',
        ...scaleFilter(this.opts.width, this.opts.height), '-c:v', 'mjpeg', '-q:v', '5',
        '-f', 'mpjpeg', '-boundary_tag', MJPEG_BOUNDARY, 'pipe:1',
      ],
    });
    this.#child = child;
    child.stdin!.on('error', () => this.close());
    child.stdout!.pipe(this.res);
    void child.exited.then(() => this.close());
    this.#log.info({ remote: this.opts.remoteAddr }, 'mjpeg viewer started');
  }

  #feed(f: Frame): void {
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed) return;
    if (stdin.writableLength > MAX_PENDING) {
      this.#log.warn({ pending: stdin.writableLength }, 'mjpeg encoder cannot keep up: dropping the viewer');
      this.close();
      return;
    }
    stdin.write(toAnnexB(f.data));
  }

  protected onClose(): Promise<void> {
    this.consumer.close();
    const child = this.#child;
    child?.close();
    if (!this.res.writableEnded) this.res.destroy();
    this.#log.info('mjpeg viewer closed');
    return child ? child.done : Promise.resolve();
  }
}
