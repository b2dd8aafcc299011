// The single-stream view (/stream.html?src=NAME, as go2rtc users bookmark it): player, stats
// overlay, and the stream's producers and consumers as GET /api/streams returns them.
import { el, getJSON, hiddenGraceMs, pauseWhenHidden, stateLabel } from './common.js';
import { Player, parseModes } from './player.js';
import { wireTalk } from './talk.js';

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const src = query.get('src') ?? '';
document.title = `${src} · camrelay`;
$('title').textContent = src || 'no stream given';

const video = $('video');
video.muted = true;
const player = new Player(src, video, (s) => {
  $('status').textContent = s.text;
  $('screen').dataset.phase = s.phase;
  showModes();
}, parseModes(query.get('mode')));

/** Details: the mode running (or tried) and why the modes before it were skipped. */
function showModes() {
  const { phase } = player.status;
  const doing = phase === 'playing' || phase === 'stalled' ? 'playing over' : phase === 'connecting' ? 'trying' : 'last tried';
  const now = player.mode ? `${doing} ${player.mode}` : 'no mode';
  $('mode').textContent = [`mode: ${now} (order ${player.modes.join(', ')})`, ...player.skipped.map((w) => `skipped ${w}`)].join(' · ');
  $('mode').dataset.mode = player.mode ?? '';
}
// Tests and scripts read the player from here.
window.camrelayPlayer = player;

// The talk button: shown once /api/streams names the camera's backchannel (showDetails).
const talk = wireTalk({ src, button: $('talk'), status: $('talk-status'), note: $('talk-note') });
window.camrelayTalk = talk;

$('mute').onclick = () => {
  video.muted = !video.muted;
  $('mute').textContent = video.muted ? 'unmute' : 'mute';
};
$('fullscreen').onclick = () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else $('screen').requestFullscreen?.().catch(() => {});
};
$('toggle-stats').onclick = () => { $('stats').hidden = !$('stats').hidden; };

let last;
async function showStats() {
  const s = await player.stats().catch(() => undefined);
  if (!s) { $('stats').textContent = ''; last = undefined; return; }
  // Each mode counts its bytes from its own start.
  if (last?.mode !== s.mode) last = undefined;
  const kbps = last && s.bytes >= last.bytes ? ((s.bytes - last.bytes) * 8) / (s.t - last.t) : undefined;
  last = s;
  const rtc = s.mode === 'webrtc';
  $('stats').textContent = [
    `mode ${s.mode}`,
    `resolution ${s.width}×${s.height}`,
    `fps ${s.fps ?? 0}`,
    `bitrate ${kbps === undefined ? '…' : `${Math.round(kbps)} kbit/s`}`,
    // Round trip and packet loss exist only for RTP.
    ...(rtc ? [`rtt ${s.rttMs === undefined ? '…' : `${s.rttMs} ms`}`, `packets lost ${s.packetsLost}`] : []),
    `first frame ${s.ttffMs === undefined ? '…' : `${s.ttffMs} ms`}`,
    `frames ${s.framesDecoded}`,
    ...s.skipped.map((w) => `skipped ${w}`),
  ].join('\n');
}

const cell = (text) => el('td', { text: String(text ?? '') });

async function showDetails() {
  const s = await getJSON(`streams?src=${encodeURIComponent(src)}`);
  talk.update(s);
  const label = stateLabel(s);
  $('state').textContent = label;
  document.body.dataset.state = label;
  $('summary').textContent = s.error ? `${label}: ${s.error}` : label;
  $('producers').tBodies[0].replaceChildren(...(s.producers ?? []).map((p) =>
    el('tr', {}, cell(p.url), cell(p.pid ? `running (pid ${p.pid})` : 'not running'), cell((p.medias ?? []).join(', ')))));
  $('consumers').tBodies[0].replaceChildren(...(s.consumers ?? []).map((c) =>
    el('tr', {}, cell(c.type), cell(c.remote_addr), cell(c.bytes_send), cell(c.user_agent))));
}

const loop = (f, ms) => { const go = async () => { try { if (!document.hidden) await f(); } catch (e) { $('summary').textContent = e.message; } setTimeout(go, ms); }; go(); };
loop(showStats, 1000);
loop(showDetails, 2000);

pauseWhenHidden(() => [player], hiddenGraceMs());
addEventListener('pagehide', () => player.stop('page closed'));
addEventListener('pageshow', (e) => { if (e.persisted) player.start(); });
if (src) player.start();
