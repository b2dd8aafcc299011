// WebRTC over go2rtc's signalling socket (/api/ws?src=) with trickle ICE: one attempt. The player
// judges its frames and retries; this releases the server session when stopped.
import { api } from './common.js';

/** ICE "disconnected" may heal by itself; after this long it counts as failed. */
const DISCONNECTED_MS = 3000;

export const webrtc = {
  name: 'webrtc',
  unavailable: () => (typeof RTCPeerConnection === 'function' ? undefined : 'RTCPeerConnection not available'),
  open,
};

/**
 * @param {{src: string, video: HTMLVideoElement, fail: (reason: string) => void}} ctx
 */
function open({ src, video, fail }) {
  const timers = [];
  let answered = false;
  let session;
  let stopped = false;
  const failOnce = (reason) => { if (!stopped) fail(reason); };
  // camrelay_session: camrelay tells this page its session id, to end it at once on leaving.
  const wsUrl = api(`ws?src=${encodeURIComponent(src)}&camrelay_session`).replace(/^http/, 'ws');
  const ws = new WebSocket(wsUrl);
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const media = new MediaStream();
  pc.ontrack = (e) => {
    media.addTrack(e.track);
    if (video.srcObject !== media) video.srcObject = media;
    video.play().catch(() => {});
  };
  const send = (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); };
  // Local candidates go out as found; go2rtc holds those that come before its answer.
  pc.onicecandidate = (e) => {
    if (e.candidate && e.candidate.candidate) send({ type: 'webrtc/candidate', value: e.candidate.candidate });
  };
  pc.onconnectionstatechange = () => {
    const s = pc.connectionState;
    if (s === 'failed' || s === 'closed') failOnce(`connection ${s}`);
    else if (s === 'disconnected') timers.push(setTimeout(() => { if (pc.connectionState === 'disconnected') failOnce('connection lost'); }, DISCONNECTED_MS));
  };
  // Remote candidates must wait for the answer to be applied.
  let remote = Promise.resolve();
  ws.onopen = async () => {
    try {
      await pc.setLocalDescription(await pc.createOffer());
      send({ type: 'webrtc', value: { type: 'offer', sdp: pc.localDescription.sdp } });
    } catch (e) {
      failOnce(`offer: ${e.message}`);
    }
  };
  ws.onmessage = (ev) => {
    if (stopped) return;
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m.type === 'webrtc' && m.value?.type === 'answer') {
      answered = true;
      remote = remote.then(() => pc.setRemoteDescription({ type: 'answer', sdp: m.value.sdp })).catch((e) => failOnce(`answer: ${e.message}`));
    } else if (m.type === 'camrelay/session' && typeof m.value === 'string') {
      session = m.value;
      video.dataset.session = m.value;
    } else if (m.type === 'webrtc/candidate' && typeof m.value === 'string') {
      remote = remote.then(() => pc.addIceCandidate({ candidate: m.value, sdpMLineIndex: 0 })).catch(() => {});
    } else if (m.type === 'error' || (typeof m.type === 'string' && m.type.endsWith('/error'))) {
      failOnce(String(m.value ?? 'server error'));
    }
  };
  // The server may close the socket after its answer (as go2rtc allows); only before it is it fatal.
  ws.onclose = () => { if (!answered) failOnce('signalling closed'); };

  return {
    element: video,
    /** framesDecoded from getStats(), which stops when packets stop (the video element's own counters do not, always). */
    frames: () => decodedFrames(pc),
    width: () => video.videoWidth,
    stats: () => rtcStats(pc),
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      // camrelay does not notice a closed peer connection before its disconnect timeout; the DELETE ends it now.
      pc.close();
      // The explicit release: keepalive lets the request outlive a closing page (sendBeacon can only POST).
      if (session) fetch(api(`webrtc?id=${encodeURIComponent(session)}`), { method: 'DELETE', keepalive: true }).catch(() => {});
      // go2rtc's socket does not end a session by closing (Home Assistant closes it after the
      // answer); it is closed so that nothing is left open.
      ws.onclose = null;
      ws.close();
      video.srcObject = null;
    },
  };
}

async function decodedFrames(pc) {
  const report = await pc.getStats();
  for (const s of report.values()) if (s.type === 'inbound-rtp' && s.kind === 'video') return s.framesDecoded ?? 0;
  return 0;
}

async function rtcStats(pc) {
  const report = await pc.getStats();
  const out = { width: 0, height: 0, fps: 0, framesDecoded: 0, bytes: 0, packetsLost: 0, rttMs: undefined };
  for (const s of report.values()) {
    if (s.type === 'inbound-rtp') {
      out.bytes += s.bytesReceived ?? 0;
      out.packetsLost += s.packetsLost ?? 0;
      if (s.kind === 'video') {
        out.width = s.frameWidth ?? 0;
        out.height = s.frameHeight ?? 0;
        out.fps = s.framesPerSecond ?? 0;
        out.framesDecoded = s.framesDecoded ?? 0;
      }
    } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) {
      out.rttMs = Math.round(s.currentRoundTripTime * 1000);
    }
  }
  return out;
}
