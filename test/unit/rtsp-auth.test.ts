import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AuthAnswerer, AuthChecker, parseChallenges } from '../../src/rtsp/auth.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

test('Digest without qop matches RFC 2617 by hand', () => {
  const [c] = parseChallenges(['Digest realm="cam", nonce="abc123"']);
  const h = new AuthAnswerer({ username: 'u', password: 'p' }, c!).header('DESCRIBE', 'rtsp://cam/s');
  const want = md5(`${md5('u:cam:p')}:abc123:${md5('DESCRIBE:rtsp://cam/s')}`);
  assert.match(h, new RegExp(`^Digest username="u", realm="cam", nonce="abc123", uri="rtsp://cam/s", response="${want}"$`));
});

test('Digest is preferred over Basic, and qop=auth adds nc/cnonce', () => {
  const cs = parseChallenges(['Basic realm="x"', 'Digest realm="r", nonce="n", qop="auth,auth-int", opaque="o"']);
  assert.equal(cs[0]!.scheme, 'digest');
  const a = new AuthAnswerer({ username: 'u', password: 'p' }, cs[0]!);
  const h1 = a.header('OPTIONS', '*');
  const h2 = a.header('OPTIONS', '*');
  assert.match(h1, /qop=auth, nc=00000001, cnonce="[0-9a-f]{16}", opaque="o"/);
  assert.match(h2, /nc=00000002/);
});

test('our server accepts its own Digest and Basic answers and refuses wrong ones', () => {
  const server = new AuthChecker({ username: 'admin', password: 's3cret' });
  const challenges = parseChallenges(server.challenges('c1'));
  for (const c of challenges) {
    const good = new AuthAnswerer({ username: 'admin', password: 's3cret' }, c);
    const bad = new AuthAnswerer({ username: 'admin', password: 'nope' }, c).header('PLAY', 'rtsp://h/x');
    assert.equal(server.check('PLAY', 'rtsp://h/x', good.header('PLAY', 'rtsp://h/x'), 'c1').ok, true, c.scheme);
    assert.equal(server.check('PLAY', 'rtsp://h/x', bad, 'c1').ok, false, c.scheme);
    const other = c.scheme === 'digest' ? good.header('PLAY', 'rtsp://h/x') : 'Basic !!';
    assert.equal(server.check('SETUP', 'rtsp://h/x', other, 'c1').ok, false, `${c.scheme}: other method or garbage`);
  }
  assert.equal(server.check('PLAY', 'rtsp://h/x', undefined, 'c1').ok, false);
  assert.equal(server.check('PLAY', 'rtsp://h/x', 'Bearer x', 'c1').ok, false);
});

// Issue 12, item 6: one nonce for the life of the process, uri unchecked and nc untracked let a
// captured header replay and a digest for one path authorise another.
const digestOf = (server: AuthChecker, owner: string) => {
  const c = parseChallenges(server.challenges(owner)).find((x) => x.scheme === 'digest')!;
  return { challenge: c, answerer: new AuthAnswerer({ username: 'admin', password: 's3cret' }, c) };
};

test('every challenge has a fresh nonce, with qop=auth', () => {
  const server = new AuthChecker({ username: 'admin', password: 's3cret' });
  const a = digestOf(server, 'c1').challenge.params;
  const b = digestOf(server, 'c1').challenge.params;
  assert.match(a.nonce!, /^[0-9a-f]{32}$/);
  assert.notEqual(a.nonce, b.nonce);
  assert.equal(a.qop, 'auth');
});

test('a digest is valid only on the connection it was challenged on', () => {
  const server = new AuthChecker({ username: 'admin', password: 's3cret' });
  const { answerer } = digestOf(server, 'c1');
  const captured = answerer.header('DESCRIBE', 'rtsp://h/cam');
  assert.deepEqual(server.check('DESCRIBE', 'rtsp://h/cam', captured, 'c2'), { ok: false, stale: true, why: 'nonce issued to another connection' });
  assert.equal(server.check('DESCRIBE', 'rtsp://h/cam', captured, 'c1').ok, true);
});

test("a digest's uri must be the request's: one computed for path A does not authorise path B", () => {
  const server = new AuthChecker({ username: 'admin', password: 's3cret' });
  const { answerer } = digestOf(server, 'c1');
  const forA = answerer.header('ANNOUNCE', 'rtsp://h/a');
  const r = server.check('ANNOUNCE', 'rtsp://h/b', forA, 'c1');
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.why : '', /uri "rtsp:\/\/h\/a" is not the request's/);
  // The same resource written as a path, or with a trailing slash, is the same URI.
  assert.equal(server.check('PLAY', 'rtsp://h/a/', answerer.header('PLAY', '/a'), 'c1').ok, true);
});

test('with qop=auth the nonce count must grow: a replayed or lower nc is refused', () => {
  const server = new AuthChecker({ username: 'admin', password: 's3cret' });
  const { answerer } = digestOf(server, 'c1');
  const first = answerer.header('PLAY', 'rtsp://h/x');
  const second = answerer.header('PLAY', 'rtsp://h/x');
  assert.equal(server.check('PLAY', 'rtsp://h/x', second, 'c1').ok, true);
  const again = server.check('PLAY', 'rtsp://h/x', second, 'c1');
  assert.equal(again.ok, false);
  assert.match(!again.ok ? again.why : '', /nonce count 00000002 does not grow/);
  assert.equal(server.check('PLAY', 'rtsp://h/x', first, 'c1').ok, false, 'a lower count');
  assert.equal(server.check('PLAY', 'rtsp://h/x', answerer.header('PLAY', 'rtsp://h/x'), 'c1').ok, true, 'the next count');
});

test('an expired nonce is stale (the client retries without asking its user), and the table is bounded', () => {
  let now = 0;
  const server = new AuthChecker({ username: 'admin', password: 's3cret' }, { nonceTtlMs: 1000, maxNonces: 8, now: () => now });
  const { answerer } = digestOf(server, 'c1');
  // Each accepted use extends the nonce's life: keep-alives every 600 ms keep it valid past 1 s.
  for (now = 600; now <= 1800; now += 600) assert.equal(server.check('PLAY', 'rtsp://h/x', answerer.header('PLAY', 'rtsp://h/x'), 'c1').ok, true, `at ${now} ms`);
  now += 1001;
  assert.deepEqual(server.check('PLAY', 'rtsp://h/x', answerer.header('PLAY', 'rtsp://h/x'), 'c1'), { ok: false, stale: true, why: 'nonce expired' });
  assert.match(server.challenges('c1', true)[0]!, /, stale=true$/);
  // A wrong password is never stale, whatever the nonce.
  const wrong = new AuthAnswerer({ username: 'admin', password: 'x' }, digestOf(server, 'c1').challenge).header('PLAY', 'rtsp://h/x');
  assert.equal((server.check('PLAY', 'rtsp://h/x', wrong, 'c1') as { stale: boolean }).stale, false);
  for (let i = 0; i < 100; i++) server.challenges(`flood${i}`);
  assert.ok(server.outstanding <= 8, `${server.outstanding} nonces held`);
  server.forget('flood99');
  assert.ok(server.outstanding <= 7);
});
