// Issue 18, the page's half: the single view's talk button in headless Chromium, over HTTPS (a
// self-signed certificate made with openssl here), against a real camrelay and gst-rtsp-server's
// ONVIF camera with a PCMA backchannel. Chromium's fake microphone plays a 1 kHz WAV made with
// ffmpeg; what the camera decodes from its backchannel must be that tone. Loopback only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { CamrelayProcess, nonZero, testConfig } from '../helpers/camrelay-process.js';
import { chromiumSkip } from '../helpers/chromium.js';
import { MicChromium } from '../helpers/chromium-mic.js';
import { GstCamera, cameraCanRun } from '../helpers/gst-camera.js';
import { baseline, tcpConnections, type Baseline } from '../helpers/fault-resources.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { assertTone, rms } from '../helpers/tone.js';
import { waitFor } from '../helpers/wait.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'artifacts');
const skip = chromiumSkip || (cameraCanRun('h264', 'pcma') ? false : 'gst-rtsp-server with its ONVIF classes and alawdec not available');
/** web/talk.js's HOLD_MS: a press released sooner is a click. */
const HOLD_MS = 350;
/** A name that resolves to 127.0.0.1 in the test's Chromium only: http:// on it is no secure context. */
const INSECURE_HOST = 'camera.test';

let dir = '';
let wav = '';
let camera: GstCamera;
let app: CamrelayProcess;
let browser: MicChromium;
let tlsPort = 0;
let base: Baseline;

interface StreamsView {
  producers: { url: string; backchannel?: { codec: string; packets: number } }[];
  consumers: { id: string; talking?: boolean; not_talking?: string; medias?: string[] }[];
}
const view = async (name = 'door'): Promise<StreamsView> => (await app.json<Record<string, StreamsView>>('/api/streams')).body[name]!;
const talkers = async (): Promise<number> => metric(await scrape(app), 'camrelay_talkers');

// Before any page script: counts getUserMedia calls, so that a call before the press shows.
const COUNT_GUM = `(() => {
  window.__gum = 0;
  const md = navigator.mediaDevices;
  if (!md) return;
  const real = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => { window.__gum++; return real(c); };
})()`;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), 'camrelay-talk-page-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=camrelay-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15000 });
  // The fake microphone's sound: a 1 kHz sine, 48 kHz mono s16 (Chromium loops it).
  wav = path.join(dir, 'tone.wav');
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000:duration=20', '-ac', '1', '-c:a', 'pcm_s16le', wav], { timeout: 15000 });
  camera = await GstCamera.start({ pipeline: 'h264', backchannel: 'pcma' });
  const streams = testConfig({ door: `${camera.url()}#backchannel=1`, plain: camera.url() });
  const yaml = streams.replace('api: { listen: "127.0.0.1:0" }', `api: { listen: "127.0.0.1:0", tls_listen: "127.0.0.1:0", tls_cert: ${JSON.stringify(cert)}, tls_key: ${JSON.stringify(key)}, allowed_hosts: [${INSECURE_HOST}] }`);
  assert.notEqual(yaml, streams, 'testConfig still starts with its api block');
  app = await CamrelayProcess.start(yaml);
  const l = await app.waitLog((x) => x.msg === 'api tls listening', 5000);
  tlsPort = Number(String(l.listen).split(':').pop());
  base = await baseline(app);
  browser = await MicChromium.launch({ wav, hosts: [INSECURE_HOST] });
});

after(async () => {
  await browser?.close();
  if (app) assert.equal(await app.stop(), 0, 'graceful shutdown exits 0');
  await camera?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What the page shows of its player and talk button. */
interface PageState {
  phase: string;
  session: string;
  talk: { visible: boolean; state: string; pressed: string; text: string; title: string };
  status: string;
  note: { visible: boolean; text: string; title: string };
  producers: string;
  gum: number;
  secure: boolean;
}
const STATE = `(() => {
  const t = document.getElementById('talk');
  const n = document.getElementById('talk-note');
  return {
    phase: document.getElementById('video').dataset.phase ?? '',
    session: document.getElementById('video').dataset.session ?? '',
    talk: { visible: !t.hidden && t.offsetParent !== null, state: t.dataset.state ?? '', pressed: t.getAttribute('aria-pressed'), text: t.textContent, title: t.title },
    status: document.getElementById('talk-status').textContent,
    note: { visible: !n.hidden && n.offsetParent !== null, text: n.textContent, title: n.title },
    producers: document.querySelector('#producers tbody').textContent,
    gum: window.__gum ?? -1,
    secure: window.isSecureContext,
  };
})()`;
const state = (page: Page): Promise<PageState> => page.evaluate<PageState>(STATE);

async function waitState(page: Page, what: string, check: (s: PageState) => boolean, ms = 10000): Promise<PageState> {
  let last: PageState | undefined;
  return waitFor(what, async () => {
    last = await state(page);
    return check(last) ? last : undefined;
  }, ms, 50).catch((e: Error) => {
    throw new Error(`${e.message}; page: ${JSON.stringify(last)}`);
  });
}

// Chromium's microphone offering Opus only (its offer lists PCMA too, which a PCMA camera gets
// answered and passed through): camrelay's Opus → PCMA conversion, fed by a real browser.
const OPUS_ONLY = `(() => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (what, init) {
    const t = add.call(this, what, init);
    if (init && init.direction === 'sendonly') t.setCodecPreferences(RTCRtpSender.getCapabilities('audio').codecs.filter((c) => c.mimeType === 'audio/opus'));
    return t;
  };
})()`;

/** Opens the single view of `name` at `origin` and waits until it plays and its details show the running source. */
async function openPlaying(origin: string, name: string, initScripts: string[] = []): Promise<{ page: Page; s: PageState }> {
  const page = await browser.page();
  await page.addInitScript(COUNT_GUM);
  for (const script of initScripts) await page.addInitScript(script);
  await page.goto(`${origin}/stream.html?src=${encodeURIComponent(name)}`);
  const s = await waitState(page, `${name} plays and its details show the source running`, (x) => x.phase === 'playing' && x.session !== '' && /running/.test(x.producers), 15000);
  return { page, s };
}

/** Holds the mouse down on the talk button; returns the time of the press. */
async function mouseDownOnTalk(page: Page): Promise<number> {
  const box = await page.locator('#talk').boundingBox();
  assert.ok(box, 'the talk button has a box');
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  return Date.now();
}

/** The camera's decoded backchannel audio from byte `from` on, as samples. */
function heard(from: number): Int16Array {
  const b = camera.backchannelAudio().subarray(from);
  return new Int16Array(b.buffer, b.byteOffset, Math.floor(b.length / 2));
}

/**
 * camrelay back at the baseline: live objects, children, UDP sockets, and TCP sockets but those of
 * the browser's keep-alive connections to the API (the browser stays open across the tests).
 */
async function assertBaseline(what: string): Promise<void> {
  const now = async () => {
    const api = tcpConnections(app.pid).filter((c) => c.state === '01' && (c.localPort === app.port || c.localPort === tlsPort)).length;
    const sockets = app.sockets();
    return { children: app.children().length, sockets: { ...sockets, tcp: sockets.tcp - api }, objects: nonZero(await app.objects()) };
  };
  const want = { children: base.children, sockets: base.sockets, objects: base.objects };
  let last = await now();
  await waitFor(`${what}: back to baseline`, async () => JSON.stringify((last = await now())) === JSON.stringify(want), 5000).catch(() => undefined);
  assert.deepEqual(last, want, `${what}: children, sockets (without the browser's API connections) and live objects`);
}

async function noTalker(what: string): Promise<void> {
  await waitFor(`${what}: no talking consumer, camrelay_talkers 0`, async () => !(await view()).consumers.some((c) => c.talking) && (await talkers()) === 0, 3000, 50);
}

test('over HTTPS the talk button shows once the stream plays; no microphone is asked before the press; holding it sends the 1 kHz tone to the camera as PCMA, releasing ends the talk and leaves the viewing session as it was', { skip, timeout: 90000 }, async () => {
  const origin = `https://127.0.0.1:${tlsPort}`;
  const t0 = Date.now();
  const { page } = await openPlaying(origin, 'door');
  try {
    const shown = await waitState(page, 'talk button visible', (x) => x.talk.visible, 5000);
    console.log(`# talk button visible ${Date.now() - t0} ms after opening the page`);
    assert.equal(shown.secure, true);
    assert.equal(shown.talk.state, 'idle');
    assert.equal(shown.talk.pressed, 'false');
    assert.match(shown.talk.title, /Hold to talk.*click/);
    assert.match(shown.talk.title, /PCMA\/8000/);
    assert.equal(shown.note.visible, false);
    // Nothing asked, nothing sent, before the press.
    assert.equal(shown.gum, 0, 'getUserMedia not called before the press');
    assert.equal(camera.backchannelPackets(), 0, 'no backchannel packets before the press');
    const before = await view();
    assert.equal(before.producers[0]?.backchannel?.codec, 'audio:PCMA/8000');
    assert.deepEqual(before.consumers.map((c) => c.id), [shown.session], 'only the viewing session before the press');
    assert.equal(await talkers(), 0);

    const from = camera.backchannelAudio().length;
    const pressed = await mouseDownOnTalk(page);
    const talking = await waitState(page, 'talking', (x) => x.talk.state === 'talking', 10000);
    const connectMs = Date.now() - pressed;
    assert.equal(talking.talk.pressed, 'true');
    assert.match(talking.status, /talking to the camera \(release to stop\)/);
    assert.equal(talking.gum, 1, 'the microphone asked for on the press');
    const during = await view();
    const me = during.consumers.find((c) => c.talking);
    assert.ok(me && me.id !== shown.session, `a talking consumer of its own: ${JSON.stringify(during.consumers)}`);
    assert.ok(during.consumers.some((c) => c.id === shown.session && !c.talking), 'the viewing session is still there, not talking');
    assert.equal(await talkers(), 1);
    const micLine = me.medias?.find((m) => m.startsWith('audio, recvonly'));
    assert.ok(micLine, `the microphone's line among ${JSON.stringify(me.medias)}`);

    // 75 packets of 20 ms: 12000 samples at the camera (1.5 s of the tone).
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'stream-talking.png') });
    const ev = await camera.waitBackchannel(75, 15000, from + 75 * 320);
    assert.equal(ev.pt, 8, 'PCMA RTP at the camera');
    const heldMs = Date.now() - pressed;
    await page.mouse.up();
    assert.ok(heldMs > HOLD_MS, `held ${heldMs} ms: a hold, not a click`);
    const audio = heard(from);
    // The first 200 ms left out: the browser's audio processing settles.
    const report = assertTone(audio, { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000], skip: 1600, minRms: 100 });
    console.log(`# talk by holding: talking ${connectMs} ms after the press; camera got ${camera.backchannelPackets()} PCMA packets (${audio.length} samples, rms ${rms(audio).toFixed(0)}); tone ratio ${report.ratio.toFixed(0)}; mic line: ${micLine}`);

    const released = Date.now();
    const idle = await waitState(page, 'idle after the release', (x) => x.talk.state === 'idle', 3000);
    assert.equal(idle.talk.pressed, 'false');
    assert.equal(idle.status, '');
    await noTalker('after the release');
    console.log(`# talk ended ${Date.now() - released} ms after the release`);
    const after = await view();
    assert.deepEqual(after.consumers.map((c) => c.id), [shown.session], 'the viewing session alone again');
    assert.equal((await state(page)).phase, 'playing', 'the video plays on');
    const bc = camera.backchannelPackets();
    // The page gave the microphone back: a new press asks again (the browser remembers the permission).
    await mouseDownOnTalk(page);
    await waitState(page, 'talking again', (x) => x.talk.state === 'talking', 10000);
    await camera.waitBackchannel(bc + 10, 10000);
    // Held, then the pointer slides off the button (pointerleave): that ends the talk too.
    await page.mouse.move(5, 5, { steps: 2 });
    await waitState(page, 'idle once the pointer left the button', (x) => x.talk.state === 'idle', 3000);
    await page.mouse.up();
    assert.equal((await state(page)).gum, 2, 'one getUserMedia per talk');
    await noTalker('after the pointer left');
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await waitFor('camera connection gone after the page closed', () => camera.openConnections() === 0, 5000);
  await assertBaseline('after the talking page');
});

test('a click keeps talking until the next click, the keyboard (Space, Enter) does the same, and a second page pressing talk meanwhile shows the 409 "someone else is talking"', { skip, timeout: 90000 }, async () => {
  const origin = `https://127.0.0.1:${tlsPort}`;
  const { page: first } = await openPlaying(origin, 'door');
  const { page: second } = await openPlaying(origin, 'door');
  try {
    await waitState(first, 'talk button on the first page', (x) => x.talk.visible, 5000);
    await waitState(second, 'talk button on the second page', (x) => x.talk.visible, 5000);
    // A click: down and up at once.
    await first.locator('#talk').click();
    const latched = await waitState(first, 'first page talking after a click', (x) => x.talk.state === 'talking', 10000);
    assert.match(latched.status, /click talk again to stop/);
    assert.equal(await talkers(), 1);
    const bc = camera.backchannelPackets();
    await camera.waitBackchannel(bc + 25, 10000);
    assert.equal((await state(first)).talk.state, 'talking', 'still talking long after the click');

    // The second page presses while the first talks: the server's refusal, in words.
    await mouseDownOnTalk(second);
    const refused = await waitState(second, 'the 409 on the second page', (x) => x.talk.state === 'error', 10000);
    await second.mouse.up();
    assert.match(refused.status, /talk failed: HTTP 409: .*someone else is talking \(one talker per camera\)/);
    assert.equal((await state(second)).talk.state, 'error', 'the error stays shown after the release');
    assert.equal((await state(first)).talk.state, 'talking', 'the first page talks on');
    console.log(`# second page: ${refused.status}`);

    await first.locator('#talk').click();
    await waitState(first, 'first page idle after the second click', (x) => x.talk.state === 'idle', 3000);
    await noTalker('after the second click');

    // The keyboard on the second page: Space pressed and let go is a click, Enter the next one.
    await second.locator('#talk').focus();
    await second.keyboard.press(' ');
    const keyed = await waitState(second, 'second page talking after Space', (x) => x.talk.state === 'talking', 10000);
    assert.match(keyed.status, /click talk again to stop/);
    await camera.waitBackchannel(camera.backchannelPackets() + 10, 10000);
    await second.keyboard.press('Enter');
    await waitState(second, 'second page idle after Enter', (x) => x.talk.state === 'idle', 3000);
    await noTalker('after Enter');
    // Space held is push to talk too.
    await second.keyboard.down(' ');
    await waitState(second, 'talking while Space is held', (x) => x.talk.state === 'talking', 10000);
    await camera.waitBackchannel(camera.backchannelPackets() + 10, 10000);
    await second.keyboard.up(' ');
    await waitState(second, 'idle when Space is let go', (x) => x.talk.state === 'idle', 3000);
    await noTalker('after Space was let go');
  } finally {
    await first.close({ runBeforeUnload: true });
    await second.close({ runBeforeUnload: true });
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
});

test('a microphone offering only Opus is converted to the camera\'s PCMA and still decodes to the 1 kHz tone', { skip, timeout: 60000 }, async () => {
  const { page } = await openPlaying(`https://127.0.0.1:${tlsPort}`, 'door', [OPUS_ONLY]);
  try {
    await waitState(page, 'talk button', (x) => x.talk.visible, 5000);
    const from = camera.backchannelAudio().length;
    await mouseDownOnTalk(page);
    await waitState(page, 'talking', (x) => x.talk.state === 'talking', 10000);
    const me = (await view()).consumers.find((c) => c.talking);
    const micLine = me?.medias?.find((m) => m.startsWith('audio, recvonly'));
    assert.match(micLine ?? '', /^audio, recvonly, audio:OPUS\/48000(\/2)? .*camera's audio:PCMA\/8000/, JSON.stringify(me?.medias));
    await camera.waitBackchannel(camera.backchannelPackets() + 75, 15000, from + 75 * 320);
    await page.mouse.up();
    const report = assertTone(heard(from), { sampleRate: 8000, frequency: 1000, others: [440, 2000, 3000], skip: 1600, minRms: 100 });
    console.log(`# talk with Opus: tone ratio ${report.ratio.toFixed(0)}; mic line: ${micLine}`);
    await noTalker('after the release');
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
});

test('closing the page while talking ends the talk at once (the pagehide DELETE)', { skip, timeout: 60000 }, async () => {
  const { page } = await openPlaying(`https://127.0.0.1:${tlsPort}`, 'door');
  await waitState(page, 'talk button', (x) => x.talk.visible, 5000);
  await page.locator('#talk').click();
  await waitState(page, 'talking', (x) => x.talk.state === 'talking', 10000);
  assert.equal(await talkers(), 1);
  const t0 = Date.now();
  await page.close({ runBeforeUnload: true });
  // Well before the test config's disconnect timeout (2 s): the DELETE, not the timeout.
  await waitFor('no talker after the page closed', async () => (await talkers()) === 0, 1500, 20);
  console.log(`# talk ended ${Date.now() - t0} ms after the page closed`);
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
  await assertBaseline('after the closed page');
});

test('no talk button on a stream without a backchannel, nor on a page that is no secure context (http:// on a name that is not localhost), where a note says why', { skip, timeout: 60000 }, async () => {
  const { page: plain, s } = await openPlaying(`https://127.0.0.1:${tlsPort}`, 'plain');
  try {
    // The details shown come from the same /api/streams answer that would have shown the button.
    assert.equal(s.talk.visible, false, 'no talk button on a stream without a backchannel');
    assert.equal(s.note.visible, false);
    assert.equal(s.gum, 0);
  } finally {
    await plain.close({ runBeforeUnload: true });
  }
  const { page } = await openPlaying(`http://${INSECURE_HOST}:${app.port}`, 'door');
  try {
    const x = await waitState(page, 'the note on an insecure page', (y) => y.note.visible, 5000);
    assert.equal(x.secure, false, 'http://camera.test is no secure context');
    assert.equal(x.talk.visible, false, 'no talk button');
    assert.match(x.note.text, /talk unavailable: not a secure context/);
    assert.match(x.note.title, /backchannel \(audio:PCMA\/8000\).*HTTPS/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'stream-talk-insecure.png') });
    console.log(`# insecure page note: "${x.note.text}" (title: ${x.note.title})`);
  } finally {
    await page.close({ runBeforeUnload: true });
  }
  await waitFor('camera connection gone', () => camera.openConnections() === 0, 5000);
});
