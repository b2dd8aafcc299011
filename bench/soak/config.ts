// The soak's camrelay config: one demo stream (ffmpeg's test pattern, no camera needed), loopback
// only, and short WebRTC timeouts so that the cycles whose peer vanishes or never connects end in
// about a second instead of the defaults' 10-15 s. webrtc.listen on port 0: node-datachannel's one
// shared UDP port must not collide with another camrelay on this machine.
export const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';

export interface SoakConfigOptions {
  connectTimeout: string;
  disconnectTimeout: string;
  /** webrtc.backend: auto, werift or node-datachannel. */
  backend: string;
}

export function soakConfig(o: SoakConfigOptions): string {
  return `api: { listen: "127.0.0.1:0" }
rtsp: { listen: "127.0.0.1:0" }
webrtc:
  listen: "127.0.0.1:0"
  backend: ${o.backend}
  loopback_only: true
  timeouts: { connect: ${o.connectTimeout}, disconnect: ${o.disconnectTimeout} }
ffmpeg:
  stop_grace: { quit: 200ms, term: 300ms }
streams:
  demo: ${JSON.stringify(DEMO)}
`;
}
