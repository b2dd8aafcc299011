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
  const challenges = parseChallenges(server.challenges());
  for (const c of challenges) {
    const good = new AuthAnswerer({ username: 'admin', password: 's3cret' }, c).header('PLAY', 'rtsp://h/x');
    const bad = new AuthAnswerer({ username: 'admin', password: 'nope' }, c).header('PLAY', 'rtsp://h/x');
    assert.equal(server.check('PLAY', good), true, c.scheme);
    assert.equal(server.check('PLAY', bad), false, c.scheme);
    assert.equal(server.check('SETUP', c.scheme === 'digest' ? good : 'Basic !!'), false, `${c.scheme}: other method or garbage`);
  }
  assert.equal(server.check('PLAY', undefined), false);
  assert.equal(server.check('PLAY', 'Bearer x'), false);
});
