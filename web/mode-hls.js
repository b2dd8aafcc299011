// HLS at /api/stream.m3u8?src= (fMP4 segments), played natively (Safari, iOS): no hls.js, which is
// not a dependency and could not come from a CDN on a closed network.
import { api } from './common.js';

const HLS_TYPE = 'application/vnd.apple.mpegurl';

export const hls = {
  name: 'hls',
  unavailable: (video) => (video.canPlayType(HLS_TYPE) ? undefined : 'not supported by this browser'),
  open,
};

function open({ src, video, fail }) {
  let stopped = false;
  const onError = () => { if (!stopped) fail(`hls: ${video.error?.message || 'playback error'}`); };
  video.addEventListener('error', onError);
  video.src = api(`stream.m3u8?src=${encodeURIComponent(src)}`);
  video.play().catch(() => {});
  return {
    element: video,
    frames: () => video.getVideoPlaybackQuality().totalVideoFrames,
    width: () => video.videoWidth,
    stats: async () => ({ width: video.videoWidth, height: video.videoHeight, framesDecoded: video.getVideoPlaybackQuality().totalVideoFrames }),
    stop() {
      stopped = true;
      video.removeEventListener('error', onError);
      // Without a src the element stops fetching the playlist; the server ends the session by its timeout.
      video.removeAttribute('src');
      video.load();
    },
  };
}
