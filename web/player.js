// A player for one stream that picks its transport as go2rtc's player does: it tries the modes in
// order (default webrtc, mse, hls, mjpeg), skips those the browser lacks, falls to the next when
// one shows no frame, and keeps the first that does. It retries by itself with backoff and says
// so, and it releases the server session when stopped.
import { webrtc } from './mode-webrtc.js';
import { mse } from './mode-mse.js';
import { hls } from './mode-hls.js';
import { mjpeg } from './mode-mjpeg.js';

export const MODES = { webrtc, mse, hls, mjpeg };
export const DEFAULT_MODES = ['webrtc', 'mse', 'hls', 'mjpeg'];

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
/** No first frame this long after a mode started: the mode failed. */
const FIRST_FRAME_MS = 10000;
/** Frames stopped this long while playing: start over (the server may have dropped us). */
const STALL_MS = 8000;
/** Rounds the mode that played is retried alone before every mode is tried again. */
const KEEP_ROUNDS = 3;

/**
 * Modes from go2rtc's `mode` attribute or ?mode=: a comma list ("mse", "webrtc,mse"); unknown
 * names are ignored ("webrtc/tcp" counts as webrtc); nothing usable gives the default order.
 */
export function parseModes(value) {
  const list = String(value ?? '').split(',').map((m) => m.trim().toLowerCase().split('/')[0]).filter((m) => m in MODES);
  return list.length ? [...new Set(list)] : [...DEFAULT_MODES];
}

export class Player {
  /**
   * @param {string} src stream name
   * @param {HTMLVideoElement} video
   * @param {(status: {phase: string, text: string}) => void} onStatus
   * @param {string[]} modes the order to try (parseModes)
   */
  constructor(src, video, onStatus = () => {}, modes = DEFAULT_MODES) {
    this.src = src;
    this.video = video;
    this.onStatus = onStatus;
    this.modes = modes;
    this.status = { phase: 'stopped', text: 'stopped' };
    this.attempt = 0; // failed rounds in a row, for the backoff
    this.ttffMs = undefined;
    this.run = null; // the current mode's attempt
    this.mode = undefined; // the mode running or being tried
    this.kept = undefined; // the mode that last showed a frame
    this.keptFailures = 0;
    this.skipped = []; // "<mode>: <why>" for the modes passed over in this round
    this.queue = [];
    this.retryTimer = undefined;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.#round();
  }

  /** Ends the session now: the mode's connections closed, no retry. */
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

  #round() {
    this.skipped = [];
    this.roundT0 = performance.now();
    this.queue = this.kept ? [this.kept] : [...this.modes];
    this.#next();
  }

  /** The next mode of the round the browser has, or the round's end. */
  #next() {
    while (this.queue.length) {
      const name = this.queue.shift();
      const why = MODES[name].unavailable(this.video);
      if (why) this.skipped.push(`${name}: ${why}`);
      else return this.#open(name);
    }
    this.#retry(this.skipped.at(-1) ?? 'no mode to try');
  }

  #open(name) {
    const run = { mode: name, handle: null, timers: [], t0: performance.now(), firstFrame: false, last: undefined };
    this.run = run;
    this.mode = name;
    this.video.dataset.mode = name;
    this.#set('connecting', this.attempt ? `connecting (${name}, attempt ${this.attempt + 1})` : `connecting (${name})`);
    try {
      run.handle = MODES[name].open({ src: this.src, video: this.video, fail: (reason) => this.#fail(run, reason) });
    } catch (e) {
      return this.#fail(run, e.message);
    }
    // A mode that failed within open() was torn down before its handle existed.
    if (this.run !== run) return run.handle.stop();
    this.#watch(run);
  }

  /** First frame, and frames still coming: each mode counts its frames (null: it cannot). */
  #watch(run) {
    let lastFrames = -1;
    let lastChange = performance.now();
    let gap = 100;
    const tick = async () => {
      if (this.run !== run) return;
      const frames = await Promise.resolve(run.handle.frames()).catch(() => 0);
      if (this.run !== run) return;
      const now = performance.now();
      const shown = run.handle.width() > 0;
      const moved = frames === null ? shown : frames > 0 && frames !== lastFrames && shown;
      if (moved) {
        // The usual gap between frames (per frame, smoothed): a pause is judged against it.
        if (frames !== null && lastFrames >= 0 && frames > lastFrames) gap = 0.8 * gap + 0.2 * ((now - lastChange) / (frames - lastFrames));
        if (frames !== null) lastFrames = frames;
        lastChange = now;
        if (!run.firstFrame) {
          run.firstFrame = true;
          this.ttffMs = Math.round(now - this.roundT0);
          this.attempt = 0;
          this.kept = run.mode;
          this.keptFailures = 0;
          this.#set('playing', 'live');
        }
      }
      if (!run.firstFrame && now - run.t0 > FIRST_FRAME_MS) return this.#fail(run, `no frame within ${FIRST_FRAME_MS / 1000} s`);
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
    const why = reason.startsWith(`${run.mode}:`) ? reason : `${run.mode}: ${reason}`;
    // A mode that never showed a frame makes way for the next; one that played is retried.
    if (!run.firstFrame) this.skipped.push(why);
    if (!run.firstFrame && this.queue.length) return this.#next();
    this.#retry(why);
  }

  #retry(why) {
    if (this.kept && ++this.keptFailures >= KEEP_ROUNDS) this.kept = undefined;
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    const until = performance.now() + delay;
    const show = () => {
      const left = Math.max(0, Math.ceil((until - performance.now()) / 1000));
      this.#set('retrying', `${why}; retrying in ${left} s (attempt ${this.attempt + 1})`);
    };
    show();
    const countdown = setInterval(show, 1000);
    this.retryTimer = setTimeout(() => {
      clearInterval(countdown);
      if (this.running) this.#round();
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
    run.handle?.stop();
  }

  /** Numbers for the stats overlay, with the mode and the modes skipped; undefined when not connected. */
  async stats() {
    const run = this.run;
    if (!run?.handle) return undefined;
    const s = await run.handle.stats();
    const t = performance.now();
    // Modes without a rate of their own: from the frames since the last call.
    if (s.fps === undefined) s.fps = run.last && t > run.last.t ? Math.round(((s.framesDecoded - run.last.frames) * 1000) / (t - run.last.t)) : 0;
    run.last = { t, frames: s.framesDecoded };
    return { width: 0, height: 0, framesDecoded: 0, ...s, mode: run.mode, skipped: [...this.skipped], ttffMs: this.ttffMs, t };
  }
}
