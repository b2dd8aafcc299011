import type { Kind } from '../../core/media.js';

/** One sample as the muxer made it for all its viewers. */
export interface Fmp4Sample {
  trackId: number;
  kind: Kind;
  /** Decode time on the muxer's timeline, in `timescale` ticks. */
  time: number;
  timescale: number;
  duration: number;
  /** Sample flags (sync / non-sync). */
  flags: number;
  /** Video keyframe: a viewer can start here. */
  keyframe: boolean;
  /** The mdat box, header included: shared, never written to. */
  mdat: Buffer;
}
