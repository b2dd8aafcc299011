import { Owned } from '../core/owned.js';
import { SourceError } from '../core/errors.js';
import type { Frame, Track } from '../core/media.js';
import type { Source, SourceInfo } from '../core/source.js';
import type { PublishSlot } from '../rtsp/publish-slot.js';

/**
 * An external publisher (ffmpeg -f rtsp, OBS, a camera that pushes) ANNOUNCEd to a stream's
 * name: the stream's source while it stays connected. Closing it disconnects the publisher.
 */
export class PushSource extends Owned implements Source {
  readonly url: string;

  constructor(private readonly slot: PublishSlot) {
    super('PushSource');
    this.url = `rtsp push ${slot.path}`;
    slot.on('frame', (f: Frame) => {
      if (!this.closed) this.emit('frame', f);
    });
    slot.once('close', (err?: Error) => this.close(err ?? new SourceError('publisher disconnected')));
  }

  start(signal: AbortSignal): Promise<Track[]> {
    return this.slot.tracks(signal);
  }

  info(): SourceInfo {
    return { url: this.url, type: 'rtsp push' };
  }

  protected onClose(): Promise<void> {
    this.slot.close();
    return this.slot.done;
  }
}
