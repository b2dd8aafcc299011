// A WebRTC viewer's microphone on its way to the camera: the receiving track of the m-line the
// viewer talks on, converted to the backchannel's codec (MicConverter) and sent through the
// stream's Talk (one talker per camera). Owned by its session; closing it releases the talk, so
// the next viewer may talk, and stops the conversion. The receiving track is the peer's.
import { Owned } from '../../core/owned.js';
import type { Logger } from '../../core/log.js';
import type { Talk } from '../../core/talk.js';
import { describeTrack, type Codec } from '../../core/media.js';
import { MicConverter } from '../talk/mic-converter.js';
import type { RecvTrack, RtpIn } from './backend.js';

/**
 * Packets a microphone may send per second before the rest are dropped: a browser sends 50 (20 ms
 * frames), Opus's shortest frames make 400. Decoding is the one per-packet cost a viewer can make
 * us pay, so a flood of valid-looking packets must not reach the decoder.
 */
const MAX_PACKETS_PER_S = 400;

export class MicLane extends Owned {
  readonly #converter: MicConverter;
  readonly #onRtp: (p: RtpIn) => void;
  #windowStart = 0;
  #inWindow = 0;
  /** Packets dropped for coming faster than MAX_PACKETS_PER_S. */
  flooded = 0;

  constructor(
    private readonly recv: RecvTrack,
    readonly input: Codec,
    private readonly talk: Talk,
    log: Logger,
  ) {
    // Throws UnsupportedTalkCodecError (before anything is counted) for a pair it cannot convert.
    const converter = new MicConverter({ input, target: talk.codec });
    super('MicLane');
    this.#converter = converter;
    converter.on('packet', (p) => talk.send(p.payload, p.timestamp, p.marker));
    converter.ready.catch((e: unknown) => {
      if (this.closed) return;
      log.warn({ err: e instanceof Error ? e.message : String(e) }, 'microphone decoder failed to load; the viewer cannot talk');
      this.close();
    });
    this.#onRtp = (p) => {
      const now = Date.now();
      if (now - this.#windowStart >= 1000) {
        this.#windowStart = now;
        this.#inWindow = 0;
      }
      if (++this.#inWindow > MAX_PACKETS_PER_S) {
        this.flooded++;
        return;
      }
      converter.push(p);
    };
    recv.on('rtp', this.#onRtp);
    recv.once('close', () => this.close());
  }

  /** For /api/streams: what comes in, what goes to the camera, and the counts. */
  describe(): string {
    const s = this.#converter.stats;
    const flooded = this.flooded ? `, ${this.flooded} dropped as too fast` : '';
    return `audio, recvonly, ${describeTrack({ kind: 'audio', codec: this.input })} to the camera's ${describeTrack({ kind: 'audio', codec: this.talk.codec })}, ${s.received} packets in, ${s.emitted} out${flooded}`;
  }

  get stats(): { received: number; emitted: number } {
    const s = this.#converter.stats;
    return { received: s.received, emitted: s.emitted };
  }

  protected onClose(): void {
    this.recv.off('rtp', this.#onRtp);
    this.#converter.close();
    this.talk.release();
  }
}
