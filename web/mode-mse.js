// MSE over go2rtc's socket (/api/ws?src=): {"type":"mse","value":"<codecs>"} is answered with the
// MSE type, then binary messages (init segment, then fragments) appended in order to one
// SourceBuffer. The buffer is trimmed behind the playhead and a playhead that falls behind the
// live edge jumps to it: a live stream must neither grow memory nor drift into delay.
import { api } from './common.js';

/** go2rtc's player's candidates (video-rtc.js); go2rtc's server knows exactly these strings. */
const CODECS = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'hvc1.1.6.L153.B0', 'mp4a.40.2', 'mp4a.40.5', 'flac', 'opus'];
/** Media kept behind the playhead (seconds) before older media is removed. */
const KEEP_BEHIND_S = 10;
/** Further behind the live edge than this (seconds), the playhead jumps to it. */
const MAX_LAG_S = 3;
/** Bytes waiting for the SourceBuffer beyond which the stream cannot keep up. */
const MAX_PENDING = 16 * 1024 * 1024;

const MediaSourceClass = () => window.ManagedMediaSource ?? window.MediaSource;

export const mse = {
  name: 'mse',
  unavailable: () => (MediaSourceClass() ? undefined : 'MediaSource not available'),
  open,
};

/**
 * The codecs to offer, as go2rtc's player builds them: every candidate the browser says it plays,
 * comma-joined; Safari claims audio codecs it cannot play in MSE, so its list is cut by version.
 */
export function mseCodecs(isSupported, userAgent = navigator.userAgent) {
  const list = CODECS.filter((c) => isSupported(`video/mp4; codecs="${c}"`));
  const safari = /Version\/(\d+).+Safari/.exec(userAgent);
  if (safari) {
    const v = Number(safari[1]);
    const cut = list.indexOf(v < 13 ? 'mp4a.40.2' : v < 14 ? 'flac' : 'opus');
    if (cut >= 0) list.splice(cut);
  }
  return list.join(',');
}

function open({ src, video, fail }) {
  const MS = MediaSourceClass();
  const ms = new MS();
  let ws;
  let sb;
  const pending = [];
  let pendingBytes = 0;
  let bytes = 0;
  let stopped = false;
  const failOnce = (reason) => { if (!stopped) fail(reason); };

  const append = () => {
    if (!sb || sb.updating || pending.length === 0 || ms.readyState !== 'open') return;
    const chunk = pending.length === 1 ? pending[0] : concat(pending);
    pending.length = 0;
    pendingBytes = 0;
    try {
      sb.appendBuffer(chunk);
    } catch (e) {
      failOnce(`mse: ${e.message}`);
    }
  };
  const keepLive = () => {
    if (!sb || sb.updating || sb.buffered.length === 0) return;
    const start = sb.buffered.start(0);
    const end = sb.buffered.end(sb.buffered.length - 1);
    // Also a start before the first media (a timeline not starting at 0) is behind.
    if (video.currentTime < start || end - video.currentTime > MAX_LAG_S) video.currentTime = Math.max(start, end - 0.5);
    else if (video.currentTime - start > 2 * KEEP_BEHIND_S) {
      try { sb.remove(start, video.currentTime - KEEP_BEHIND_S); } catch { /* the next update trims */ }
    }
  };

  if (window.ManagedMediaSource && MS === window.ManagedMediaSource) {
    video.disableRemotePlayback = true;
    video.srcObject = ms;
  } else {
    video.src = URL.createObjectURL(ms);
  }
  const onError = () => failOnce(`mse: video error${video.error?.message ? `: ${video.error.message}` : ''}`);
  video.addEventListener('error', onError);
  ms.addEventListener('sourceopen', () => {
    if (stopped) return;
    if (video.src.startsWith('blob:')) URL.revokeObjectURL(video.src);
    ws = new WebSocket(api(`ws?src=${encodeURIComponent(src)}`).replace(/^http/, 'ws'));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send(JSON.stringify({ type: 'mse', value: mseCodecs((t) => MS.isTypeSupported(t)) }));
    ws.onmessage = (ev) => {
      if (stopped) return;
      if (typeof ev.data !== 'string') {
        bytes += ev.data.byteLength;
        pending.push(new Uint8Array(ev.data));
        pendingBytes += ev.data.byteLength;
        if (pendingBytes > MAX_PENDING) return failOnce('mse: the browser does not keep up with the stream');
        return append();
      }
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'mse' && !sb) {
        try {
          sb = ms.addSourceBuffer(m.value);
          sb.mode = 'segments';
        } catch (e) {
          return failOnce(`mse: ${m.value}: ${e.message}`);
        }
        sb.addEventListener('updateend', () => { append(); keepLive(); });
        video.play().catch(() => {});
        append();
      } else if (m.type === 'error') {
        const v = String(m.value ?? 'server error');
        failOnce(v.startsWith('mse') ? v : `mse: ${v}`);
      }
    };
    ws.onclose = () => failOnce('mse: socket closed');
  }, { once: true });

  return {
    element: video,
    frames: () => video.getVideoPlaybackQuality().totalVideoFrames,
    width: () => video.videoWidth,
    stats: async () => ({ width: video.videoWidth, height: video.videoHeight, framesDecoded: video.getVideoPlaybackQuality().totalVideoFrames, bytes }),
    stop() {
      stopped = true;
      video.removeEventListener('error', onError);
      // The socket's close ends the server's viewer.
      if (ws) { ws.onclose = null; ws.close(); }
      if (ms.readyState === 'open') try { ms.endOfStream(); } catch { /* closing anyway */ }
      if (video.srcObject === ms) video.srcObject = null;
      video.removeAttribute('src');
      video.load();
    },
  };
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.byteLength; }
  return out;
}
