// SessionTable.open, the one way HTTP and WebSocket offers become sessions: limits, the opening
// state, a viewer leaving, and shutdown, with stand-in sessions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Owned } from '../../src/core/owned.js';
import { CloseReason, closeCodeOf } from '../../src/core/close-reason.js';
import { SessionTable } from '../../src/api/sessions.js';
import { HttpError } from '../../src/api/http-error.js';

let n = 0;
class FakeSession extends Owned {
  readonly id = `s${++n}`;
  reason: unknown;
  constructor() {
    super('FakeSession');
  }
  info(): { state: string } {
    return { state: 'new' };
  }
  protected onClose(reason?: Error): void {
    this.reason = reason;
  }
}

/** A set-up that waits until the test lets it go (or the session closes: then it rejects). */
function gate(): { setUp: (s: FakeSession) => Promise<string>; go: () => void } {
  let go = () => {};
  return {
    go: () => go(),
    setUp: (s) =>
      new Promise<string>((resolve, reject) => {
        go = () => resolve('answer');
        s.once('close', () => reject(new Error('closed during setup')));
      }),
  };
}

test('a session is held as opening from construction and open once answered', { timeout: 5000 }, async () => {
  const t = new SessionTable<FakeSession>();
  const g = gate();
  let made: FakeSession | undefined;
  const p = t.open({ remoteAddr: undefined, signal: new AbortController().signal, create: () => (made = new FakeSession()), setUp: g.setUp });
  await Promise.resolve();
  assert.ok(made);
  assert.equal(t.load, 1);
  assert.equal(t.size, 0);
  assert.equal(t.get(made.id), undefined, 'not found by id while opening');
  const added: FakeSession[] = [];
  t.on('add', (s: FakeSession) => added.push(s));
  g.go();
  const r = await p;
  assert.equal(r?.answer, 'answer');
  assert.deepEqual(added, [made]);
  assert.equal(t.get(made.id), made);
  made.close(new CloseReason('client'));
  assert.equal(t.load, 0);
  t.close();
});

test('max_sessions counts sessions still opening; the refusal is told', { timeout: 5000 }, async () => {
  let refused = 0;
  const t = new SessionTable<FakeSession>({ maxSessions: 1, onRefused: () => refused++ });
  const g = gate();
  const first = t.open({ remoteAddr: undefined, signal: new AbortController().signal, create: () => new FakeSession(), setUp: g.setUp });
  let created = 0;
  await assert.rejects(
    t.open({ remoteAddr: undefined, signal: new AbortController().signal, create: () => (created++, new FakeSession()), setUp: g.setUp }),
    (e: unknown) => e instanceof HttpError && e.status === 503 && /too many sessions/.test(e.message),
  );
  assert.equal(created, 0, 'nothing is made beyond the limit');
  assert.equal(refused, 1);
  g.go();
  await first;
  t.close();
  await t.done;
});

test('a viewer who left before the answer gets no session, and the session is closed', { timeout: 5000 }, async () => {
  const t = new SessionTable<FakeSession>();
  const ac = new AbortController();
  let made: FakeSession | undefined;
  const p = t.open({ remoteAddr: undefined, signal: ac.signal, create: () => (made = new FakeSession()), setUp: async () => (ac.abort(), 'answer') });
  assert.equal(await p, undefined);
  assert.equal(made?.closed, true);
  assert.equal(closeCodeOf(made?.reason), 'viewer_left');
  assert.equal(t.load, 0);
  t.close();
});

test('closing the table closes sessions still opening and waits for them; later opens are refused', { timeout: 5000 }, async () => {
  const t = new SessionTable<FakeSession>();
  const g = gate();
  let made: FakeSession | undefined;
  const p = t.open({ remoteAddr: undefined, signal: new AbortController().signal, create: () => (made = new FakeSession()), setUp: g.setUp });
  await Promise.resolve();
  t.close();
  assert.equal(made?.closed, true);
  assert.equal(closeCodeOf(made?.reason), 'shutdown');
  assert.equal((made?.reason as Error).message, 'server shutdown');
  await assert.rejects(p, /closed during setup/);
  await t.done;
  assert.equal(t.load, 0);
  await assert.rejects(
    t.open({ remoteAddr: undefined, signal: new AbortController().signal, create: () => new FakeSession(), setUp: g.setUp }),
    (e: unknown) => e instanceof HttpError && e.status === 503,
  );
});
