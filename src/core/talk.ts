import type { Backchannel } from './backchannel.js';
import type { Consumer } from './consumer.js';

// One talker per stream: a camera has one speaker, and two microphones mixed into it by
// accident (go2rtc sends both, "only the first works") helps nobody. The talker is a consumer of
// the stream (it keeps the camera connection while it talks); what it says goes to whichever
// backchannel the running source has, so it carries on across a camera reconnect.

export class TalkBusyError extends Error {
  constructor(stream: string) {
    super(`stream "${stream}": someone else is talking (one talker per camera); try again when they stop`);
    this.name = 'TalkBusyError';
  }
}

export class NoBackchannelError extends Error {
  constructor(stream: string) {
    super(`stream "${stream}" has no backchannel to talk to (an RTSP camera source with #backchannel=1 whose camera describes one)`);
    this.name = 'NoBackchannelError';
  }
}

/** A talker's hold on the stream's backchannel; released by release() or the consumer's close. */
export interface Talk {
  /** The camera's codec when the talk began. */
  readonly codec: Backchannel['codec'];
  /** Sends to the backchannel running now; dropped while the source reconnects or after release. */
  send(payload: Buffer, timestamp: number, marker: boolean): void;
  release(): void;
}

export class TalkSlot {
  #holder: Consumer | undefined;
  /** Packets talkers sent that reached a backchannel, and those that found none (reconnecting). */
  readonly counters = { sent: 0, lost: 0 };

  constructor(
    private readonly stream: string,
    private readonly current: () => Backchannel | undefined,
  ) {}

  get holder(): Consumer | undefined {
    return this.#holder;
  }

  /** Throws NoBackchannelError or TalkBusyError; the consumer must be attached and its stream live. */
  take(consumer: Consumer): Talk {
    const back = this.current();
    if (!back) throw new NoBackchannelError(this.stream);
    if (this.#holder && this.#holder !== consumer) throw new TalkBusyError(this.stream);
    if (consumer.closed) throw new Error('consumer already closed');
    this.#holder = consumer;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      consumer.off('close', release);
      if (this.#holder === consumer) this.#holder = undefined;
    };
    consumer.once('close', release);
    return {
      codec: back.codec,
      send: (payload, timestamp, marker) => {
        if (released) return;
        const now = this.current();
        // A camera back after a reboot with another codec or rate takes none of these packets.
        if (!now || now.codec.name !== back.codec.name || now.codec.clockRate !== back.codec.clockRate || (now.codec.channels ?? 1) !== (back.codec.channels ?? 1)) {
          this.counters.lost++;
          return;
        }
        now.send(payload, timestamp, marker);
        this.counters.sent++;
      },
      release,
    };
  }
}
