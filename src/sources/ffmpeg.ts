import { Owned } from '../core/owned.js';
import { markInternal } from '../core/internal.js';
import { SourceError, errorMessage } from '../core/errors.js';
import { log, maskCredentials, type Logger } from '../core/log.js';
import type { Frame, Track } from '../core/media.js';
import type { Source, SourceInfo } from '../core/source.js';
import { ChildProcessOwner, type StopGrace } from '../process/child.js';
import type { RtspServer, PublishSlot } from '../rtsp/server.js';
import { parseFfmpegUrl, type FfmpegSourceSpec } from './ffmpeg-url.js';
import { unreachableLine } from './ffmpeg-failure.js';
import { buildFfmpegArgs, checkInputExists, hardwareReady, loopbackStreamUrl, type FfmpegArgsOptions } from './ffmpeg-args.js';

/**
 * When the publish connection drops, how long to wait for ffmpeg's exit before blaming the
 * connection: a killed or crashed ffmpeg drops its connection a moment before its exit is seen,
 * and its exit (a signal, a code, its last stderr lines) is what says why.
 */
const EXIT_AFTER_DISCONNECT_MS = 500;

export interface FfmpegContext {
  bin: string;
  grace: StopGrace;
  rtsp: RtspServer;
  args: Omit<FfmpegArgsOptions, 'output' | 'streamUrl'>;
  /** Whether a name is one of our streams: `ffmpeg:<name>#…` transcodes that stream. */
  isStream: (name: string) => boolean;
}

/**
 * A device, file, test pattern or transcode: an ffmpeg child that publishes RTSP over TCP into
 * our own server under a one-time path (DESIGN.md). Owns the child and the publish slot.
 */
export class FfmpegSource extends Owned implements Source {
  readonly spec: FfmpegSourceSpec;
  #child: ChildProcessOwner | undefined;
  #slot: PublishSlot | undefined;
  #exitWait: NodeJS.Timeout | undefined;
  #log: Logger;

  constructor(
    readonly url: string,
    private readonly ctx: FfmpegContext,
    streamName: string,
    /** The ffmpeg: URL actually run, when `url` is a camera URL pulled through ffmpeg. */
    ffmpegUrl: string = url,
  ) {
    super('FfmpegSource');
    this.spec = parseFfmpegUrl(ffmpegUrl, ctx.isStream);
    this.#log = log.child({ stream: streamName, source: 'ffmpeg' });
  }

  async start(signal: AbortSignal): Promise<Track[]> {
    if (this.closed || signal.aborted) throw new SourceError('source stopped before it started');
    await checkInputExists(this.spec);
    // A #hardware transcode started while the startup probe still runs waits for it (bounded).
    await hardwareReady(this.spec, this.ctx.args, signal);
    if (this.closed || signal.aborted) throw new SourceError('source stopped before it started');

    const slot = this.ctx.rtsp.expectPublisher(maskCredentials(this.url));
    this.#slot = slot;
    const port = this.ctx.rtsp.port;
    const args = buildFfmpegArgs(this.spec, slot.url, {
      ...this.ctx.args,
      output: 'rtsp',
      // The marker lets this reader past rtsp.username/password and keeps it from holding the stream.
      streamUrl: (name, kinds) => markInternal(loopbackStreamUrl(port, name, kinds)),
    });
    this.#log.debug({ args: args.map(maskCredentials) }, 'spawning ffmpeg');
    const child = new ChildProcessOwner({ bin: this.ctx.bin, args, label: 'ffmpeg', grace: this.ctx.grace });
    this.#child = child;

    const exitedEarly = child.exited.then((x) => {
      throw this.#exitError(x.code, x.signal, x.error);
    });
    let tracks: Track[];
    try {
      tracks = await Promise.race([slot.tracks(signal), exitedEarly]);
    } catch (e) {
      // ffmpeg's own words explain more than "publisher disconnected" does.
      const err = await Promise.race([exitedEarly.catch((x: unknown) => x), Promise.resolve(e)]);
      throw err instanceof SourceError ? err : new SourceError(errorMessage(err));
    }
    exitedEarly.catch(() => {});
    if (this.closed) throw new SourceError('source stopped before it started');
    if (tracks.length === 0) throw new SourceError('ffmpeg published no track we can serve (H.264, Opus, PCMA, PCMU)', true);

    slot.on('frame', (f: Frame) => {
      if (!this.closed) this.emit('frame', f);
    });
    slot.once('close', (err?: Error) => {
      if (!err || this.closed) return;
      // If ffmpeg exits within the wait, the exit closes this source below, with its reason.
      this.#exitWait = setTimeout(() => this.close(new SourceError(`ffmpeg stopped publishing: ${err.message}${this.#stderrTail()}`)), EXIT_AFTER_DISCONNECT_MS);
    });
    void child.exited.then((x) => this.close(this.#exitError(x.code, x.signal, x.error)));
    return tracks;
  }

  #stderrTail(): string {
    const lines = this.#child?.lastStderr() ?? [];
    return lines.length ? `: ${lines.slice(-3).join(' | ')}` : '';
  }

  #exitError(code: number | null, sig: string | null, error?: Error): SourceError {
    if (error) return new SourceError(`ffmpeg could not run: ${error.message}`, true);
    const how = sig ? `killed by ${sig}` : `exited with code ${code}`;
    // An ffmpeg that exits by itself because the camera refused tells waiting viewers at once.
    const refused = !sig && unreachableLine(this.#child?.lastStderr() ?? []) !== undefined;
    return new SourceError(maskCredentials(`ffmpeg ${how}${this.#stderrTail()}`), false, refused);
  }

  info(): SourceInfo {
    return { url: maskCredentials(this.url), type: 'ffmpeg', pid: this.#child?.pid };
  }

  protected onClose(): Promise<void> {
    clearTimeout(this.#exitWait);
    this.#slot?.close();
    const child = this.#child;
    child?.close();
    return child ? child.done : Promise.resolve();
  }
}
