// In-process stand-ins for a camera and a viewer, to drive the core state machine exactly.
// Integration tests use real ffmpeg and real WebRTC peers instead.
import { Owned } from '../../src/core/owned.js';
import { SourceError } from '../../src/core/errors.js';
import type { Source, SourceInfo } from '../../src/core/source.js';
import type { Consumer, ConsumerInfo } from '../../src/core/consumer.js';
import type { Frame, MediaRequest, Track } from '../../src/core/media.js';

export const H264: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 } };
export const OPUS: Track = { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2 } };

export interface ScriptedStart {
  /** 'ok' resolves with tracks; otherwise rejects with this error. */
  outcome: 'ok' | SourceError;
  /** ms before the outcome; undefined = wait until the test calls release(). */
  after?: number;
}

export class ScriptedSource extends Owned implements Source {
  static all: ScriptedSource[] = [];
  private releaseStart: (() => void) | undefined;
  startedAt = 0;

  constructor(
    readonly url: string,
    private readonly script: ScriptedStart,
    private readonly tracks: Track[] = [H264, OPUS],
  ) {
    super('TestSource');
    ScriptedSource.all.push(this);
  }

  want: MediaRequest | undefined;

  start(signal: AbortSignal, want: MediaRequest): Promise<Track[]> {
    this.startedAt = Date.now();
    this.want = want;
    return new Promise((resolve, reject) => {
      const finish = () => {
        if (signal.aborted || this.closed) return reject(new SourceError('aborted'));
        if (this.script.outcome === 'ok') resolve(this.tracks);
        else reject(this.script.outcome);
      };
      this.releaseStart = finish;
      if (this.script.after !== undefined) {
        const t = setTimeout(finish, this.script.after);
        this.once('close', () => clearTimeout(t));
      }
      signal.addEventListener('abort', () => reject(new SourceError('aborted')), { once: true });
    });
  }

  release(): void {
    this.releaseStart?.();
  }

  emitFrame(f: Omit<Frame, 'track'>, track: Track = H264): void {
    this.emit('frame', { ...f, track });
  }

  /** The camera drops: the source ends by itself with an error. */
  fail(msg = 'camera went away'): void {
    this.close(new SourceError(msg));
  }

  info(): SourceInfo {
    return { url: this.url };
  }

  protected onClose(): void {}
}

export class TestViewer extends Owned implements Consumer {
  frames: Frame[] = [];
  constructor(
    readonly id: string,
    readonly request: MediaRequest = { video: ['H264'], audio: ['OPUS'] },
  ) {
    super('TestViewer');
  }
  onFrame(f: Frame): void {
    this.frames.push(f);
  }
  info(): ConsumerInfo {
    return { type: 'test', id: this.id };
  }
  protected onClose(): void {}
}
