// Stop latency: the last viewer ends its session explicitly (DELETE on its WHEP Location) and we
// time how long until camrelay has let go of the source: the camera sees the TEARDOWN and the
// connection close; for an ffmpeg source, also until ffmpeg has exited.
import { performance } from 'node:perf_hooks';
import { Camrelay } from './camrelay.js';
import { describeClip } from './clip.js';
import { fmt, type BackendChoice, type BenchContext } from './context.js';
import { connectViewer, describeFailure, type NdcViewer } from './ndc-viewer.js';
import { machineLine, percentile, table } from './report.js';
import { waitFor } from '../test/helpers/wait.js';

interface Samples {
  teardown: number[];
  closed: number[];
  /** ffmpeg source only. */
  ffmpegExited: number[];
  /** Runs done again, and why. */
  failures: string[];
}

export interface StopResult {
  backend: BackendChoice;
  rtsp: Samples;
  ffmpeg: Samples;
}

export const STOP_KEY = 'stop';

export async function runStop(ctx: BenchContext): Promise<string> {
  const runs = ctx.quick ? 5 : 20;
  const results: StopResult[] = [];
  for (const b of ctx.backends) {
    // debug: camrelay logs its children's exits ('child exited'), with the time it saw them.
    const relay = await Camrelay.start({
      streams: { cam: ctx.camera.url(), camff: `ffmpeg:${ctx.camera.url()}#video=copy` },
      backend: b.backend,
      logLevel: 'debug',
    });
    try {
      ctx.log(`stop ${b.label}: RTSP source, ${runs} runs`);
      const rtsp = await stopRuns(ctx, relay, 'cam', runs, false);
      ctx.log(`stop ${b.label}: ffmpeg source, ${runs} runs`);
      const ffmpeg = await stopRuns(ctx, relay, 'camff', runs, true);
      results.push({ backend: b, rtsp, ffmpeg });
      ctx.log(`  RTSP: closed p50 ${fmt(percentile(rtsp.closed, 50))} ms; ffmpeg: exited p50 ${fmt(percentile(ffmpeg.ffmpegExited, 50))} ms`);
    } finally {
      await relay.stop();
    }
  }
  ctx.shared.set(STOP_KEY, results);
  return report(ctx, runs, results);
}

async function stopRuns(ctx: BenchContext, relay: Camrelay, src: string, runs: number, ffmpeg: boolean): Promise<Samples> {
  const cam = ctx.camera;
  const out: Samples = { teardown: [], closed: [], ffmpegExited: [], failures: [] };
  // A run that fails before the stop is measured (libdatachannel rejecting the answer, no
  // keyframe) is noted and done again from idle, at most `runs` extra times.
  for (let i = 0, attempt = 0; i < runs; attempt++) {
    if (attempt >= runs * 2) throw new Error(`stop runs: ${out.failures.length} runs failed, giving up: ${out.failures.slice(-3).join('; ')}`);
    await waitFor('the camera to have no connection (an idle stream)', () => cam.openConnections() === 0, 15000);
    const from = cam.events.length;
    const logFrom = relay.logs.length;
    let v: NdcViewer | undefined;
    try {
      // No candidates in the offer: the connection is not what is timed here (see connectViewer).
      v = (await connectViewer(`stop${i}`, relay.base, src, 1, false)).viewer;
      await v.firstKeyframe(20000);
    } catch (e) {
      out.failures.push(`${String(e)}; ${relay.problemsSince(logFrom)}`);
      await v?.close(relay.base);
      continue;
    }
    const client = (await cam.waitEvent((e) => e.event === 'connected', 1000, from)).client;
    const teardown = cam.waitEvent((e) => e.event === 'request' && e.method === 'TEARDOWN' && e.client === client, 10000, from).then(() => performance.now());
    const closed = cam.waitEvent((e) => e.event === 'closed' && e.client === client, 10000, from).then(() => performance.now());
    teardown.catch(() => undefined);
    const exited = ffmpeg ? relay.waitLog((l) => l.msg === 'child exited', 10000, relay.logs.length) : undefined;
    const sent = await v.close(relay.base);
    out.closed.push((await closed) - sent);
    // A client that closes its connection without a TEARDOWN has not sent one: no sample.
    const td = await teardown.catch(() => undefined);
    if (td !== undefined) out.teardown.push(td - sent);
    if (exited) out.ffmpegExited.push((await exited).time - (performance.timeOrigin + sent));
    i++;
  }
  return out;
}

function report(ctx: BenchContext, runs: number, results: StopResult[]): string {
  const out = [
    '## Stop latency: last viewer leaves → source released',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)} (gst-rtsp-server). ${runs} runs per row; p50 is their median, p99 their 99th percentile by nearest rank (with ${runs} runs: the largest).`,
    'Each run: one node-datachannel viewer starts the idle stream, waits for its first keyframe, then ends the session with DELETE on its Location (WHEP); the clock starts as the DELETE is sent. ' +
      '"Camera saw TEARDOWN" and "camera connection closed" are when the bench read those events from gst-rtsp-server.py; "ffmpeg exited" is the time camrelay logged the exit of its ffmpeg child (ms resolution). ' +
      'RTSP source: `rtsp://…` pulled by camrelay itself. ffmpeg source: `ffmpeg:rtsp://…#video=copy` (ffmpeg reads the camera and publishes into camrelay\'s RTSP server); camrelay stops it with `q`, then SIGTERM after 300 ms (the default `ffmpeg.stop_grace`).',
    '',
  ];
  const row = (label: string, xs: number[]) => [label, xs.length, fmt(percentile(xs, 50)), fmt(percentile(xs, 99))];
  for (const r of results) {
    out.push(`### ${r.backend.label}`, '');
    out.push(
      table(
        ['ms after the DELETE', 'runs', 'p50', 'p99'],
        [
          row('RTSP source: camera saw TEARDOWN', r.rtsp.teardown),
          row('RTSP source: camera connection closed', r.rtsp.closed),
          row('ffmpeg source: camera saw TEARDOWN (from ffmpeg)', r.ffmpeg.teardown),
          row('ffmpeg source: camera connection closed', r.ffmpeg.closed),
          row('ffmpeg source: ffmpeg exited', r.ffmpeg.ffmpegExited),
        ],
      ),
      '',
    );
    for (const [what, f] of [['RTSP source', r.rtsp.failures], ['ffmpeg source', r.ffmpeg.failures]] as const) {
      if (f.length) out.push(`${what}: ${f.length} run(s) failed before the stop and were done again: ${f.map(describeFailure).join(' — ')}`, '');
    }
  }
  return out.join('\n');
}
