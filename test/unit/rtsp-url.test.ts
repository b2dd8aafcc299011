import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCameraUrl, redirectTarget } from '../../src/rtsp/url.js';
import { maskCredentials } from '../../src/core/log.js';
import { SourceError } from '../../src/core/errors.js';

test('camera URLs: schemes, default port, percent-decoded user info, request URL without secrets', () => {
  const a = parseCameraUrl('rtsp://admin:p%40ss%3Aw%C3%B6rd@10.0.0.1/live?ch=1');
  assert.deepEqual(a.credentials, { username: 'admin', password: 'p@ss:wörd' });
  assert.equal(a.port, 554);
  assert.equal(a.requestUrl, 'rtsp://10.0.0.1/live?ch=1');
  assert.equal(a.transport, 'tcp');
  assert.equal(a.tls, false);

  // A raw '@' in the password, as users write it: the last '@' ends the user info.
  assert.deepEqual(parseCameraUrl('rtsp://admin:p@ss@10.0.0.2/main').credentials, { username: 'admin', password: 'p@ss' });

  const x = parseCameraUrl('rtspx://[::1]:7441/abc');
  assert.deepEqual([x.tls, x.verifyCertificate, x.host, x.port, x.requestUrl], [true, false, '::1', 7441, 'rtsps://[::1]:7441/abc']);
  const s = parseCameraUrl('RTSPS://cam.local/abc');
  assert.deepEqual([s.tls, s.verifyCertificate, s.port], [true, true, 554]);
});

test("go2rtc's '#' options: transport, media, timeout, backchannel; others ignored; bad values refused", () => {
  const u = parseCameraUrl('rtsp://cam/x#transport=udp#media=video#timeout=7#backchannel=0#audio=opus');
  assert.equal(u.backchannel, false);
  assert.equal(parseCameraUrl('rtsp://cam/x').backchannel, false, 'no backchannel unless asked');
  assert.equal(parseCameraUrl('rtsp://cam/x#backchannel=1').backchannel, true);
  assert.equal(redirectTarget(parseCameraUrl('rtsp://cam/x#backchannel=1'), '/y').backchannel, true, 'a redirect keeps it');
  assert.equal(u.transport, 'udp');
  assert.deepEqual([...u.media!], ['video']);
  assert.equal(u.timeoutMs, 7000);
  assert.equal(u.requestUrl, 'rtsp://cam/x', 'options are not sent to the camera');
  assert.equal(parseCameraUrl('rtsp://cam/x#transport=TCP').transport, 'tcp');
  for (const bad of ['rtsp://cam/x#transport=ws://y', 'rtsp://cam/x#media=data', 'rtsp://cam/x#timeout=0', 'rtsp://cam/x#backchannel=yes', 'http://cam/x', 'rtsp://']) {
    assert.throws(() => parseCameraUrl(bad), (e: unknown) => e instanceof SourceError && e.permanent, bad);
  }
});

test('masking hides the whole user info, even with a raw @ in the password', () => {
  assert.equal(maskCredentials('rtsp://admin:p@ss@10.0.0.2/main#transport=udp'), 'rtsp://***:***@10.0.0.2/main#transport=udp');
  assert.equal(maskCredentials('rtsp://10.0.0.2/main'), 'rtsp://10.0.0.2/main');
  assert.throws(() => parseCameraUrl('rtsp://admin:p/ss@cam/x'), (e: unknown) => e instanceof SourceError && !e.message.includes('p/ss'));
});

test('redirects keep the credentials only for the same host and port, and keep the options', () => {
  const from = parseCameraUrl('rtsp://u:pw@cam:554/a#transport=udp');
  const same = redirectTarget(from, '/b');
  assert.equal(same.requestUrl, 'rtsp://cam:554/b');
  assert.deepEqual(same.credentials, { username: 'u', password: 'pw' });
  assert.equal(same.transport, 'udp');
  assert.equal(redirectTarget(from, 'rtsp://other:554/b').credentials, undefined, 'another host never gets our password');
  assert.deepEqual(redirectTarget(from, 'rtsp://v:x@other/b').credentials, { username: 'v', password: 'x' });
  assert.equal(redirectTarget(parseCameraUrl('rtspx://cam/a'), 'rtsps://cam/b').verifyCertificate, false);
});
