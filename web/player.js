// A WebRTC player for one stream over go2rtc's signalling socket (/api/ws?src=) with trickle ICE.
// It retries by itself with backoff and says so, and it releases the server session when stopped.
import { api } from './common.js';

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
/** No first frame this long after the offer: the attempt failed. */
const FIRST_FRAME_MS = 10000;
/** Frames stopped this long while playing: start over (the server may have dropped us). */
const STALL_MS = 8000;
/** ICE "disconnected" may heal by itself; after this long it counts as failed. */
const DISCONNECTED_MS = 3000;

export class Player {
  /**
   * @param {string} src stream name
   * @param {HTMLVideoElement} video
   * @param {(status: {phase: string, text: string}) => void} onStatus
   */
  constructor(src, video, onStatus = () => {}) {
    this.src = src;
    this.video = video;
    this.onStatus = onStatus;
    this.status = { phase: 'stopped', text: 'stopped' };
    this.attempt = 0; // failed attempts in a row, for the backoff
    this.ttffMs = undefined;
    this.run = null; // the current attempt's resources
    this.retryTimer = undefined;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.#connect();
  }

  /** Ends the session now: peer connection and signalling closed, no retry. */
  stop(why = 'stopped') {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.#teardown();
    this.#set('stopped', why);
  }

  #set(phase, text) {
    this.status = { phase, text };
    this.video.dataset.phase = phase;
    this.onStatus(this.status);
  }

  #connect() {
    const run = { ws: null, pc: null, timers: [], answered: false, t0: performance.now(), firstFrame: false, session: undefined };
    this.run = run;
    this.#set('connecting', this.attempt ? `connecting (attempt ${this.attempt + 1})` : 'connecting');
    // camrelay_session: camrelay tells this page its session id, to end it at once on leaving.
    const wsUrl = api(`ws?src=${encodeURIComponent(this.src)}&camrelay_session`).replace(/^http/, 'ws');
    const ws = (run.ws = new WebSocket(wsUrl));
    const pc = (run.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' }));
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    pc.ontrack = (e) => {
      media.addTrack(e.track);
      if (this.video.srcObject !== media) this.video.srcObject = media;
      this.video.play().catch(() => {});
    };
    const send = (m) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m)); };
    // Local candidates go out as found; go2rtc holds those that come before its answer.
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) send({ type: 'webrtc/candidate', value: e.candidate.candidate });
    };
    pc.onconnectionstatechange = () => {
      if (this.run !== run) return;
      const s = pc.connectionState;
      if (s === 'failed' || s === 'closed') this.#fail(run, `connection ${s}`);
      else if (s === 'disconnected') run.timers.push(setTimeout(() => { if (pc.connectionState === 'disconnected') this.#fail(run, 'connection lost'); }, DISCONNECTED_MS));
    };
    // Remote candidates must wait for the answer to be applied.
    let remote = Promise.resolve();
    ws.onopen = async () => {
      try {
        await pc.setLocalDescription(await pc.createOffer());
        send({ type: 'webrtc', value: { type: 'offer', sdp: pc.localDescription.sdp } });
      } catch (e) {
        this.#fail(run, `offer: ${e.message}`);
      }
    };
    ws.onmessage = (ev) => {
      if (this.run !== run) return;
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'webrtc' && m.value?.type === 'answer') {
        run.answered = true;
        remote = remote.then(() => pc.setRemoteDescription({ type: 'answer', sdp: m.value.sdp })).catch((e) => this.#fail(run, `answer: ${e.message}`));
      } else if (m.type === 'camrelay/session' && typeof m.value === 'string') {
        run.session = m.value;
        this.video.dataset.session = m.value;
      } else if (m.type === 'webrtc/candidate' && typeof m.value === 'string') {
        remote = remote.then(() => pc.addIceCandidate({ candidate: m.value, sdpMLineIndex: 0 })).catch(() => {});
      } else if (m.type === 'error' || (typeof m.type === 'string' && m.type.endsWith('/error'))) {
        this.#fail(run, String(m.value ?? 'server error'));
      }
    };
    // The server may close the socket after its answer (as go2rtc allows); only before it is it fatal.
    ws.onclose = () => { if (this.run === run && !run.answered) this.#fail(run, 'signalling closed'); };
    this.#watch(run);
  }

  /**
   * First frame, and frames still coming: judged from framesDecoded in getStats(), which stops
   * when packets stop (the video element's own frame counters do not, always).
   */
  #watch(run) {
    let lastFrames = -1;
    let lastChange = performance.now();
    let gap = 100;
    const tick = async () => {
      if (this.run !== run) return;
      const frames = await decodedFrames(run.pc).catch(() => 0);
      if (this.run !== run) return;
      const now = performance.now();
      if (frames > 0 && frames !== lastFrames && this.video.videoWidth > 0) {
        // The usual gap between frames (per frame, smoothed): a pause is judged against it.
        if (lastFrames >= 0 && frames > lastFrames) gap = 0.8 * gap + 0.2 * ((now - lastChange) / (frames - lastFrames));
        lastFrames = frames;
        lastChange = now;
        if (!run.firstFrame) {
          run.firstFrame = true;
          this.ttffMs = Math.round(now - run.t0);
          this.attempt = 0;
          this.#set('playing', 'live');
        }
      }
      if (!run.firstFrame && now - run.t0 > FIRST_FRAME_MS) return this.#fail(run, `no video within ${FIRST_FRAME_MS / 1000} s`);
      if (run.firstFrame && now - lastChange > STALL_MS) return this.#fail(run, 'video stalled');
      // Several frame gaps without a frame (at least half a second): the video has stopped.
      const stalled = now - lastChange > Math.max(500, 4 * gap);
      if (run.firstFrame && stalled && this.status.phase === 'playing') this.#set('stalled', 'waiting for video');
      if (run.firstFrame && !stalled && this.status.phase === 'stalled') this.#set('playing', 'live');
      run.timers.push(setTimeout(tick, 150));
    };
    tick();
  }

  #fail(run, reason) {
    if (this.run !== run || !this.running) return;
    this.#teardown();
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    const until = performance.now() + delay;
    const show = () => {
      const left = Math.max(0, Math.ceil((until - performance.now()) / 1000));
      this.#set('retrying', `${reason}; retrying in ${left} s (attempt ${this.attempt + 1})`);
    };
    show();
    const countdown = setInterval(show, 1000);
    this.retryTimer = setTimeout(() => {
      clearInterval(countdown);
      if (this.running) this.#connect();
    }, delay);
    const stopCountdown = this.retryTimer;
    this.#clearCountdown = () => { clearInterval(countdown); clearTimeout(stopCountdown); };
  }

  #clearCountdown = () => {};

  #teardown() {
    this.#clearCountdown();
    this.#clearCountdown = () => {};
    const run = this.run;
    this.run = null;
    if (!run) return;
    for (const t of run.timers) clearTimeout(t);
    // camrelay does not notice a closed peer connection before its disconnect timeout; the DELETE ends it now.
    run.pc.close();
    // The explicit release: keepalive lets the request outlive a closing page (sendBeacon can only POST).
    if (run.session) fetch(api(`webrtc?id=${encodeURIComponent(run.session)}`), { method: 'DELETE', keepalive: true }).catch(() => {});
    // go2rtc's socket does not end a session by closing (Home Assistant closes it after the
    // answer); it is closed so that nothing is left open.
    run.ws.onclose = null;
    run.ws.close();
    this.video.srcObject = null;
  }

  /** Numbers for the stats overlay, from getStats(); undefined when not connected. */
  async stats() {
    const pc = this.run?.pc;
    if (!pc) return undefined;
    const report = await pc.getStats();
    const out = { width: 0, height: 0, fps: 0, framesDecoded: 0, bytes: 0, packetsLost: 0, rttMs: undefined, ttffMs: this.ttffMs, t: performance.now() };
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
}

async function decodedFrames(pc) {
  const report = await pc.getStats();
  for (const s of report.values()) if (s.type === 'inbound-rtp' && s.kind === 'video') return s.framesDecoded ?? 0;
  return 0;
}
