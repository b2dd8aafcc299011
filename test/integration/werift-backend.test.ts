import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeriftPeer } from '../../src/outputs/webrtc/werift-backend.js';
import { Viewer } from '../helpers/werift-viewer.js';

const settings = (iceServers: { urls: string[] }[]) => ({ candidates: [], iceServers, timeouts: { connect: 5000, disconnect: 5000 }, loopbackOnly: true });

test('with no STUN server configured, the ICE agents ask none (no public STUN fallback)', { timeout: 10000 }, async () => {
  const viewer = new Viewer();
  const offer = await viewer.offer();
  const bare = new WeriftPeer(settings([]));
  const withStun = new WeriftPeer(settings([{ urls: ['stun:127.0.0.1:3478'] }]));
  try {
    await bare.setRemoteOffer(offer);
    await withStun.setRemoteOffer(offer);
    assert.ok(bare.stunServers().length > 0);
    assert.deepEqual(bare.stunServers().filter((x) => x !== undefined), []);
    assert.deepEqual(withStun.stunServers()[0], ['127.0.0.1', 3478]);
  } finally {
    bare.close();
    withStun.close();
    await Promise.all([bare.done, withStun.done]);
    await viewer.close();
  }
});
