/** The `webrtc:` block of config.yaml, as the WebRTC output uses it (all durations in ms). */
export interface WebRtcSettings {
  /** Extra host candidates to advertise, 'ip' or 'ip:port' (go2rtc's webrtc.candidates); may be []. */
  candidates: string[];
  /** [] = none. werift's own default is a public STUN server: never fall back to it. */
  iceServers: { urls: string[]; username?: string; credential?: string }[];
  /** UDP ports for ICE (werift icePortRange); min and max must differ. */
  portRange?: [number, number];
  timeouts: {
    /** No ICE + DTLS success this long after the answer → the session closes. */
    connect: number;
    /** No inbound packet (STUN, DTLS, RTCP) for this long → the session closes. */
    disconnect: number;
  };
  /** Tests set this to get only 127.0.0.1 host candidates. */
  loopbackOnly?: boolean;
}
