// MJPEG viewers and the table of shared encoders they join: one encoder per stream and picture
// size (mjpeg-encoder.ts), started by its first viewer and stopped when its last one leaves.
import { countRefusal } from '../core/refusals.js';
import { LogThrottle } from '../core/log-throttle.js';
import { Owned } from '../core/owned.js';
import { CloseReason } from '../core/close-reason.js';
import { SourceError } from '../core/errors.js';
import type { Stream } from '../core/stream.js';
import type { ConsumerInfo } from '../core/consumer.js';
import { log, type Logger } from '../core/log.js';
import type { StopGrace } from '../process/child.js';
import { VideoFrameConsumer } from './frame-consumer.js';
import { MjpegEncoder, type JpegSubscriber } from './mjpeg-encoder.js';

/** Bytes a viewer may leave unsent (its socket's buffer) before it is dropped: a few seconds of 1080p. */
export const MAX_VIEWER_BUFFER = 4 * 1024 * 1024;

/** Where a viewer's JPEGs go: an HTTP multipart response (mjpeg.ts) or a WebSocket (api/ws-mjpeg.ts). */
export interface JpegSink {
  /** Bytes written and not yet taken by the network. */
  readonly buffered: number;
  /** The viewer starts: before its first JPEG (the WebSocket's answer goes out here). */
  open(): void;
  write(jpeg: Buffer): void;
  /** The viewer ended: release the transport (or leave it to its owner). */
  end(): void;
}

export interface ViewerMeta {
  remoteAddr?: string;
  userAgent?: string;
  /** For logs: "http" or "ws". */
  via: string;
}

export interface Size {
  width?: number;
  height?: number;
}

/**
 * One MJPEG viewer. Owns its VideoFrameConsumer (attached to the stream: it keeps the stream
 * running and is what /api/streams lists, as `mjpeg`), its place in the shared encoder, and its
 * sink. JPEGs reach it only after start() resolved.
 */
export class MjpegViewer extends Owned implements JpegSubscriber {
  readonly consumer: VideoFrameConsumer;
  #started = false;
  #sent = 0;
  #log: Logger;

  constructor(
    private readonly stream: Stream,
    private readonly encoder: MjpegEncoder,
    private readonly sink: JpegSink,
    private readonly meta: ViewerMeta,
    private readonly maxBuffer = MAX_VIEWER_BUFFER,
  ) {
    super('MjpegViewer');
    this.#log = log.child({ stream: stream.name, output: 'mjpeg', via: meta.via });
    this.consumer = new VideoFrameConsumer('mjpeg', (f) => {
      if (this.#started) this.encoder.feed(f, this);
    }, meta);
    this.consumer.once('close', (reason?: Error) => this.close(reason));
    // Before the attach: a viewer still waiting for the stream keeps the encoder (and its child) alive.
    encoder.add(this);
  }

  /** Resolves once the stream gave its video and the shared encoder runs; rejects with the reason otherwise. */
  async start(): Promise<void> {
    const tracks = await this.stream.attach(this.consumer);
    const video = tracks.find((t) => t.kind === 'video');
    if (!video) throw new SourceError(`stream "${this.stream.name}" has no H.264/H.265 video`);
    if (this.closed) throw new Error('viewer left');
    const joined = this.encoder.running;
    this.encoder.start(video.codec.name);
    this.#started = true;
    this.sink.open();
    this.#log.info({ remote: this.meta.remoteAddr, shared: joined }, 'mjpeg viewer started');
    // Joining a running encoder: its newest picture at once, the next one when it comes.
    const latest = this.encoder.latest;
    if (latest) this.deliver(latest);
  }

  deliver(jpeg: Buffer): void {
    if (!this.#started || this.closed) return;
    if (this.sink.buffered > this.maxBuffer) {
      this.#log.warn({ buffered: this.sink.buffered }, 'mjpeg viewer cannot keep up: dropping it');
      this.close(new CloseReason('slow_consumer', `viewer cannot keep up: ${this.sink.buffered} bytes unsent`));
      return;
    }
    this.#sent += jpeg.length;
    this.sink.write(jpeg);
  }

  info(): ConsumerInfo {
    return { ...this.consumer.info(), bytes_send: this.#sent };
  }

  protected onClose(reason?: Error): void {
    this.consumer.close();
    this.encoder.remove(this);
    this.sink.end();
    this.#log.info({ reason: reason?.message, sent: this.#sent }, 'mjpeg viewer closed');
  }
}

const busyLog = new LogThrottle('mjpeg viewer refused: api.max_mjpeg_encoders encoders busy');

export interface MjpegHubOptions {
  ffmpegBin: string;
  grace: StopGrace;
  /** Each viewer as it is made (metrics count its bytes and its drop as kind `mjpeg`). */
  onViewer?: (viewer: MjpegViewer, stream: string) => void;
  /** Per-viewer send buffer bound (default MAX_VIEWER_BUFFER). */
  maxViewerBuffer?: number;
  /** api.max_mjpeg_encoders: encoders at once, all streams and sizes (default: no bound). */
  maxEncoders?: number;
}

/** Every encoder slot is taken and none of them makes this stream at this size. */
export class MjpegEncodersBusy extends Error {
  constructor(readonly max: number) {
    super(`all ${max} MJPEG encoders are busy (api.max_mjpeg_encoders: ${max}); a stream and size already being watched can still be joined`);
  }
}

/**
 * The encoders by stream and size. Not counted: it holds only encoders, and each encoder closes
 * itself with its last viewer (whose own owner, a request or a socket, closes it).
 */
export class MjpegHub {
  #encoders = new Map<Stream, Map<string, MjpegEncoder>>();

  constructor(private readonly opts: MjpegHubOptions) {}

  /** A viewer of `stream` at `size`, in the encoder it shares; the caller start()s and closes it. */
  viewer(stream: Stream, size: Size, sink: JpegSink, meta: ViewerMeta): MjpegViewer {
    const key = `${size.width ?? ''}x${size.height ?? ''}`;
    let bySize = this.#encoders.get(stream);
    if (!bySize) this.#encoders.set(stream, (bySize = new Map()));
    let enc = bySize.get(key);
    if (!enc && this.encoders >= (this.opts.maxEncoders ?? Infinity)) {
      if (bySize.size === 0) this.#encoders.delete(stream);
      countRefusal('mjpeg_encoders');
      busyLog.hit({ max: this.opts.maxEncoders, stream: stream.name, size: key });
      throw new MjpegEncodersBusy(this.opts.maxEncoders!);
    }
    if (!enc) {
      const made = new MjpegEncoder({ ffmpegBin: this.opts.ffmpegBin, grace: this.opts.grace, ...size, stream: stream.name });
      const table = bySize;
      made.once('close', () => {
        if (table.get(key) === made) table.delete(key);
        if (table.size === 0 && this.#encoders.get(stream) === table) this.#encoders.delete(stream);
      });
      bySize.set(key, (enc = made));
    }
    const v = new MjpegViewer(stream, enc, sink, meta, this.opts.maxViewerBuffer);
    this.opts.onViewer?.(v, stream.name);
    return v;
  }

  /** Encoders alive now (for tests and debugging). */
  get encoders(): number {
    let n = 0;
    for (const m of this.#encoders.values()) n += m.size;
    return n;
  }
}
