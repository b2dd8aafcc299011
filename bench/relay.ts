// Relay latency: a frame written by the camera → the same frame arriving at a viewer, both ends
// in this process (bench/relay-camera.ts, node-datachannel viewers), so one clock times both.
import { performance } from 'node:perf_hooks';
import { Camrelay } from './camrelay.js';
import { describeClip, readAccessUnits } from './clip.js';
import { fmt, sleep, type BackendChoice, type BenchContext } from './context.js';
import { connectViewer, type NdcViewer } from './ndc-viewer.js';
import { frameKey, RelayCamera } from './relay-camera.js';
import { machineLine, percentile, table } from './report.js';

interface Samples {
  /** ms from the camera's write to the frame's first / last (marker) packet at a viewer. */
  first: number[];
  last: number[];
  lastKeyframes: number[];
  /** Frames sent in the window × viewers, and how many of those were matched at a viewer. */
  expected: number;
}

export interface RelayResult {
  backend: BackendChoice;
  byCount: { n: number; samples: Samples }[];
}

export async function runRelay(ctx: BenchContext): Promise<string> {
  const seconds = ctx.quick ? 6 : 30;
  const counts = [1, 10];
  const camera = await RelayCamera.start(ctx.clip, readAccessUnits(ctx.clip.file));
  const results: RelayResult[] = [];
  try {
    for (const b of ctx.backends) {
      const byCount: RelayResult['byCount'] = [];
      for (const n of counts) {
        ctx.log(`relay latency ${b.label}: ${n} viewer(s), ${seconds} s`);
        const samples = await oneCount(ctx, camera, b, n, seconds);
        byCount.push({ n, samples });
        ctx.log(`  last packet p50 ${fmt(percentile(samples.last, 50), 2)} ms, p99 ${fmt(percentile(samples.last, 99), 2)} ms (${samples.last.length} frames)`);
      }
      results.push({ backend: b, byCount });
    }
  } finally {
    await camera.close();
  }
  ctx.shared.set(RELAY_KEY, results);
  return report(ctx, seconds, results);
}

export const RELAY_KEY = 'relay';

async function oneCount(ctx: BenchContext, camera: RelayCamera, b: BackendChoice, n: number, seconds: number): Promise<Samples> {
  const relay = await Camrelay.start({ streams: { cam: camera.url() }, backend: b.backend });
  const viewers: NdcViewer[] = [];
  const samples: Samples = { first: [], last: [], lastKeyframes: [], expected: 0 };
  let collectFrom = Infinity;
  let collectUntil = Infinity;
  try {
    for (let i = 0; i < n; i++) {
      const { viewer: v } = await connectViewer(`relay${i}`, relay.base, 'cam');
      viewers.push(v);
      // Per viewer: its RTP timestamp → the camera's write of that frame.
      const open = new Map<number, { at: number; keyframe: boolean }>();
      v.onRtp = (pkt, at) => {
        const ts = pkt.readUInt32BE(4);
        const body = firstSliceBody(pkt);
        if (body) {
          const sent = camera.sent.get(frameKey(body));
          if (sent && sent.at >= collectFrom && sent.at <= collectUntil) {
            open.set(ts, sent);
            samples.first.push(at - sent.at);
          }
        }
        if ((pkt[1]! & 0x80) === 0) return;
        const sent = open.get(ts);
        if (!sent) return;
        open.delete(ts);
        samples.last.push(at - sent.at);
        if (sent.keyframe) samples.lastKeyframes.push(at - sent.at);
      };
    }
    await Promise.all(viewers.map((v) => v.firstKeyframe(20000)));
    // Frames from a GOP cache reach a new viewer late by design: count only frames sent after
    // every viewer is past its first GOP.
    collectFrom = performance.now() + (1000 * ctx.clip.gop) / ctx.clip.fps + 500;
    await sleep(collectFrom - performance.now());
    const frames0 = camera.frames;
    await sleep(seconds * 1000); // the measurement window itself
    collectUntil = performance.now();
    samples.expected = (camera.frames - frames0) * n;
    await sleep(500); // the window's last frames on their way
  } finally {
    await Promise.all(viewers.map((v) => v.close(relay.base)));
    await relay.stop();
  }
  return samples;
}

/** The slice data of the packet that starts the frame's first slice, after the NAL header. */
function firstSliceBody(pkt: Buffer): Buffer | undefined {
  let off = 12 + (pkt[0]! & 0x0f) * 4;
  if (pkt[0]! & 0x10) off += 4 + pkt.readUInt16BE(off + 2) * 4;
  const p = pkt.subarray(off);
  const t = p[0]! & 0x1f;
  if (t === 1 || t === 5) return p.subarray(1);
  if (t === 28) {
    const ft = p[1]! & 0x1f;
    return (p[1]! & 0x80) !== 0 && (ft === 1 || ft === 5) ? p.subarray(2) : undefined;
  }
  if (t === 24) {
    for (let i = 1; i + 2 < p.length; ) {
      const size = p.readUInt16BE(i);
      const it = p[i + 2]! & 0x1f;
      if (it === 1 || it === 5) return p.subarray(i + 3, i + 2 + size);
      i += 2 + size;
    }
  }
  return undefined;
}

function report(ctx: BenchContext, seconds: number, results: RelayResult[]): string {
  const out = [
    '## Relay latency: camera → viewer',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: the same clip (${describeClip(ctx.clip)}) played by an RTSP camera inside the bench process (bench/relay-camera.ts: RTSP/TCP interleaved, single-NAL and FU-A packets of at most 1400 bytes, each frame's packets in one socket write), so both ends read one clock (performance.now()).`,
    `Each row: a fresh camrelay, N node-datachannel viewers in the bench process, ${seconds} s of frames once every viewer is past its first GOP; percentiles over every (frame, viewer) pair, by nearest rank.`,
    'What the figure includes: the camera\'s write → loopback TCP → camrelay (RTSP read, depacketizing to a whole frame, packetizing, per-viewer RTP header, SRTP, UDP send) → loopback UDP → libdatachannel (receive, SRTP decrypt) → the packet handed to the bench\'s JavaScript (a hop from libdatachannel\'s thread to the event loop, shared by all N viewers and the camera). ' +
      '"Last packet" is the frame complete at the viewer (its marker packet): camrelay can only start sending a frame once all of it is in, so a keyframe of ~90 packets costs more than a P-frame. Frames are matched by their first slice\'s bytes, which camrelay passes unchanged.',
    '',
  ];
  for (const r of results) {
    out.push(`### ${r.backend.label}`, '');
    out.push(
      table(
        ['viewers', 'frames × viewers measured (sent)', 'first packet p50 ms', 'first packet p99 ms', 'last packet p50 ms', 'last packet p99 ms', 'keyframes: last packet p99 ms'],
        r.byCount.map(({ n, samples: s }) => [
          n,
          `${s.last.length} (${s.expected})`,
          fmt(percentile(s.first, 50), 2),
          fmt(percentile(s.first, 99), 2),
          fmt(percentile(s.last, 50), 2),
          fmt(percentile(s.last, 99), 2),
          fmt(percentile(s.lastKeyframes, 99), 2),
        ]),
      ),
      '',
    );
  }
  return out.join('\n');
}
