// Talking to a camera from the single view (issue 18): a "talk" button for streams whose camera
// has a backchannel. Hold it to talk (push to talk), or click it to keep talking until the next
// click; Space and Enter do the same from the keyboard. Each talk is its own WebRTC session that
// only sends the microphone (POST /api/webrtc, WHEP form; DELETE on its Location to end it), so
// the viewing session is never touched. The microphone is asked for only when the button is
// pressed, and given back (its tracks stopped) when the talk ends: the browser's recording
// indicator is on only while talking. Browsers remember the permission, so there is no second prompt.
import { api } from './common.js';

/** A press released sooner than this is a click (talk until the next one); a longer one was held. */
export const HOLD_MS = 350;
/** Answer applied, but no connection after this long: the talk failed. */
const CONNECT_MS = 10000;
/** The offer waits this long at most for the browser's candidates (camrelay also finds the browser without them). */
const GATHER_MS = 1000;
/** ICE "disconnected" may heal by itself; after this long it counts as lost. */
const DISCONNECTED_MS = 3000;

/** Why this page cannot talk, or undefined when it can. */
export function talkUnavailable() {
  if (!window.isSecureContext) {
    return 'not a secure context: browsers give the microphone only to pages over HTTPS (api.tls_listen) or on localhost';
  }
  if (!navigator.mediaDevices?.getUserMedia) return 'this browser gives this page no microphone (no navigator.mediaDevices)';
  if (typeof RTCPeerConnection !== 'function') return 'RTCPeerConnection not available';
  return undefined;
}

/** The server's words for a refused offer: its {"error": …} without the "webrtc: " prefix. */
async function refusal(r) {
  let text = '';
  try {
    const body = await r.text();
    try { text = JSON.parse(body).error ?? body; } catch { text = body; }
  } catch {}
  return `HTTP ${r.status}: ${String(text).replace(/^webrtc: /, '') || r.statusText}`;
}

function micError(e) {
  if (e?.name === 'NotAllowedError') return 'microphone not allowed (allow it for this site in the browser to talk)';
  if (e?.name === 'NotFoundError') return 'no microphone found';
  return `microphone: ${e?.message ?? e}`;
}

const gathered = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === 'complete') return resolve();
  const t = setTimeout(resolve, GATHER_MS);
  pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
});

/**
 * One talk-only session: the microphone as a sendonly audio transceiver. States: 'connecting'
 * (asking for the microphone, offering, connecting), 'talking', 'ended' (stopped, or failed:
 * `error` says why).
 */
class TalkSession {
  constructor(src, onChange) {
    this.src = src;
    this.onChange = onChange;
    this.state = 'connecting';
    this.error = undefined;
    /** The browser gave the microphone (for the hint when the press ended while it asked). */
    this.micAllowed = false;
    this.askingMic = false;
    this.stoppedWhileAsking = false;
    this.mic = undefined;
    this.pc = undefined;
    this.id = undefined;
    this.abort = new AbortController();
    this.timers = [];
    this.#run().catch((e) => this.#end(e.message ?? String(e)));
  }

  get active() { return this.state !== 'ended'; }

  #set(state) {
    this.state = state;
    this.onChange(this);
  }

  async #run() {
    let mic;
    this.askingMic = true;
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      throw new Error(micError(e));
    } finally {
      this.askingMic = false;
    }
    this.micAllowed = true;
    if (!this.active) {
      mic.getTracks().forEach((t) => t.stop());
      return this.onChange(this);
    }
    this.mic = mic;
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    this.pc = pc;
    pc.addTransceiver(mic.getAudioTracks()[0], { direction: 'sendonly', streams: [mic] });
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      if (!this.active) return;
      if (s === 'connected' && this.state === 'connecting') this.#set('talking');
      else if (s === 'failed' || s === 'closed') this.#end(`connection ${s}`);
      else if (s === 'disconnected') this.timers.push(setTimeout(() => { if (pc.connectionState === 'disconnected') this.#end('connection lost'); }, DISCONNECTED_MS));
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (!this.active) return;
    // Not aborted by stop(): an answered session is ended by its DELETE at once, while one whose
    // answer was cut off would hold the camera's one talker place until its connect timeout.
    const r = await fetch(api(`webrtc?src=${encodeURIComponent(this.src)}`), {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
      signal: this.abort.signal,
    });
    if (!r.ok) throw new Error(await refusal(r));
    // The id from the Location (/api/webrtc?id=…), DELETEd relative to the page: camrelay may sit behind a path prefix.
    this.id = new URL(r.headers.get('Location') ?? '', location.href).searchParams.get('id') ?? undefined;
    const answer = await r.text();
    if (!this.active) return this.#release();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    this.timers.push(setTimeout(() => { if (this.state === 'connecting') this.#end(`no connection within ${CONNECT_MS / 1000} s`); }, CONNECT_MS));
  }

  /** Ends the talk (idempotent); a talk that failed keeps its `error`. */
  stop() {
    if (!this.active) return;
    this.stoppedWhileAsking = this.askingMic;
    this.#end(undefined);
  }

  /** The page goes away: also cut an offer still on its way (the DELETE needs its answer). */
  leave() {
    this.abort.abort();
    this.stop();
  }

  #end(error) {
    if (!this.active) return;
    this.error = error;
    this.#release();
    this.#set('ended');
  }

  #release() {
    for (const t of this.timers) clearTimeout(t);
    this.pc?.close();
    this.mic?.getTracks().forEach((t) => t.stop());
    this.mic = undefined;
    // keepalive: the DELETE outlives a closing page, as the viewing session's does.
    if (this.id) fetch(api(`webrtc?id=${encodeURIComponent(this.id)}`), { method: 'DELETE', keepalive: true }).catch(() => {});
    this.id = undefined;
  }
}

const HINT = `Hold to talk, release to stop; or click to talk until you click again. Space and Enter work the same way. The microphone is asked for on the first press.`;

/**
 * Wires the talk button of the single view. `button` starts hidden; update(streamInfo) with each
 * GET /api/streams?src= answer shows it once a producer has a backchannel. `note` tells why
 * talking is unavailable on a page that cannot (title: the full reason); `status` is the live state.
 * @param {{src: string, button: HTMLButtonElement, status: HTMLElement, note: HTMLElement}} els
 */
export function wireTalk({ src, button, status, note }) {
  let backchannel; // the camera's codec, once seen (a stream's config does not change while the page is open)
  let session;
  let last = { state: 'idle', text: '' };
  let pressedAt = 0; // performance.now() of the press in progress, 0 when none
  let pressStops = false; // the press in progress ends a clicked (latched) talk
  let latched = false; // talking after a click, until the next one
  let keyDown = false;
  const why = talkUnavailable();

  const render = () => {
    const s = session;
    let state = 'idle';
    let text = '';
    if (s?.active) {
      state = s.state;
      const how = latched ? 'click talk again to stop' : 'release to stop';
      text = s.state === 'connecting' ? `connecting… (${how})` : `talking to the camera (${how})`;
    } else if (s?.error) {
      state = 'error';
      text = `talk failed: ${s.error}`;
    } else if (s?.micAllowed && s.stoppedWhileAsking) {
      // Released while the browser asked for the microphone: now it is allowed.
      text = 'microphone allowed: hold talk to talk, or click it to keep talking';
    }
    last = { state, text };
    button.dataset.state = state;
    button.setAttribute('aria-pressed', String(state === 'connecting' || state === 'talking'));
    button.textContent = state === 'talking' ? (latched ? 'talking · stop' : 'talking') : state === 'connecting' ? 'connecting…' : 'talk';
    status.textContent = text;
    status.dataset.state = state;
  };

  const start = () => {
    session = new TalkSession(src, (s) => {
      if (s !== session) return;
      if (!s.active) latched = false;
      render();
    });
    render();
  };
  const stop = () => session?.stop();

  const press = () => {
    if (pressedAt) return;
    pressedAt = performance.now();
    pressStops = latched && session?.active;
    if (pressStops) {
      latched = false;
      stop();
    } else if (!session?.active) {
      start();
    }
  };
  const release = () => {
    if (!pressedAt) return;
    const held = performance.now() - pressedAt;
    pressedAt = 0;
    if (pressStops) return;
    if (held < HOLD_MS && session?.active) {
      latched = true;
      render();
    } else {
      stop();
    }
  };

  button.title = HINT;
  button.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault(); // no text selection or focus games while held
    button.focus();
    press();
  });
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) button.addEventListener(ev, release);
  button.addEventListener('contextmenu', (e) => e.preventDefault()); // a long touch is a hold, not a menu
  button.addEventListener('keydown', (e) => {
    if (e.key !== ' ' && e.key !== 'Enter') return;
    e.preventDefault();
    if (e.repeat || keyDown) return;
    keyDown = true;
    press();
  });
  button.addEventListener('keyup', (e) => {
    if (e.key !== ' ' && e.key !== 'Enter') return;
    e.preventDefault();
    keyDown = false;
    release();
  });
  button.addEventListener('blur', () => { keyDown = false; release(); });
  // A click with no pointer or key behind it (a screen reader's activation): a toggle.
  button.addEventListener('click', (e) => {
    if (e.detail !== 0 || keyDown || pressedAt) return;
    if (session?.active) { latched = false; stop(); } else { latched = true; start(); }
  });
  // A hidden or closing page stops talking: no microphone left open behind the user's back.
  document.addEventListener('visibilitychange', () => { if (document.hidden) { pressedAt = 0; latched = false; stop(); } });
  addEventListener('pagehide', () => { pressedAt = 0; latched = false; session?.leave(); });

  render();
  return {
    /** Shows or keeps hiding the button from a GET /api/streams?src= answer. */
    update(info) {
      const p = (info?.producers ?? []).find((x) => x.backchannel);
      if (p && !backchannel) backchannel = p.backchannel.codec ?? 'audio';
      button.hidden = !backchannel || why !== undefined;
      button.dataset.backchannel = backchannel ?? '';
      note.hidden = !backchannel || why === undefined;
      note.textContent = backchannel && why ? `talk unavailable: ${why.split(':')[0]}` : '';
      note.title = backchannel && why ? `The camera has a backchannel (${backchannel}), but this page cannot use a microphone: ${why}.` : '';
      if (backchannel && !why) button.title = `${HINT} The camera takes ${backchannel}.`;
    },
    get state() { return last; },
  };
}
