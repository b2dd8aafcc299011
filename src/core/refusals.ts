// What the bounds and the browser checks refused or cut, counted per process by reason. The API
// layer and the outputs count here; GET /metrics reads the totals at scrape time
// (camrelay_api_refused_total{reason}).

export const REFUSAL_REASONS = [
  /** A browser request naming a Host that is not ours (DNS rebinding). */
  'host',
  /** A state-changing request or WebSocket upgrade whose Origin is not the Host. */
  'origin',
  /** api.max_connections reached: the socket was closed at accept. */
  'max_connections',
  /** api.header_timeout: a request's headers (or an upgrade) did not complete in time. */
  'header_timeout',
  /** api.idle_timeout: a WebSocket sent nothing and answered no ping. */
  'ws_idle',
  /** webrtc.max_connecting_per_client: an offer from an address with too many sessions still connecting. */
  'connecting_per_client',
  /** api.max_snapshots: a snapshot needing a decoder while all were busy. */
  'snapshot_decoders',
  /** accept() failed for want of file descriptors (EMFILE/ENFILE). */
  'fd_limit',
  /** stream.m3u8 over the HLS session bounds (per stream, in all). */
  'hls_sessions',
  /** api.max_mjpeg_encoders: an MJPEG viewer needing one more encoder (a new stream or size). */
  'mjpeg_encoders',
  /** One talker per camera: a viewer's microphone while another viewer talks to that stream. */
  'talk_busy',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const counts = new Map<RefusalReason, number>(REFUSAL_REASONS.map((r) => [r, 0]));

export function countRefusal(reason: RefusalReason): void {
  counts.set(reason, (counts.get(reason) ?? 0) + 1);
}

export function refusalCounts(): ReadonlyMap<RefusalReason, number> {
  return counts;
}
