// The last resort's verdicts (src/core/uncaught.ts): carry on, except after an exception from a
// close path or more than MAX_IN_WINDOW uncaught errors within WINDOW_MS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_IN_WINDOW, UncaughtPolicy, WINDOW_MS, fromClosePath } from '../../src/core/uncaught.js';

test('a storm of uncaught errors ends the process; the same number spread out does not', { timeout: 5000 }, () => {
  const storm = new UncaughtPolicy();
  for (let i = 0; i < MAX_IN_WINDOW; i++) assert.equal(storm.record('rejection', new Error('x'), 1000 + i).exit, false);
  const v = storm.record('rejection', new Error('x'), 1000 + MAX_IN_WINDOW);
  assert.equal(v.exit, true);
  assert.match(v.exit ? v.why : '', /more than 20 uncaught errors within 60 s/);
  const spread = new UncaughtPolicy();
  for (let i = 0; i < 3 * MAX_IN_WINDOW; i++) assert.equal(spread.record('exception', new Error('x'), i * (WINDOW_MS / MAX_IN_WINDOW + 1)).exit, false);
});

test('an exception thrown from a close path is "state unknown"; the word in a message is not', { timeout: 5000 }, () => {
  const closing = (() => {
    class Thing {
      close(): never {
        throw new Error('while closing');
      }
    }
    try {
      new Thing().close();
    } catch (e) {
      return e;
    }
  })();
  assert.equal(fromClosePath(closing), true);
  assert.equal(fromClosePath(new Error('connection close requested')), false);
  assert.equal(new UncaughtPolicy().record('exception', closing).exit, true);
  // A rejection from a close path is a promise someone forgot, not a half-done release.
  assert.equal(new UncaughtPolicy().record('rejection', closing).exit, false);
});
