// Close codes and the metric labels users scrape: the labels stay what they were before the codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_CODES, CLOSE_MESSAGES, CloseReason, closeCodeOf } from '../../src/core/close-reason.js';
import { StreamClosedError } from '../../src/core/errors.js';
import { CLOSE_REASONS, closeReasonLabel } from '../../src/api/metrics.js';

test('each code has its message, and the messages camrelay logged before stay', { timeout: 5000 }, () => {
  for (const c of CLOSE_CODES) assert.equal(new CloseReason(c).message, CLOSE_MESSAGES[c]);
  assert.equal(new CloseReason('client').message, 'closed by client');
  assert.equal(new CloseReason('shutdown').message, 'server shutdown');
  assert.equal(new CloseReason('viewer_left').message, 'viewer left before the answer');
  assert.equal(new CloseReason('slow_consumer', 'viewer cannot keep up: send queue full').message, 'viewer cannot keep up: send queue full');
});

test('the code of a close: its own, stream_closed for a stream closing, else error', { timeout: 5000 }, () => {
  assert.equal(closeCodeOf(new CloseReason('replaced')), 'replaced');
  assert.equal(closeCodeOf(new StreamClosedError('cam', 'stream closed')), 'stream_closed');
  assert.equal(closeCodeOf(new Error('connect timeout')), 'error', 'free text is never classified');
  assert.equal(closeCodeOf(undefined), 'error');
});

test('camrelay_webrtc_sessions_closed_total keeps its label values', { timeout: 5000 }, () => {
  assert.deepEqual([...CLOSE_REASONS], ['client', 'disconnect_timeout', 'connect_timeout', 'failed', 'server_shutdown', 'replaced', 'slow_consumer', 'other']);
  const expected: Record<string, string> = {
    client: 'client',
    peer_closed: 'client',
    connect_timeout: 'connect_timeout',
    disconnect_timeout: 'disconnect_timeout',
    peer_failed: 'failed',
    peer_disconnected: 'failed',
    shutdown: 'server_shutdown',
    replaced: 'replaced',
    slow_consumer: 'slow_consumer',
    viewer_left: 'other',
    stream_closed: 'other',
    error: 'other',
  };
  assert.deepEqual(Object.fromEntries(CLOSE_CODES.map((c) => [c, closeReasonLabel(c)])), expected);
  assert.equal(closeReasonLabel(undefined), 'other');
});
