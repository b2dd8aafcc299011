// Where a consumer's video may start: at a keyframe (a decoder cannot begin anywhere else), or at
// once from the stream's current GOP (the catch-up), and then never the same frame twice. The
// stream gates what it hands each consumer (ConsumerGate); an output whose video starts later
// than its attach (a WebRTC peer once connected, an RTSP player at PLAY) gates its own sending
// with a KeyframeGate and asks for the catch-up at that moment (replayCatchUp).
import type { Consumer } from './consumer.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import type { Frame } from './media.js';

/** Video passes from the first keyframe on; other kinds always pass. */
export class KeyframeGate {
  #open = false;

  /** Whether video is flowing (a keyframe went through since the last reset). */
  get open(): boolean {
    return this.#open;
  }

  /** Whether `f` may go out; the first video keyframe opens the gate. */
  admit(f: Frame): boolean {
    if (f.track.kind !== 'video' || this.#open) return true;
    if (!f.keyframe) return false;
    this.#open = true;
    return true;
  }

  /** Video waits for a keyframe again (a reconnect, a new PLAY). */
  reset(): void {
    this.#open = false;
  }

  /** Video starts now: the caller hands over a decodable start itself (the catch-up GOP). */
  openNow(): void {
    this.#open = true;
  }
}

/** Where a frame comes from, for the gate: which run of a source, and its count of video frames. */
export interface FrameOrigin {
  /** Unique per run of a source in the process. */
  runId: number;
  /** The run's count of video frames up to and including this one. */
  seq: number;
}

/** The stream's gate for one attached consumer. */
export class ConsumerGate {
  readonly video = new KeyframeGate();
  /**
   * What catchUp() gave it: the run's video frames up to `seq`. Those of them still being fanned
   * out (a slice boundary fell before this consumer) must not reach it a second time.
   */
  #caughtUp: FrameOrigin | undefined;

  admit(f: Frame, from: FrameOrigin): boolean {
    if (f.track.kind === 'video' && this.#caughtUp?.runId === from.runId && from.seq <= this.#caughtUp.seq) return false;
    return this.video.admit(f);
  }

  /** Its video source (re)starts: wait for that source's next keyframe. */
  restart(): void {
    this.video.reset();
  }

  /**
   * The frames of `gop` to hand over at once, if the consumer takes its codec; from then on it
   * gets the live video frames after `upTo`. Empty when nothing decodable is held: it then starts
   * at the next keyframe, as without a cache.
   */
  catchUp(gop: readonly Frame[], accepts: readonly string[] | undefined, upTo: FrameOrigin): readonly Frame[] {
    if (gop.length === 0 || !accepts?.includes(gop[0]!.track.codec.name)) return [];
    this.video.openNow();
    this.#caughtUp = upTo;
    return [...gop];
  }
}

/** What a consumer is given to start video at once: the stream's current GOP (Stream.catchUp). */
export interface CatchUpSource {
  catchUp?(c: Consumer): readonly Frame[];
}

/**
 * Feeds a consumer that is about to start its video the stream's current GOP through its own
 * onFrame, rather than letting it wait up to a GOP for the next keyframe; stops if it closes.
 * Its own KeyframeGate (reset when it started waiting) opens on the GOP's keyframe.
 */
export function replayCatchUp(stream: CatchUpSource, c: Consumer): void {
  for (const f of stream.catchUp?.(c) ?? []) {
    if (c.closed) return;
    c.onFrame(f);
  }
}

/**
 * Hands `f` to `c`. A consumer that throws on a frame is closed with that error (its bug must not
 * reach the source that emitted, which would end the stream for every viewer), and one whose
 * close fails too is only logged: the fan-out goes on to the others either way.
 */
export function deliverGuarded(c: Consumer, f: Frame, log: Logger): void {
  try {
    c.onFrame(f);
  } catch (e) {
    log.error({ consumer: c.id, err: errorMessage(e) }, 'consumer failed on a frame; closing it');
    try {
      c.close(e instanceof Error ? e : new Error(String(e)));
    } catch (closeErr) {
      // close() emitted 'close' all the same (Owned), so the stream has let go of it.
      log.error({ consumer: c.id, err: errorMessage(closeErr) }, 'consumer failed while closing');
    }
  }
}
