// The web UI in a real browser (Debian's Chromium through playwright-core) against a real
// camrelay process with ffmpeg sources: video plays, the grid goes live, closing the tab releases
// the camera, and a camera that dies comes back by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Chromium, chromiumSkip } from '../helpers/chromium.js';
import { waitFor } from '../helpers/wait.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'artifacts');
const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&audio=sine#video=h264#audio=opus';
const SMALL = 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264';
/** The test config's webrtc.timeouts.disconnect. */
const DISCONNECT_MS = 2000;

interface Sample {
  width: number;
  time: number;
  frames: number;
}

// Browser-side code is passed as text: the project typechecks without the DOM library.
const SAMPLE = `(async () => {
  const v = document.querySelector('video');
  const s = await window.camrelayPlayer.stats();
  return { width: v.videoWidth, time: v.currentTime, frames: s ? s.framesDecoded : 0 };
})()`;

/** Waits until the single view shows moving video; returns when and what it saw. */
async function waitMoving(page: Page, ms: number): Promise<{ first: Sample; last: Sample }> {
  let first: Sample | undefined;
  let last: Sample | undefined;
  await waitFor(
    'moving video',
    async () => {
      const s = await page.evaluate<Sample>(SAMPLE);
      if (s.width === 0) return false;
      first ??= s;
      last = s;
      return s.time > first.time && s.frames > first.frames;
    },
    ms,
    100,
  );
  return { first: first!, last: last! };
}

/** Opens the single view and waits for moving video and for the player to know its session id. */
async function openPlaying(c: Chromium, cr: CamrelayProcess, name: string): Promise<{ page: Page; session: string }> {
  const page = await c.page();
  await page.goto(`${cr.base}/stream.html?src=${encodeURIComponent(name)}`);
  await waitMoving(page, 5000);
  const session = await waitFor('session id known to the page', async () => (await page.locator('video').getAttribute('data-session')) ?? '', 4000, 50);
  const consumers = (await cr.json<{ consumers: { id: string }[] }>(`/api/streams?src=${encodeURIComponent(name)}`)).body.consumers;
  assert.deepEqual(consumers.map((x) => x.id), [session], 'the page found its own session');
  return { page, session };
}

test('single view of demo shows moving video within 5 s, with stats', { timeout: 40000, skip: chromiumSkip }, async () => {
  const cr = await CamrelayProcess.start(testConfig({ demo: DEMO }));
  let c: Chromium | undefined;
  try {
    c = await Chromium.launch();
    const page = await c.page();
    const t0 = Date.now();
    await page.goto(`${cr.base}/stream.html?src=demo`);
    const { first, last } = await waitMoving(page, 5000);
    const took = Date.now() - t0;
    assert.equal(last.width, 640);
    // The overlay fills from getStats() once a second; it names the resolution and the first frame.
    const overlay: string = await waitFor('stats overlay', async () => {
      const t = await page.locator('#stats').textContent();
      return t && /first frame \d+ ms/.test(t) && /bitrate \d+/.test(t) ? t : '';
    }, 4000, 100);
    assert.match(overlay, /resolution 640×360/);
    // Details: the browser's own session as a consumer, with its address and bytes.
    await waitFor('consumer row', async () => /127\.0\.0\.1[\s\S]*\d+/.test((await page.locator('#consumers tbody').textContent()) ?? ''), 4000, 100);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'stream-demo.png') });
    console.log(`# moving video after ${took} ms (frames ${first.frames}→${last.frames}, time ${first.time.toFixed(2)}→${last.time.toFixed(2)} s)`);
    console.log(`# overlay: ${overlay.replace(/\n/g, ' | ')}`);
  } finally {
    await c?.close();
    await cr.stop();
  }
});

test('grid with 4 streams shows 4 live tiles', { timeout: 60000, skip: chromiumSkip }, async () => {
  const cr = await CamrelayProcess.start(testConfig({ a: SMALL, b: SMALL, c: SMALL, d: SMALL }));
  let c: Chromium | undefined;
  try {
    c = await Chromium.launch();
    const page = await c.page();
    const t0 = Date.now();
    await page.goto(`${cr.base}/`);
    // A live tile: its player shows decoded frames and the server says the stream is live.
    const TILES = `[...document.querySelectorAll('.tile')].map((t) => ({
      name: t.dataset.stream, live: t.dataset.live === 'true', label: t.dataset.state, w: t.querySelector('video').videoWidth }))`;
    let tiles: { name: string; live: boolean; label: string; w: number }[] = [];
    await waitFor('4 live tiles', async () => {
      tiles = await page.evaluate<typeof tiles>(TILES);
      return tiles.length === 4 && tiles.every((t) => t.live && t.label === 'live' && t.w === 320);
    }, 20000, 200).catch((e: Error) => {
      throw new Error(`${e.message}; tiles: ${JSON.stringify(tiles)}`);
    });
    const took = Date.now() - t0;
    const live = tiles.length;
    assert.deepEqual(tiles.map((t) => t.name).sort(), ['a', 'b', 'c', 'd']);
    const streams = (await cr.json<Record<string, { state: string }>>('/api/streams')).body;
    for (const s of Object.values(streams)) assert.equal(s.state, 'live');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'grid-4.png') });
    // The phone layout: one column.
    await page.setViewportSize({ width: 390, height: 844 });
    const columns = await page.evaluate<number>(`getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length`);
    assert.equal(columns, 1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'grid-phone.png'), fullPage: true });
    console.log(`# ${live} live tiles after ${took} ms; phone layout: ${columns} column`);
  } finally {
    await c?.close();
    await cr.stop();
  }
});

test('closing the tab, navigating away and killing the browser release the source', { timeout: 60000, skip: chromiumSkip }, async () => {
  const cr = await CamrelayProcess.start(testConfig({ demo: DEMO }));
  let c: Chromium | undefined;
  const released = async (what: string, ms: number) => {
    const t0 = Date.now();
    await waitFor(`${what}: ffmpeg gone`, () => cr.children().length === 0, ms, 20);
    return Date.now() - t0;
  };
  try {
    c = await Chromium.launch();

    let { page } = await openPlaying(c, cr, 'demo');
    assert.equal(cr.children().length, 1);
    await page.close({ runBeforeUnload: true });
    const closeMs = await released('tab closed', 1000);

    ({ page } = await openPlaying(c, cr, 'demo'));
    await page.goto('about:blank');
    const navMs = await released('navigated away', 1000);

    ({ page } = await openPlaying(c, cr, 'demo'));
    c.kill();
    const killMs = await released('browser killed', DISCONNECT_MS + 1000);
    console.log(`# ffmpeg gone ${closeMs} ms after tab close, ${navMs} ms after navigating away, ${killMs} ms after kill -9 of the browser`);
    const after = (await cr.json<{ consumers: unknown[] }>('/api/streams?src=demo')).body;
    assert.equal(after.consumers.length, 0);
  } finally {
    await c?.close();
    await cr.stop();
  }
});

test('a dying camera shows "reconnecting" and video resumes by itself', { timeout: 60000, skip: chromiumSkip }, async () => {
  // Retries within a few seconds, so that the test does not wait on a long backoff.
  const cr = await CamrelayProcess.start(testConfig({ cam: SMALL }, 'stream_defaults: { backoff: { base: 1s } }'));
  let c: Chromium | undefined;
  try {
    c = await Chromium.launch();
    const page = await c.page();
    await page.goto(`${cr.base}/`);
    const tile = page.locator('.tile[data-stream="cam"]');
    await waitFor('live tile', async () => (await tile.getAttribute('data-live')) === 'true', 10000, 100);
    // The source's ffmpeg (the poster's snapshot may run an ffmpeg of its own).
    const sourcePid = async () => (await cr.json<{ producers: { pid?: number }[] }>('/api/streams?src=cam')).body.producers[0]?.pid;
    const pid = await sourcePid();
    assert.ok(pid && cr.children().includes(pid));
    // The camera stays down for 3 s: every ffmpeg the stream starts in that time is killed
    // (one kill alone may be healed by a jittered retry faster than anyone could see).
    const t0 = Date.now();
    let shownMs = -1;
    const killed = new Set<number>();
    const seen: string[] = [];
    while (Date.now() - t0 < 3000) {
      const p = await sourcePid().catch(() => undefined);
      if (p && !killed.has(p)) {
        killed.add(p);
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
      const label = (await tile.locator('.state').textContent()) ?? '';
      if (seen.at(-1) !== label) seen.push(label);
      if (label === 'reconnecting' && shownMs < 0) shownMs = Date.now() - t0;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(shownMs >= 0, `"reconnecting" shown while the camera was down; labels seen: ${seen.join(' → ')}`);
    const framesAt = async () => page.evaluate<number>(`document.querySelector('.tile[data-stream="cam"] video').getVideoPlaybackQuality().totalVideoFrames`);
    const before = await framesAt().catch(() => 0);
    await waitFor('video again', async () => {
      const live = (await tile.getAttribute('data-live')) === 'true';
      return live && (await framesAt()) > before + 10;
    }, 20000, 100);
    const resumedMs = Date.now() - t0;
    const newPid = await sourcePid();
    assert.ok(newPid && !killed.has(newPid) && cr.children().includes(newPid), 'a new ffmpeg runs');
    console.log(`# "reconnecting" shown ${shownMs} ms after the camera died; video back ${resumedMs - 3000} ms after it returned (${killed.size} ffmpeg killed; now ${newPid}); labels: ${seen.join(' → ')}`);
  } finally {
    await c?.close();
    await cr.stop();
  }
});

test('a hidden tab stops its player after the grace and resumes when shown', { timeout: 40000, skip: chromiumSkip }, async () => {
  const cr = await CamrelayProcess.start(testConfig({ demo: DEMO }));
  let c: Chromium | undefined;
  try {
    c = await Chromium.launch();
    const page = await c.page();
    await page.goto(`${cr.base}/stream.html?src=demo&grace=500`);
    await waitMoving(page, 5000);
    await waitFor('session id', async () => (await page.locator('video').getAttribute('data-session')) ?? '', 4000, 50);
    // Headless Chromium's tab is never hidden by itself: the page is told so as a browser would.
    const setHidden = (hidden: boolean) =>
      page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${hidden} });
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${hidden ? 'hidden' : 'visible'}' });
        document.dispatchEvent(new Event('visibilitychange'))`);
    const t0 = Date.now();
    await setHidden(true);
    await waitFor('ffmpeg gone while hidden', () => cr.children().length === 0, 2500, 20);
    const stoppedMs = Date.now() - t0;
    assert.ok(stoppedMs >= 450, `not before the grace (${stoppedMs} ms)`);
    await setHidden(false);
    await waitMoving(page, 5000);
    assert.equal(cr.children().length, 1);
    console.log(`# hidden: source released ${stoppedMs} ms after hiding (grace 500 ms); video back when shown`);
  } finally {
    await c?.close();
    await cr.stop();
  }
});
