// How a stream's frames reach its consumers: in slices of the event loop (SlicedFanOut), each
// only to the consumers bound to that frame's source for its kind, through each one's gate
// (delivery-gate.ts), and at once from the current GOP for a consumer starting its video.
import type { Consumer } from './consumer.js';
import { deliverGuarded, type FrameOrigin } from './delivery-gate.js';
import { copyFrames } from './gop-cache.js';
import type { Logger } from './log.js';
import type { Frame } from './media.js';
import { SlicedFanOut } from './sliced-fan-out.js';
import type { SourceRun, SourceRuns } from './source-run.js';
import type { Attachment, StreamConsumers } from './stream-consumers.js';

/**
 * The longest a stream hands frames to its consumers in one event-loop turn before letting
 * timers, signalling and other streams run (see SlicedFanOut).
 */
export const FAN_OUT_SLICE_MS = 4;

/** A frame on its way to the consumers, with the run it came from (stale once that run ended). */
interface Delivery {
  frame: Frame;
  run: SourceRun;
  origin: FrameOrigin;
}

export class StreamDelivery {
  #fanOut: SlicedFanOut<Delivery, [Consumer, Attachment]>;

  constructor(
    private readonly consumers: StreamConsumers,
    private readonly runs: SourceRuns,
    private readonly log: Logger,
  ) {
    this.#fanOut = new SlicedFanOut<Delivery, [Consumer, Attachment]>(
      () => consumers.entries(),
      (d, [c, a]) => this.#deliverTo(d, c, a),
      FAN_OUT_SLICE_MS,
    );
  }

  push(frame: Frame, run: SourceRun, origin: FrameOrigin): void {
    this.#fanOut.push({ frame, run, origin });
  }

  /** Drops what is queued (the stream is closing). */
  clear(): void {
    this.#fanOut.clear();
  }

  /** See Stream.catchUp. */
  catchUp(c: Consumer): readonly Frame[] {
    const a = this.consumers.get(c);
    const index = a && !a.waiter ? a.from.get('video') : undefined;
    const run = index === undefined ? undefined : this.runs.get(index);
    if (!a || !run?.tracks) return [];
    // The consumer may keep them past the next keyframe, when the cache overwrites its own.
    return copyFrames(a.gate.catchUp(run.gop.frames, c.request.video, run.latest));
  }

  #deliverTo({ frame: f, run, origin }: Delivery, c: Consumer, a: Attachment): void {
    // A frame of a run that ended while it waited (a reconnect): the consumers moved on.
    if (!this.runs.current(run)) return;
    if (a.waiter || a.from.get(f.track.kind) !== run.index) return;
    if (a.gate.admit(f, origin)) deliverGuarded(c, f, this.log);
  }
}
