// Issue 6: GET /metrics, parsed with a real Prometheus text-format parser, counts exactly what
// the test did to a real camrelay process with real werift viewers; webrtc.max_sessions refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { Viewer, HttpError } from '../helpers/werift-viewer.js';
import { request } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { Signalling } from '../helpers/signalling.js';

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=320x240&clock=0#video=h264';

async function scrape(app: CamrelayProcess): Promise<Map<string, PromFamily>> {
  const r = await request(`${app.base}/metrics`);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return new Map(parsePrometheusTextFormat(r.text).map((f) => [f.name, f]));
}

/** The value of the sample of `name` whose labels include `labels`; 0 when there is none. */
function value(m: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const f = m.get(name);
  assert.ok(f, `metric ${name} exposed`);
  const s = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return s ? Number(s.value) : 0;
}

async function untilVideo(v: Viewer): Promise<void> {
  await waitFor('video packets at the viewer', () => v.video.length > 5, 10000);
}

test('metrics count streams, sources, sessions by close reason and children', { timeout: 60000 }, async () => {
  const app = await CamrelayProcess.start(testConfig({ demo: DEMO, other: DEMO }));
  try {
    const before = await scrape(app);
    assert.equal(value(before, 'camrelay_streams', { state: 'idle' }), 2);
    assert.equal(value(before, 'camrelay_webrtc_sessions_opened_total'), 0);
    assert.equal(before.get('camrelay_source_starts_total')?.type, 'COUNTER');
    assert.ok(value(before, 'process_resident_memory_bytes') > 0, 'RSS');
    assert.ok(before.has('process_cpu_seconds_total'), 'CPU');
    assert.ok(before.has('nodejs_eventloop_lag_seconds'), 'event-loop lag');

    for (let i = 0; i < 3; i++) {
      const v = new Viewer();
      try {
        await v.connect(app.base, 'demo', 'sdp');
        await untilVideo(v);
        if (i === 0) {
          const live = await scrape(app);
          assert.equal(value(live, 'camrelay_streams', { state: 'live' }), 1);
          assert.equal(value(live, 'camrelay_consumers', { kind: 'webrtc' }), 1);
          assert.equal(value(live, 'camrelay_webrtc_sessions'), 1);
          assert.equal(value(live, 'camrelay_child_processes'), 1);
          assert.ok(value(live, 'camrelay_stream_bytes_in_total', { stream: 'demo' }) > 0, 'bytes in');
          assert.ok(value(live, 'camrelay_stream_frames_in_total', { stream: 'demo' }) > 0, 'frames in');
        }
        assert.equal(await v.hangUp(app.base), 200);
      } finally {
        await v.close();
      }
    }

    // A viewer that vanishes: its peer goes without a DELETE; the disconnect timeout (2 s) ends it.
    const gone = new Viewer();
    await gone.connect(app.base, 'demo', 'sdp');
    await untilVideo(gone);
    const from = app.logs.length;
    await gone.close();
    const closed = await app.waitLog((l) => l.msg === 'webrtc session closed', 8000, from);

    const m = await waitFor('stream idle, no ffmpeg left', async () => {
      const s = await scrape(app);
      return value(s, 'camrelay_child_processes') === 0 && value(s, 'camrelay_streams', { state: 'idle' }) === 2 ? s : undefined;
    }, 10000);
    assert.equal(value(m, 'camrelay_webrtc_sessions_opened_total'), 4);
    assert.equal(value(m, 'camrelay_webrtc_sessions_closed_total', { reason: 'client' }), 3);
    assert.equal(value(m, 'camrelay_webrtc_sessions_closed_total', { reason: 'disconnect_timeout' }), 1, `vanished viewer closed for: ${String(closed.reason)}`);
    for (const reason of ['connect_timeout', 'failed', 'server_shutdown']) {
      assert.equal(value(m, 'camrelay_webrtc_sessions_closed_total', { reason }), 0, reason);
    }
    assert.equal(value(m, 'camrelay_webrtc_sessions'), 0);
    assert.equal(value(m, 'camrelay_consumers', { kind: 'webrtc' }), 0);
    const starts = value(m, 'camrelay_source_starts_total', { stream: 'demo' });
    assert.ok(starts >= 1, 'source started');
    assert.equal(value(m, 'camrelay_source_stops_total', { stream: 'demo' }) + value(m, 'camrelay_source_failures_total', { stream: 'demo' }), starts, 'every start ended');
    assert.equal(value(m, 'camrelay_source_failures_total', { stream: 'demo' }), 0);
    assert.equal(value(m, 'camrelay_source_starts_total', { stream: 'other' }), 0);
    assert.equal(value(m, 'camrelay_backoff_retries_total', { stream: 'demo' }), 0);
    assert.ok(value(m, 'camrelay_stream_packets_out_total', { stream: 'demo', kind: 'webrtc' }) > 20, 'packets out');
    assert.ok(value(m, 'camrelay_stream_bytes_out_total', { stream: 'demo', kind: 'webrtc' }) > 1000, 'bytes out');
    assert.equal(value(m, 'camrelay_child_processes'), 0);
  } finally {
    assert.equal(await app.stop(), 0);
  }
});

test('webrtc.max_sessions refuses the offer beyond the limit with 503, counted', { timeout: 40000 }, async () => {
  const yaml = testConfig({ demo: DEMO }).replace('  loopback_only: true\n', '  loopback_only: true\n  max_sessions: 1\n');
  assert.match(yaml, /max_sessions: 1/);
  const app = await CamrelayProcess.start(yaml);
  const first = new Viewer();
  const second = new Viewer();
  try {
    await first.connect(app.base, 'demo', 'sdp');
    const err = await second.connect(app.base, 'demo', 'sdp').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof HttpError, `refused: ${String(err)}`);
    assert.equal(err.status, 503);
    assert.match((JSON.parse(err.body) as { error: string }).error, /webrtc: too many sessions \(max 1\)/);
    // The WebSocket path shares the limit: an error message, and the socket stays open.
    const sig = await new Signalling(app.port, 'demo').open();
    const ws = new Viewer();
    try {
      sig.send({ type: 'webrtc/offer', value: await ws.offer() });
      assert.equal((await sig.next((x) => x.type === 'error')).value, 'webrtc/offer: too many sessions (max 1)');
      sig.send({ type: 'webrtc', value: { type: 'offer', sdp: await ws.offer() } });
      assert.equal((await sig.next((x) => x.type === 'error', 8000, 1)).value, 'webrtc: too many sessions (max 1)');
    } finally {
      await sig.close();
      await ws.close();
    }
    let m = await scrape(app);
    assert.equal(value(m, 'camrelay_webrtc_sessions_refused_total'), 3);
    assert.equal(value(m, 'camrelay_webrtc_sessions_opened_total'), 1);
    // The place is free again once the first viewer hangs up.
    assert.equal(await first.hangUp(app.base), 200);
    await second.connect(app.base, 'demo', 'sdp');
    m = await scrape(app);
    assert.equal(value(m, 'camrelay_webrtc_sessions_opened_total'), 2);
    assert.equal(value(m, 'camrelay_webrtc_sessions_refused_total'), 3);
  } finally {
    await first.close();
    await second.close();
    assert.equal(await app.stop(), 0);
  }
});
