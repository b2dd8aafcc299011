// Shared by the pages: API access relative to the page (camrelay may sit behind a path prefix).
export const api = (path) => new URL(`api/${path}`, document.baseURI).href;

export async function getJSON(path) {
  const r = await fetch(api(path), { cache: 'no-store' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

/** The words a person reads for a stream's server-side state. */
export function stateLabel(s) {
  if (!s) return 'unknown';
  if (s.state === 'backoff') return 'reconnecting';
  return s.state;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/**
 * Stops `players` when the tab has been hidden for `graceMs`, and starts them again when shown:
 * a forgotten background tab must not keep cameras running.
 */
export function pauseWhenHidden(players, graceMs) {
  let timer;
  document.addEventListener('visibilitychange', () => {
    clearTimeout(timer);
    if (document.hidden) timer = setTimeout(() => { for (const p of players()) p.stop('hidden'); }, graceMs);
    else for (const p of players()) p.start();
  });
}

/** The grace before a hidden tab stops its players: ?grace=<ms> overrides 10 s (tests use it). */
export function hiddenGraceMs() {
  const g = Number(new URLSearchParams(location.search).get('grace'));
  return Number.isFinite(g) && g > 0 ? g : 10000;
}
