import { SourceError } from '../core/errors.js';
import { log, maskCredentials, type Logger } from '../core/log.js';
import { describeTrack, type Frame, type MediaRequest, type Track } from '../core/media.js';
import type { Backchannel, BackchannelSource } from '../core/backchannel.js';
import { Owned } from '../core/owned.js';
import type { Source, SourceInfo } from '../core/source.js';
import { RtspClient, type RtspClientOptions } from '../rtsp/client.js';
import { parseCameraUrl } from '../rtsp/url.js';

/**
 * A camera pulled natively over RTSP (rtsp://, rtsps://, rtspx://): no ffmpeg. Owns one RtspClient,
 * which owns the camera connection(s) and UDP sockets. The URL is parsed at construction, so a
 * URL that cannot work throws a permanent SourceError from the factory.
 */
export class RtspSource extends Owned implements Source, BackchannelSource {
  #client: RtspClient;
  #live = false;
  #log: Logger;

  constructor(
    readonly url: string,
    streamName: string,
    opts: Partial<RtspClientOptions> = {},
  ) {
    // A URL that cannot work throws here, before anything is counted or opened.
    parseCameraUrl(url);
    super('RtspSource');
    this.#log = log.child({ stream: streamName, source: 'rtsp' });
    this.#client = new RtspClient(url, opts, this.#log);
    this.#client.on('frame', (f: Frame) => {
      if (this.#live && !this.closed) this.emit('frame', f);
    });
    this.#client.once('close', (err?: Error) => {
      // The camera failed (or the start did): this source ends with that error.
      if (err) this.close(err instanceof SourceError ? err : new SourceError(err.message));
    });
  }

  async start(signal: AbortSignal, want: MediaRequest): Promise<Track[]> {
    if (this.closed || signal.aborted) throw new SourceError('source stopped before it started');
    const tracks = await this.#client.play(signal, want);
    if (this.closed) throw new SourceError('source stopped before it started');
    this.#live = true;
    return tracks;
  }

  /** The camera's ONVIF backchannel while playing, with `#backchannel=1` and a camera that has one. */
  get backchannel(): Backchannel | undefined {
    return this.#live && !this.closed ? this.#client.backchannel : undefined;
  }

  info(): SourceInfo {
    const back = this.backchannel;
    return {
      url: maskCredentials(this.url),
      type: 'rtsp',
      transport: this.#client.transport,
      remote_addr: this.#client.remoteAddress,
      tracks: this.#client.tracks.map(describeTrack),
      ...(back ? { backchannel: { codec: describeTrack({ kind: 'audio', codec: back.codec }), ...back.counters } } : {}),
    };
  }

  protected onClose(): Promise<void> {
    this.#client.close();
    return this.#client.done;
  }
}
