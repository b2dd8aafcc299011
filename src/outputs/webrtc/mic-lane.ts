// A WebRTC viewer's microphone on its way to the camera: the receiving track of the m-line the
// viewer talks on, converted to the backchannel's codec (MicConverter) and sent through the
// stream's Talk (one talker per camera). Owned by its session; closing it releases the talk, so
// the next viewer may talk, and stops the conversion. The receiving track is the peer's.
// A viewer whose audio line is merely sendrecv (many clients' default) takes the Talk and the
// converter (its wasm decoder, an AAC camera's ffmpeg) only when it speaks; an explicit
// microphone (a sendonly line) has both from the answer on.
import { performance } from 'node:perf_hooks';
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
  readonly #onRtp: (p: RtpIn) => void;
  #talk: Talk | undefined;
  #acquire: (() => Talk) | undefined;
  #converter: MicConverter | undefined;
  #windowStart = 0;
  #inWindow = 0;
  /** Packets dropped for coming faster than MAX_PACKETS_PER_S. */
  flooded = 0;
  /** Why this viewer does not talk, while its packets find the talk taken (or none). */
  notTalking: string | undefined;
  /** When the Talk was last asked for in vain: it is asked again at most five times a second. */
  #refusedAt = -Infinity;

  constructor(
    private readonly recv: RecvTrack,
    /** The microphone's codec, checked convertible to the camera's by the session (micConversionError). */
    readonly input: Codec,
    /** The stream's Talk, taken already (an explicit microphone line), or how to take it on the first packet (throws when it cannot be). */
    talk: Talk | (() => Talk),
    private readonly log: Logger,
    /** 'sendrecv' when the line also carries the camera's audio to the viewer. */
    readonly direction: 'recvonly' | 'sendrecv',
  ) {
    super('MicLane');
    if (typeof talk === 'function') this.#acquire = talk;
    else this.#talk = talk;
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
      (this.#converter ?? this.#start())?.push(p);
    };
    recv.on('rtp', this.#onRtp);
    recv.once('close', () => this.close());
    // An explicit microphone gets its converter (and an AAC camera's ffmpeg) before it speaks.
    if (this.#talk) this.#start();
  }

  /** Whether the viewer talks now (it spoke and holds the stream's Talk). */
  get talking(): boolean {
    return this.#talk !== undefined && !this.closed;
  }

  #start(): MicConverter | undefined {
    let talk: Talk;
    let converter: MicConverter;
    if (!this.#talk && performance.now() - this.#refusedAt < 200) return undefined;
    try {
      talk = this.#talk ?? this.#acquire!();
    } catch (e) {
      // Someone else talks: this viewer's packets are dropped until the talk is free.
      const why = e instanceof Error ? e.message : String(e);
      if (why !== this.notTalking) this.log.info({ why }, 'viewer sends a microphone; not talking');
      this.notTalking = why;
      this.#refusedAt = performance.now();
      return undefined;
    }
    this.notTalking = undefined;
    try {
      converter = new MicConverter({ input: this.input, target: talk.codec });
    } catch (e) {
      // The camera came back with a codec this microphone cannot be made into.
      talk.release();
      this.#talk = undefined;
      this.notTalking = e instanceof Error ? e.message : String(e);
      this.close();
      return undefined;
    }
    this.#talk = talk;
    this.#converter = converter;
    // A converter that ends by itself (an AAC encoder's ffmpeg died) ends the talk: the slot is freed.
    converter.once('close', () => this.close());
    converter.on('packet', (p) => talk.send(p.payload, p.timestamp, p.marker));
    converter.ready.catch((e: unknown) => {
      if (this.closed) return;
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'microphone decoder failed to load; the viewer cannot talk');
      this.close();
    });
    return converter;
  }

  /** For /api/streams: what comes in, what goes to the camera, and the counts. */
  describe(): string {
    const s = this.#converter?.stats;
    const to = this.#talk ? `to the camera's ${describeTrack({ kind: 'audio', codec: this.#talk.codec })}` : 'to the camera once it speaks';
    const flooded = this.flooded ? `, ${this.flooded} dropped as too fast` : '';
    return `audio, ${this.direction}, ${describeTrack({ kind: 'audio', codec: this.input })} ${to}, ${s?.received ?? 0} packets in, ${s?.emitted ?? 0} out${flooded}`;
  }

  protected onClose(): Promise<void> {
    this.recv.off('rtp', this.#onRtp);
    this.#converter?.close();
    this.#talk?.release();
    return this.#converter?.done ?? Promise.resolve();
  }
}
