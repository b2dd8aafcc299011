import type { Codec } from './media.js';

// The way back to a camera: audio a viewer speaks (the ONVIF backchannel of an RTSP camera). A
// source that has one set up exposes it while it runs; the stream lends it to one talker at a time.

/** A backchannel of a running source, in the camera's codec and RTP clock. */
export interface Backchannel {
  /** What the camera takes: PCMA/PCMU at 8 kHz, Opus at 48 kHz, ... */
  readonly codec: Codec;
  /**
   * One RTP payload in the camera's codec, `timestamp` in its clock. Dropped (counted) when the
   * connection cannot take more; never throws.
   */
  send(payload: Buffer, timestamp: number, marker: boolean): void;
  /** Packets and bytes sent, and packets dropped because the connection was full. */
  readonly counters: { packets: number; bytes: number; dropped: number };
}

/** A source that may have a backchannel (RtspSource with `#backchannel=1`). */
export interface BackchannelSource {
  /** The backchannel once the source runs with one set up; undefined otherwise. */
  readonly backchannel: Backchannel | undefined;
}

export function hasBackchannel(x: object): x is BackchannelSource {
  return 'backchannel' in x;
}
