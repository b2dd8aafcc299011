import { randomBytes } from 'node:crypto';
import { Owned } from '../core/owned.js';
import type { Consumer, ConsumerInfo } from '../core/consumer.js';
import type { Frame, MediaRequest } from '../core/media.js';

/**
 * A consumer that hands video frames to a callback: the base of snapshots and MJPEG. Its owner
 * closes it; closing detaches it from the stream (which stops an idle source at once).
 */
export class VideoFrameConsumer extends Owned implements Consumer {
  readonly id = randomBytes(6).toString('base64url');
  readonly request: MediaRequest = { video: ['H264', 'H265'] };
  #bytes = 0;

  constructor(
    private readonly type: string,
    private readonly onVideo: (f: Frame) => void,
    private readonly meta: { remoteAddr?: string; userAgent?: string } = {},
  ) {
    super('VideoFrameConsumer');
  }

  onFrame(frame: Frame): void {
    if (this.closed || frame.track.kind !== 'video') return;
    for (const d of frame.data) this.#bytes += d.length;
    this.onVideo(frame);
  }

  info(): ConsumerInfo {
    return { type: this.type, id: this.id, remote_addr: this.meta.remoteAddr, user_agent: this.meta.userAgent, bytes_recv: this.#bytes };
  }

  protected onClose(): void {}
}
