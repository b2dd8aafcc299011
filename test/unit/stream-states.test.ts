// The table of a Stream's state transitions (core/stream-states.ts): what it allows, that an
// illegal change throws under the test runner and is only logged elsewhere, and that the real
// state machine stays inside the table through its whole life.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Stream, type StreamState } from '../../src/core/stream.js';
import { SourceError } from '../../src/core/errors.js';
import { setRootLogger } from '../../src/core/log.js';
import { checkTransition, IllegalTransitionError, isAllowed, strictTransitions, TRANSITIONS } from '../../src/core/stream-states.js';
import { ScriptedSource, TestViewer } from '../helpers/fake-parts.js';
import { waitFor } from '../helpers/wait.js';

setRootLogger(pino({ level: 'silent' }));

const STATES: StreamState[] = ['idle', 'starting', 'live', 'backoff', 'stopping'];

test('the table: the documented path and its side roads, nothing else', { timeout: 5000 }, () => {
  const allowed = STATES.flatMap((from) => STATES.filter((to) => isAllowed(from, to)).map((to) => `${from}→${to}`));
  assert.deepEqual(allowed.sort(), [
    'backoff→idle', 'backoff→starting', 'backoff→stopping',
    'idle→starting',
    'live→idle', 'live→starting', 'live→stopping',
    'starting→idle', 'starting→live', 'starting→stopping',
    'stopping→backoff', 'stopping→idle', 'stopping→starting',
  ].sort());
  assert.equal(isAllowed('idle', 'live'), false, 'nothing goes live without starting');
  assert.equal(isAllowed('backoff', 'live'), false, 'a retry starts before it is live');
  for (const s of STATES) assert.equal(TRANSITIONS[s].includes(s), false, `${s} → ${s} is no transition`);
});

test('under node --test an illegal transition throws; elsewhere it is logged as an error', { timeout: 5000 }, () => {
  assert.equal(strictTransitions(), true, 'node --test sets NODE_TEST_CONTEXT in this process');
  assert.equal(strictTransitions({}), false);
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  assert.throws(() => checkTransition('cam', 'idle', 'live', logger), (e) => e instanceof IllegalTransitionError && /idle → live/.test(e.message));
  assert.equal(lines.length, 0);
  assert.doesNotThrow(() => checkTransition('cam', 'idle', 'live', logger, false));
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 50, 'logged at error level');
  assert.match(lines[0]!.msg, /stream "cam": illegal state transition idle → live/);
  assert.doesNotThrow(() => checkTransition('cam', 'idle', 'starting', logger));
});

test('a stream going through start, failure, backoff, reconnect and stop stays inside the table', { timeout: 10000 }, async () => {
  let n = 0;
  const made: ScriptedSource[] = [];
  const stream = new Stream('cam', ['test://cam'], { idleTimeout: 0, startTimeout: 3000, backoff: { base: 10, max: 40, stableAfter: 10_000 } }, (url) => {
    // The second start fails: the stream backs off and starts again.
    const s = new ScriptedSource(url, n++ === 1 ? { outcome: new SourceError('refused'), after: 1 } : { outcome: 'ok', after: 1 });
    made.push(s);
    return s;
  });
  const seen: StreamState[] = ['idle'];
  stream.on('state', (s) => seen.push(s));
  const v = new TestViewer('a');
  await stream.attach(v);
  made[0]!.fail();
  await waitFor('live again', () => stream.state === 'live' && made.length === 3, 5000);
  v.close();
  await waitFor('idle', () => stream.state === 'idle', 2000);
  for (let i = 1; i < seen.length; i++) assert.ok(isAllowed(seen[i - 1]!, seen[i]!), `${seen[i - 1]} → ${seen[i]}`);
  assert.deepEqual(seen, ['idle', 'starting', 'live', 'stopping', 'backoff', 'starting', 'stopping', 'backoff', 'starting', 'live', 'stopping', 'idle']);
  stream.close();
});
