// The text of go2rtc's HLS playlists (internal/hls/session.go), with fMP4 segments cut at
// keyframes: a master playlist naming the session's media playlist, and a live media playlist
// (a sliding window, never ended) with EXT-X-MAP for the init segment. URIs are relative: the
// master is served at /api/stream.m3u8 and names hls/…, the rest live under /api/hls/.
import type { Segment } from './segmenter.js';

/**
 * `video/mp4; codecs="avc1.640029,mp4a.40.2"` → `avc1.640029,mp4a.40.2`. BANDWIDTH is go2rtc's
 * constant: Safari wants one, and the real rate is not known when the session starts.
 */
export function masterPlaylist(id: string, mime: string): string {
  const codecs = /codecs="([^"]*)"/.exec(mime)?.[1] ?? '';
  return ['#EXTM3U', `#EXT-X-STREAM-INF:BANDWIDTH=192000,CODECS="${codecs}"`, `hls/playlist.m3u8?id=${id}`, ''].join('\n');
}

const initUri = (id: string, version: number): string => `init.mp4?id=${id}${version > 0 ? `&v=${version}` : ''}`;

/**
 * The newest `window` segments. TARGETDURATION is the longest segment's duration rounded up
 * (it may only grow: a live playlist must not lower it), at least 1. Every segment starts with a
 * keyframe: EXT-X-INDEPENDENT-SEGMENTS. An init change (new parameter sets) is a new EXT-X-MAP.
 */
export function mediaPlaylist(id: string, segments: readonly Segment[], window: number, maxDuration: number): string {
  const shown = segments.slice(-window);
  const target = Math.max(1, Math.ceil(Math.max(maxDuration, ...shown.map((s) => s.duration)) - 1e-6));
  const lines = ['#EXTM3U', '#EXT-X-VERSION:6', `#EXT-X-TARGETDURATION:${target}`, `#EXT-X-MEDIA-SEQUENCE:${shown[0]?.seq ?? 0}`, '#EXT-X-INDEPENDENT-SEGMENTS'];
  let init: number | undefined;
  for (const s of shown) {
    if (s.initVersion !== init) {
      init = s.initVersion;
      lines.push(`#EXT-X-MAP:URI="${initUri(id, init)}"`);
    }
    lines.push(`#EXTINF:${s.duration.toFixed(3)},`, `segment.m4s?id=${id}&n=${s.seq}`);
  }
  return lines.join('\n') + '\n';
}
