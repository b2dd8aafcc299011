// The soak's idle-CPU window leaves out the seconds in which V8 ran a major GC by itself, and no more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withoutOwnGcs } from '../../bench/soak/idle-window.js';

const T0 = 1_000_000;
const window = (slices: number[]) => ({
  share: slices.reduce((a, b) => a + b, 0) / slices.length,
  slices,
  spans: slices.map((_, i): [number, number] => [T0 + i * 1000, T0 + (i + 1) * 1000]),
});

test('idle window: the seconds of V8\'s own major GCs are left out; a steady cost, or GCs everywhere, still count in full', () => {
  // The CI run that failed: a memory-reducer burst in seconds 3 and 4.
  const burst = window([0.01, 0.0099, 0.0699, 0.1097, 0.0101]);
  const r = withoutOwnGcs(burst, [{ at: T0 + 2600, ms: 8 }, { at: T0 + 3300, ms: 9 }, { at: T0 + 3900, ms: 2 }]);
  assert.deepEqual(r.leftOut, [2, 3]);
  assert.ok(Math.abs(r.share - 0.01) < 1e-9, `${r.share}`);
  assert.deepEqual(r.slices, burst.slices, 'every second is still shown');
  // Its marking began before the pause: a GC 100 ms into a second takes the one before too.
  assert.deepEqual(withoutOwnGcs(burst, [{ at: T0 + 2100, ms: 5 }]).leftOut, [1, 2]);
  // No GC: the whole window.
  assert.deepEqual(withoutOwnGcs(burst, []), { share: burst.share, slices: burst.slices, leftOut: [] });
  // GCs in more than two seconds are work of their own (something allocating all along): nothing is left out.
  const steady = window([0.05, 0.05, 0.05, 0.05, 0.05]);
  const many = withoutOwnGcs(steady, [0, 1, 2].map((i) => ({ at: T0 + i * 1000 + 500, ms: 5 })));
  assert.deepEqual(many.leftOut, []);
  assert.equal(many.share, steady.share);
  // A GC outside the window leaves it whole.
  assert.deepEqual(withoutOwnGcs(steady, [{ at: T0 + 9000, ms: 5 }]).leftOut, []);
});
