// The stream grid: one tile per stream, each with its own player, poster and state.
import { el, getJSON, hiddenGraceMs, pauseWhenHidden, stateLabel, api } from './common.js';
import { Player, parseModes } from './player.js';

/** ?mode= as on the single view: the order every tile tries. */
const modes = parseModes(new URLSearchParams(location.search).get('mode'));

const tiles = new Map(); // name -> { root, player, server }

function tile(name) {
  const video = el('video', { muted: '', autoplay: '', playsinline: '' });
  video.muted = true;
  const poster = el('img', { alt: '', class: 'poster', loading: 'lazy', src: api(`frame.jpeg?src=${encodeURIComponent(name)}&width=480`) });
  poster.onerror = () => poster.remove();
  const state = el('span', { class: 'state' });
  const error = el('p', { class: 'error' });
  const root = el('article', { class: 'tile', 'data-stream': name },
    el('a', { class: 'screen', href: `stream.html?src=${encodeURIComponent(name)}`, title: `open ${name}` }, poster, video),
    el('div', { class: 'caption' }, el('strong', { text: name }), state, el('a', { href: `stream.html?src=${encodeURIComponent(name)}#details`, text: 'details' })),
    error);
  const t = { root, video, state, error, server: undefined, player: undefined, wasLive: false };
  t.player = new Player(name, video, () => render(t), modes);
  return t;
}

/** One label from what the server says about the source and what the player sees. */
function render(t) {
  const p = t.player.status;
  const s = t.server;
  if (p.phase === 'playing') t.wasLive = true;
  if (p.phase === 'stopped') t.wasLive = false;
  let label = stateLabel(s);
  // Backoff is jittered and may be short: a stream that was live and now restarts, or video that
  // stopped coming, is reconnecting too, whatever the last poll caught.
  const restarting = s?.state === 'backoff' || (t.wasLive && (s?.state === 'starting' || s?.state === 'stopping'));
  if (restarting || p.phase === 'retrying' || p.phase === 'stalled') label = 'reconnecting';
  else if (p.phase === 'playing') label = 'live';
  t.state.textContent = label;
  t.root.dataset.state = label;
  t.root.dataset.live = String(label === 'live');
  t.root.dataset.mode = t.player.mode ?? '';
  const why = [s?.error, p.phase === 'retrying' ? p.text : ''].filter(Boolean).join(' · ');
  t.error.textContent = why;
  t.root.classList.toggle('has-video', p.phase === 'playing' || p.phase === 'stalled');
}

async function refresh() {
  const streams = await getJSON('streams');
  const names = Object.keys(streams);
  document.getElementById('message').textContent = names.length ? '' : 'no streams configured';
  for (const name of names) {
    let t = tiles.get(name);
    if (!t) {
      t = tile(name);
      tiles.set(name, t);
      document.getElementById('grid').append(t.root);
      if (!document.hidden) t.player.start();
    }
    t.server = streams[name];
    render(t);
  }
  for (const [name, t] of tiles) {
    if (names.includes(name)) continue;
    t.player.stop('removed');
    t.root.remove();
    tiles.delete(name);
  }
}

getJSON('').then((info) => { document.getElementById('version').textContent = `v${info.camrelay ?? info.version ?? ''}`; }).catch(() => {});
pauseWhenHidden(() => [...tiles.values()].map((t) => t.player), hiddenGraceMs());
addEventListener('pagehide', () => { for (const t of tiles.values()) t.player.stop('page closed'); });
addEventListener('pageshow', (e) => { if (e.persisted) for (const t of tiles.values()) t.player.start(); });
const poll = async () => {
  try { if (!document.hidden) await refresh(); }
  catch (e) { document.getElementById('message').textContent = `camrelay unreachable: ${e.message}`; }
  setTimeout(poll, 1000);
};
poll();
