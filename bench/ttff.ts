// Time to first frame: from the moment the viewer's offer is sent (POST /api/webrtc) to the
// moment the last packet of its first keyframe arrives, for a stream that is already live (one
// other viewer keeps it running) and for an idle one (the viewer starts the camera).
import { performance } from 'node:perf_hooks';
import { Camrelay } from './camrelay.js';
import { describeClip } from './clip.js';
import { fmt, sleep, type BackendChoice, type BenchContext } from './context.js';
import { connectViewer, describeFailure, type NdcViewer } from './ndc-viewer.js';
import { machineLine, percentile, table } from './report.js';
import { waitFor } from '../test/helpers/wait.js';

export interface TtffResult {
  backend: BackendChoice;
  /** ms, one per run. */
  live: { total: number[]; firstPacket: number[]; retries: number; failures: string[] };
  idle: { total: number[]; firstPacket: number[]; toCameraConnect: number[]; toPlay: number[]; playToKeyframe: number[]; retries: number; failures: string[] };
}

export const TTFF_KEY = 'ttff';

export async function runTtff(ctx: BenchContext): Promise<string> {
  const runs = ctx.quick ? 5 : 20;
  const results: TtffResult[] = [];
  for (const b of ctx.backends) {
    const relay = await Camrelay.start({ streams: { cam: ctx.camera.url() }, backend: b.backend });
    try {
      ctx.log(`ttff ${b.label}: idle stream, ${runs} runs`);
      const idle = await idleRuns(ctx, relay, runs);
      ctx.log(`ttff ${b.label}: live stream, ${runs} runs`);
      const live = await liveRuns(ctx, relay, runs);
      results.push({ backend: b, live, idle });
      ctx.log(`  live p50 ${fmt(percentile(live.total, 50), 0)} ms, idle p50 ${fmt(percentile(idle.total, 50), 0)} ms`);
    } finally {
      await relay.stop();
    }
  }
  ctx.shared.set(TTFF_KEY, results);
  return report(ctx, runs, results);
}

async function liveRuns(ctx: BenchContext, relay: Camrelay, runs: number): Promise<TtffResult['live']> {
  const { viewer: holder } = await connectViewer('holder', relay.base, 'cam');
  const out: TtffResult['live'] = { total: [], firstPacket: [], retries: 0, failures: [] };
  try {
    await holder.firstKeyframe(20000);
    const gopMs = (1000 * ctx.clip.gop) / ctx.clip.fps;
    // A run without a keyframe is noted and done again, at most `runs` extra times.
    for (let i = 0, attempt = 0; i < runs; attempt++) {
      if (attempt >= runs * 2) throw new Error(`live runs: ${out.failures.length} failed, giving up: ${out.failures.slice(-3).join('; ')}`);
      // Join at a random point of the GOP, as people do.
      await sleep(Math.random() * gopMs);
      const logFrom = relay.logs.length;
      let v: NdcViewer | undefined;
      try {
        const c = await connectViewer(`live${i}`, relay.base, 'cam');
        v = c.viewer;
        out.retries += c.retries;
        const key = await v.firstKeyframe(10000);
        out.total.push(key - v.times.offerSent!);
        out.firstPacket.push(v.times.firstPacket! - v.times.offerSent!);
        i++;
      } catch (e) {
        out.failures.push(`${String(e)}; ${relay.problemsSince(logFrom)}`);
      } finally {
        await v?.close(relay.base);
      }
    }
  } finally {
    await holder.close(relay.base);
  }
  return out;
}

async function idleRuns(ctx: BenchContext, relay: Camrelay, runs: number): Promise<TtffResult['idle']> {
  const cam = ctx.camera;
  const out: TtffResult['idle'] = { total: [], firstPacket: [], toCameraConnect: [], toPlay: [], playToKeyframe: [], retries: 0, failures: [] };
  // A run whose offer libdatachannel rejected (a retried offer would find the stream already
  // starting: not an idle run) or that got no keyframe is done again from idle, at most `runs`
  // extra times.
  for (let i = 0, attempt = 0; i < runs; attempt++) {
    if (attempt >= runs * 2) throw new Error(`idle runs: ${out.retries + out.failures.length} failed, giving up: ${out.failures.slice(-3).join('; ')}`);
    // Idle means camrelay has let go of the camera.
    await waitFor('the camera to have no connection (an idle stream)', () => cam.openConnections() === 0, 15000);
    const from = cam.events.length;
    const logFrom = relay.logs.length;
    const connectedAt = cam.waitEvent((e) => e.event === 'connected', 15000, from).then(() => performance.now());
    const playAt = cam.waitEvent((e) => e.event === 'request' && e.method === 'PLAY', 15000, from).then(() => performance.now());
    connectedAt.catch(() => undefined);
    playAt.catch(() => undefined);
    let v: NdcViewer | undefined;
    try {
      v = (await connectViewer(`idle${i}`, relay.base, 'cam', 1)).viewer;
    } catch (e) {
      if (!/remote candidate without ICE transport/.test(String(e))) throw e;
      out.retries++;
      continue;
    }
    try {
      const key = await v.firstKeyframe(15000);
      const t0 = v.times.offerSent!;
      const play = await playAt;
      out.total.push(key - t0);
      out.firstPacket.push(v.times.firstPacket! - t0);
      out.toCameraConnect.push((await connectedAt) - t0);
      out.toPlay.push(play - t0);
      out.playToKeyframe.push(key - play);
      i++;
    } catch (e) {
      out.failures.push(`${String(e)}; ${relay.problemsSince(logFrom)}`);
    } finally {
      await v.close(relay.base);
    }
  }
  return out;
}

function row(label: string, xs: number[]): (string | number)[] {
  return [label, fmt(percentile(xs, 50), 0), fmt(percentile(xs, 95), 0), fmt(Math.min(...xs), 0), fmt(Math.max(...xs), 0)];
}

function report(ctx: BenchContext, runs: number, results: TtffResult[]): string {
  const out = [
    '## Time to first frame (WebRTC)',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: ${describeClip(ctx.clip)} (gst-rtsp-server, RTSP/TCP). ${runs} runs per case; p50 is the median of the ${runs} runs, p95 their 95th percentile by nearest rank.`,
    'Measured from the viewer (a node-datachannel peer in the bench process, loopback, non-trickle: its offer carries its candidates, as a WHEP client that waited for gathering sends it) sending its offer in POST /api/webrtc to the last RTP packet of its first keyframe arriving (SRTP-decrypted, in the bench\'s event loop). ' +
      `Live: a second viewer keeps the stream running; each run joins at a random point of the ${ctx.clip.gop / ctx.clip.fps} s GOP. Idle: camrelay holds no camera connection when the offer is sent, so the time includes connecting to the camera (OPTIONS/DESCRIBE/SETUP/PLAY); the camera sends its first keyframe as it starts playing, so "PLAY → keyframe" is camrelay's part after the camera's first keyframe (camera events are timed when the bench reads them from gst-rtsp-server.py's stdout).`,
    '',
  ];
  const head = ['ms', 'p50', 'p95', 'min', 'max'];
  for (const r of results) {
    out.push(`### ${r.backend.label}`, '');
    out.push(
      table(head, [
        row('live: offer → first keyframe', r.live.total),
        row('live: offer → first RTP packet (ICE and DTLS done)', r.live.firstPacket),
        row('idle: offer → first keyframe', r.idle.total),
        row('idle: offer → camera connected', r.idle.toCameraConnect),
        row('idle: offer → camera PLAY', r.idle.toPlay),
        row('idle: camera PLAY → first keyframe at the viewer', r.idle.playToKeyframe),
        row('idle: offer → first RTP packet (ICE and DTLS done)', r.idle.firstPacket),
      ]),
      '',
    );
    for (const [what, f] of [['live', r.live.failures], ['idle', r.idle.failures]] as const) {
      if (f.length) out.push(`${what}: ${f.length} run(s) got no keyframe and were done again: ${f.map(describeFailure).join(' — ')}`, '');
    }
    if (r.live.retries || r.idle.retries) {
      out.push(
        `Offers the viewer had to repeat (libdatachannel as offerer rejecting an answer, see bench/ndc-viewer.ts connectViewer): live ${r.live.retries}, idle ${r.idle.retries}. A live run is timed from the offer that worked; an idle run whose offer failed was done again.`,
        '',
      );
    }
  }
  return out.join('\n');
}
