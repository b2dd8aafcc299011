// The Transport header as the server reads it from players. Port and channel ranges outside what
// UDP and interleaving allow are no ranges at all: port 0 used to reach dgram's send, which threw
// outside any request and ended the process (found by test/integration/rtsp-server-fuzz.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTransport } from '../../src/rtsp/transport.js';

test('client_port and interleaved ranges', { timeout: 5000 }, () => {
  const [t] = parseTransport('RTP/AVP;unicast;client_port=5000-5001');
  assert.deepEqual(t?.clientPort, [5000, 5001]);
  assert.deepEqual(parseTransport('RTP/AVP;unicast;client_port=5000')[0]?.clientPort, [5000, 5001]);
  assert.deepEqual(parseTransport('RTP/AVP/TCP;unicast;interleaved=0-1')[0]?.interleaved, [0, 1]);
  assert.deepEqual(parseTransport('RTP/AVP/TCP;unicast;interleaved=254-255')[0]?.interleaved, [254, 255]);
});

test('ports outside 1-65535 and channels outside 0-255 are not ranges', { timeout: 5000 }, () => {
  for (const v of ['0-0', '0-1', '65535', '65535-65536', '70000-70001', '99999-99999', '-1-0', 'a-b', '5000-5001-5002']) {
    assert.equal(parseTransport(`RTP/AVP;unicast;client_port=${v}`)[0]?.clientPort, undefined, v);
  }
  for (const v of ['255', '256-257', '300-301', '0-256']) {
    assert.equal(parseTransport(`RTP/AVP/TCP;unicast;interleaved=${v}`)[0]?.interleaved, undefined, v);
  }
});
