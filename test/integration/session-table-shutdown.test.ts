// A WebRTC session belongs to the SessionTable from construction: a shutdown while its stream is
// still starting closes it, waits for it, and leaves no object, source or socket behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stream } from '../../src/core/stream.js';
import { liveObjects } from '../../src/core/objects.js';
import { SessionTable } from '../../src/api/sessions.js';
import { WebRtcSession } from '../../src/outputs/webrtc/session.js';
import type { WebRtcSettings } from '../../src/outputs/webrtc/settings.js';
import { selectBackend, type BackendChoice, type SelectedBackend } from '../../src/outputs/webrtc/select-backend.js';
import { ScriptedSource } from '../helpers/fake-parts.js';
import { socketInodes } from '../helpers/proc-sockets.js';
import { waitFor } from '../helpers/wait.js';
import { Viewer } from '../helpers/werift-viewer.js';

let selected: SelectedBackend | undefined;
before(async () => {
  selected = await selectBackend((process.env.CAMRELAY_TEST_WEBRTC_BACKEND ?? 'auto') as BackendChoice, { listen: '127.0.0.1:0', loopbackOnly: true });
});
after(async () => {
  await selected?.close();
});

const settings: WebRtcSettings = { candidates: [], iceServers: [], timeouts: { connect: 5000, disconnect: 5000 }, loopbackOnly: true };

function counts(): Record<string, number> {
  return Object.fromEntries(Object.entries(liveObjects()).filter(([, n]) => n !== 0));
}

test('shutdown while a session is still opening closes it, awaits it and leaks nothing', { timeout: 20000 }, async () => {
  const viewer = new Viewer();
  const offer = await viewer.offer();
  const base = counts();
  const sockets = socketInodes('self').size;
  ScriptedSource.all = [];
  // The source never finishes starting: the session stays inside answer() until the shutdown.
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 15000, backoff: { base: 100, max: 1000, stableAfter: 1000 } }, (url) => new ScriptedSource(url, { outcome: 'ok' }));
  const table = new SessionTable<WebRtcSession>();
  const signal = new AbortController().signal;
  const opening = table.open({
    remoteAddr: '127.0.0.1',
    signal,
    create: () => WebRtcSession.create(stream, offer, settings, { remoteAddr: '127.0.0.1' }, selected!.backend),
    setUp: (s) => s.answer(),
  });
  const source = await waitFor('the source starting', () => ScriptedSource.all[0], 5000);
  assert.equal(table.load, 1, 'the opening session counts against the limit');
  assert.equal(table.size, 0, 'it is not open yet');
  assert.equal(liveObjects().WebRtcSession, (base.WebRtcSession ?? 0) + 1);

  table.close();
  await assert.rejects(opening, /closed during setup: server shutdown/);
  await table.done;
  assert.equal(table.load, 0);
  assert.equal(liveObjects().WebRtcSession ?? 0, base.WebRtcSession ?? 0, 'the session is released by the table, not left to the stream');
  await waitFor('the source stopped', () => source.closed, 5000);
  assert.equal(stream.consumers.length, 0);

  stream.close();
  await stream.done;
  await viewer.close();
  assert.deepEqual(counts(), base);
  await waitFor('sockets back to baseline', () => socketInodes('self').size <= sockets || undefined, 5000);
});
