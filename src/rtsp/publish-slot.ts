import { SourceError } from '../core/errors.js';
import type { Frame, Track } from '../core/media.js';
import { Owned } from '../core/owned.js';

/** What a slot needs from the connection publishing into it. */
export interface Publisher {
  readonly closed: boolean;
  readonly done: Promise<void>;
  close(reason?: Error): void;
}

/**
 * A one-time publish path on the RtspServer, owned by whoever asked for it (the ffmpeg source).
 * At most one publisher ever uses it. Events: 'frame' (Frame) after RECORD; 'close' (err?) once,
 * with a SourceError when the publisher went away or the server closed, without one after the
 * owner's close(). close() destroys the publisher's connection at once; the server forgets the path.
 */
export class PublishSlot extends Owned {
  #publisher: Publisher | undefined;
  #claimed = false;
  #tracks: Track[] | undefined;

  constructor(
    readonly url: string,
    readonly path: string,
    readonly label: string,
  ) {
    super('PublishSlot');
  }

  get publishing(): boolean {
    return this.#tracks !== undefined && !this.closed;
  }

  /** Resolves with the announced tracks once RECORD was received. */
  tracks(signal?: AbortSignal): Promise<Track[]> {
    if (this.#tracks) return Promise.resolve(this.#tracks);
    if (this.closed) return Promise.reject(new SourceError(`publish slot ${this.label} is closed`));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<Track[]>((resolve, reject) => {
      const cleanup = () => {
        this.off('recording', onRecording);
        this.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const onRecording = (t: Track[]) => {
        cleanup();
        resolve(t);
      };
      const onClose = (err?: Error) => {
        cleanup();
        reject(err ?? new SourceError(`publish slot ${this.label} closed before the publisher started`));
      };
      const onAbort = () => {
        cleanup();
        reject(abortReason(signal!));
      };
      this.on('recording', onRecording);
      this.on('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** For the server: takes the path for `p`; false if it was used before or the slot is closed. */
  claim(p: Publisher): boolean {
    if (this.closed || this.#claimed) return false;
    this.#claimed = true;
    this.#publisher = p;
    return true;
  }

  /** For the publisher's connection: RECORD arrived; frames follow. */
  recording(p: Publisher, tracks: Track[]): void {
    if (this.closed || p !== this.#publisher || this.#tracks) return;
    this.#tracks = tracks;
    this.emit('recording', tracks);
  }

  /** For the publisher's connection. */
  deliver(p: Publisher, frame: Frame): void {
    if (this.closed || p !== this.#publisher || !this.#tracks) return;
    this.emit('frame', frame);
  }

  /** For the publisher's connection: it ended (socket closed, TEARDOWN, protocol error). */
  publisherGone(p: Publisher, why: string, permanent = false): void {
    if (p !== this.#publisher) return;
    this.#publisher = undefined;
    this.close(new SourceError(`publisher disconnected: ${why}`, permanent));
  }

  protected onClose(): Promise<void> | void {
    const p = this.#publisher;
    this.#publisher = undefined;
    p?.close();
    return p?.done;
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new SourceError('aborted');
}
