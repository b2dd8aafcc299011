// ConnectingTable's places and queue (webrtc.max_connecting_per_client), without sessions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectingTable } from '../../src/api/connecting.js';
import { HttpError } from '../../src/api/http-error.js';

test('places per address; beyond them offers wait and get a freed place in order, or time out', { timeout: 5000 }, async () => {
  const t = new ConnectingTable(2, 200);
  const never = new AbortController().signal;
  const a = await t.acquire('10.0.0.1', never);
  const b = await t.acquire('::ffff:10.0.0.1', never);
  assert.equal(t.count('10.0.0.1'), 2);
  // Another address is not affected.
  (await t.acquire('10.0.0.2', never))();
  const order: string[] = [];
  const w1 = t.acquire('10.0.0.1', never).then((r) => (order.push('w1'), r));
  const w2 = t.acquire('10.0.0.1', never).then((r) => (order.push('w2'), r));
  for (let i = 0; i < 6; i++) void t.acquire('10.0.0.1', never).catch(() => undefined);
  a();
  a(); // idempotent: gives one place only
  const r1 = await w1;
  assert.deepEqual(order, ['w1']);
  assert.equal(t.count('10.0.0.1'), 2);
  b();
  const r2 = await w2;
  assert.deepEqual(order, ['w1', 'w2']);
  // Freed places go to the six still waiting, in order; they never give them back, so a
  // newcomer waits maxWaitMs for nothing and is refused.
  r1();
  r2();
  await assert.rejects(t.acquire('10.0.0.1', never), (e: unknown) => e instanceof HttpError && e.status === 503 && /max_connecting_per_client: 2/.test(e.message));
});

test('a waiting offer whose viewer leaves gives up its turn', { timeout: 5000 }, async () => {
  const t = new ConnectingTable(1, 5000);
  const held = await t.acquire('c', new AbortController().signal);
  const ac = new AbortController();
  const waiting = t.acquire('c', ac.signal);
  ac.abort(new Error('viewer left'));
  await assert.rejects(waiting, /viewer left/);
  held();
  assert.equal(t.count('c'), 0);
  await assert.rejects(
    (async () => {
      const t2 = new ConnectingTable(1, 50);
      await t2.acquire('d', new AbortController().signal);
      await t2.acquire('d', new AbortController().signal);
    })(),
    /max_connecting_per_client: 1/,
  );
});
