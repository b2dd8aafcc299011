// MJPEG: pictures in an <img> in place of the video. Over the socket ({"type":"mjpeg"}, then one
// JPEG per binary message, as go2rtc serves it) each picture is counted, so a stall is seen; where
// the socket cannot (an error, a server without it) /api/stream.mjpeg is the img's own src.
import { api } from './common.js';

export const mjpeg = {
  name: 'mjpeg',
  unavailable: () => undefined,
  open,
};

function open({ src, video, fail }) {
  let stopped = false;
  let overHttp = false;
  let frames = 0;
  let bytes = 0;
  const failOnce = (reason) => { if (!stopped) fail(reason); };
  const img = document.createElement('img');
  img.className = 'mjpeg';
  img.alt = '';
  video.after(img);
  video.hidden = true;

  // One picture loads at a time and one waits; a newer one replaces the waiting one (a slow
  // browser skips pictures rather than falling behind). Every object URL is revoked.
  let shown;
  let loading;
  let waiting;
  const show = (url) => { loading = url; img.src = url; };
  img.onload = () => {
    if (overHttp) return;
    frames++;
    img.dataset.frames = String(frames);
    if (shown) URL.revokeObjectURL(shown);
    shown = loading;
    loading = undefined;
    if (waiting) { show(waiting); waiting = undefined; }
  };
  img.onerror = () => {
    if (overHttp) return failOnce('mjpeg: stream.mjpeg failed');
    if (loading) URL.revokeObjectURL(loading);
    loading = undefined;
    if (waiting) { show(waiting); waiting = undefined; }
  };

  const ws = new WebSocket(api(`ws?src=${encodeURIComponent(src)}`).replace(/^http/, 'ws'));
  ws.binaryType = 'arraybuffer';
  const useHttp = () => {
    if (overHttp || stopped) return;
    overHttp = true;
    ws.onclose = null;
    ws.close();
    img.src = api(`stream.mjpeg?src=${encodeURIComponent(src)}`);
  };
  ws.onopen = () => ws.send(JSON.stringify({ type: 'mjpeg' }));
  ws.onmessage = (ev) => {
    if (stopped || overHttp) return;
    if (typeof ev.data === 'string') {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'error') useHttp();
      return;
    }
    bytes += ev.data.byteLength;
    const url = URL.createObjectURL(new Blob([ev.data], { type: 'image/jpeg' }));
    if (!loading) show(url);
    else {
      if (waiting) URL.revokeObjectURL(waiting);
      waiting = url;
    }
  };
  ws.onclose = () => { if (frames === 0) useHttp(); else failOnce('mjpeg: socket closed'); };

  return {
    element: img,
    /** Over HTTP the pictures cannot be counted: unknown (no stall detection). */
    frames: () => (overHttp ? null : frames),
    width: () => img.naturalWidth,
    stats: async () => ({ width: img.naturalWidth, height: img.naturalHeight, framesDecoded: frames, bytes: overHttp ? undefined : bytes }),
    stop() {
      stopped = true;
      ws.onclose = null;
      ws.close();
      // Removing the img ends its stream.mjpeg request.
      img.onload = img.onerror = null;
      img.removeAttribute('src');
      img.remove();
      for (const u of [shown, loading, waiting]) if (u) URL.revokeObjectURL(u);
      video.hidden = false;
    },
  };
}
