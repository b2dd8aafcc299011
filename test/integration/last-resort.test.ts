// The last-resort handlers of src/main.ts in a real camrelay. What throws is put there by a
// preload module (node --import, test-side only): each SIGUSR2 makes the next fault, as a bug in
// some handler would. An unhandled rejection and an exception from a timer are logged with their
// stack and counted, and camrelay keeps serving; an exception thrown from a close path ends it
// with exit code 70, for the supervisor to restart it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { request } from '../helpers/http.js';
import { metric, scrape } from '../helpers/metrics-scrape.js';
import { waitFor } from '../helpers/wait.js';

const FAULTS = `
let n = 0;
process.on('SIGUSR2', () => {
  n++;
  if (n === 1) Promise.reject(new Error('fault one: a promise nobody awaited'));
  else if (n === 2) setImmediate(() => { throw new Error('fault two: thrown from a timer'); });
  else setImmediate(function close() { throw new Error('fault three: thrown while closing'); });
});`;
const PRELOAD = `data:text/javascript,${encodeURIComponent(FAULTS)}`;

test('uncaught errors are logged with their stack and counted; camrelay stays up unless one comes from a close path', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: 'ffmpeg:virtual?video=testsrc2&size=320x180#video=h264' }), { nodeFlags: ['--import', PRELOAD] });
  try {
    const before = await scrape(app);
    assert.equal(metric(before, 'camrelay_uncaught_errors_total', { kind: 'rejection' }), 0);

    process.kill(app.pid, 'SIGUSR2');
    const one = await app.waitLog((l) => l.msg === 'uncaught rejection (a bug; camrelay carries on)', 5000);
    assert.equal(one.err, 'fault one: a promise nobody awaited');
    assert.match(String(one.stack), /at process\.<anonymous> \(data:text\/javascript/);
    assert.equal((await request(`${app.base}/api`)).status, 200);

    process.kill(app.pid, 'SIGUSR2');
    const two = await app.waitLog((l) => l.msg === 'uncaught exception (a bug; camrelay carries on)', 5000);
    assert.equal(two.err, 'fault two: thrown from a timer');
    const after = await scrape(app);
    assert.equal(metric(after, 'camrelay_uncaught_errors_total', { kind: 'rejection' }), 1);
    assert.equal(metric(after, 'camrelay_uncaught_errors_total', { kind: 'exception' }), 1);
    assert.equal((await request(`${app.base}/api/streams`)).status, 200);

    process.kill(app.pid, 'SIGUSR2');
    const three = await app.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('uncaught exception: exiting'), 5000);
    assert.equal(three.exiting, true);
    await waitFor('camrelay exited', () => app.child.exitCode !== null, 5000);
    assert.equal(app.child.exitCode, 70);
  } finally {
    await app.stop();
  }
});
