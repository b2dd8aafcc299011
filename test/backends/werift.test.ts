// The WebRTC tests that run camrelay as a process, again on werift: the main suite runs them on
// webrtc.backend 'auto' (node-datachannel where it loads). testConfig() puts the backend named by
// CAMRELAY_TEST_WEBRTC_BACKEND in every config; each file runs in a suite of its own, so that its
// before/after hooks stay its own. (webrtc-session.test.ts drives WebRtcSession directly, on
// werift, and is not repeated here.)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';

process.env.CAMRELAY_TEST_WEBRTC_BACKEND = 'werift';

const FILES = ['foundation', 'ws-signalling', 'home-assistant', 'webrtc-session'];

test('the camrelays of this file run werift', { timeout: 30000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({}));
  try {
    const l = await app.waitLog((x) => x.msg === 'webrtc backend', 1000);
    assert.equal(l.backend, 'werift');
    assert.equal(l.reason, 'webrtc.backend: werift');
  } finally {
    assert.equal(await app.stop(), 0);
  }
});

for (const f of FILES) {
  await describe(`${f} on werift`, async () => {
    await import(`../integration/${f}.test.js`);
  });
}
