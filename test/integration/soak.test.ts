// The short soak of issue 6 (the full one is `npm run soak`): 100 WebRTC cycles (clean close,
// vanished peer, signalling socket dropped mid-offer, offer never followed by ICE) and 100 RTSP
// player cycles against a real camrelay process, then (issue 15) 100 MSE cycles over /api/ws and 50
// HLS sessions that stop fetching (10 at a time, each ended by its 5 s timeout), each kind followed
// by a row that must be back at the baseline; then every acceptance criterion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, runSoak } from '../../bench/soak/harness.js';
import { criteriaList, notes, resultTable } from '../../bench/soak/format.js';

test('soak: 100 WebRTC + 100 RTSP + 100 MSE + 50 HLS viewer cycles leave camrelay as they found it', { timeout: 330_000 }, async (t) => {
  const result = await runSoak({ ...DEFAULTS, webrtc: 100, rtsp: 100, mse: 100, hls: 50, every: 50, progress: (line) => t.diagnostic(line) });
  for (const line of [resultTable(result), criteriaList(result), notes(result)].join('\n').split('\n')) t.diagnostic(line);

  const c = (prefix: string) => {
    const found = result.criteria.find((x) => x.name.startsWith(prefix));
    assert.ok(found, `criterion "${prefix}…" evaluated`);
    return found;
  };
  // One assertion per criterion, so a failure names what broke and what was measured.
  for (const prefix of ['every cycle ended', 'media in every cycle', 'final RSS within 10 MB', 'live JS heap after a full GC', 'no child process left', 'TCP/UDP sockets back', 'live objects back', 'open fds back', 'CPU in the', 'every MSE cycle played and ended', 'back to baseline after the MSE cycles', 'every HLS cycle played and ended', 'back to baseline after the HLS cycles', 'live JS heap and external memory after a full GC within 5 MB of the row before the MSE', 'live JS heap and external memory after a full GC within 5 MB of the row before the HLS']) {
    const x = c(prefix);
    assert.ok(!x.notApplicable, `${x.name}: measured`);
    assert.ok(x.pass, `${x.name}: ${x.detail}`);
  }
  // Each kind ran as often as the mix says, and ended the way that kind must end.
  assert.deepEqual(
    Object.fromEntries(Object.entries(result.kinds).map(([k, s]) => [k, s.cycles])),
    { vanished: 25, 'no-ice': 25, clean: 25, 'ws-drop': 25, 'rtsp:teardown': 50, 'rtsp:close': 50 },
  );
  assert.equal(result.webrtcReasons['closed by client'], 25);
  assert.equal(result.webrtcReasons['disconnect timeout'], 25);
  assert.equal(result.webrtcReasons['connect timeout'], 25);
  assert.equal(result.webrtcReasons['viewer left before the answer'], 25);
  assert.equal(result.wsDrop.abortedBeforeAnswer, 25, 'every dropped offer was still being answered when its socket went');
  // The MSE rounds (one cold cycle holding the stream while nine warm ones come and go) and the HLS batches.
  assert.deepEqual(
    Object.fromEntries(Object.entries(result.outputKinds).map(([k, s]) => [k, [s.cycles, s.ok, s.withMedia]])),
    { 'mse:cold': [10, 10, 10], 'mse:warm': [90, 90, 90], hls: [50, 50, 50] },
  );
  assert.deepEqual(result.rows.filter((r) => r.phase).map((r) => r.phase), [{ kind: 'mse', cycles: 100 }, { kind: 'hls', cycles: 50 }]);
  assert.equal(result.pass, true);
});
