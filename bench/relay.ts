// Relay latency, measured twice over the same frames. On the wire (primary): kernel timestamps on
// loopback of the camera's TCP segments in and camrelay's UDP packets out (bench/relay-wire.ts),
// camrelay's own share. At the viewer (secondary): the camera's write → the packet handed to the
// bench's JavaScript, both ends in this process (bench/relay-camera.ts, node-datachannel viewers)
// so one clock times both; that adds the viewers' receive path and the bench's event loop.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Camrelay } from './camrelay.js';
import { describeClip, keyframePackets, readAccessUnits } from './clip.js';
import { fmt, sleep, type BackendChoice, type BenchContext } from './context.js';
import { connectViewer, type NdcViewer } from './ndc-viewer.js';
import { frameKey, RelayCamera, type WireFrame } from './relay-camera.js';
import { analyseWire, type ViewerRtp, type WireSamples } from './relay-wire.js';
import { machineLine, percentile, table } from './report.js';
import { breakdown, perfProblem, recordThread, type ThreadBreakdown } from './perf-thread.js';
import { threadCpuSeconds } from './proc.js';
import { CACHE_DIR, Capture, captureProblem, type CaptureStats } from './tcpdump.js';

/** The wire figures of one row, or why there are none. */
export type WireResult = { samples: WireSamples; stats: CaptureStats } | { missing: string };

interface Samples {
  /** ms from the camera's write to the frame's first / last (marker) packet at a viewer. */
  first: number[];
  last: number[];
  lastKeyframes: number[];
  /** Frames sent in the window × viewers, and how many of those were matched at a viewer. */
  expected: number;
}

/** camrelay's main thread under perf while N viewers watch, or why there is no such figure. */
export type ProfileResult =
  | { n: number; seconds: number; perf: ThreadBreakdown; procCpuMs: number; packetsOut: number }
  | { n: number; missing: string };

export interface RelayResult {
  backend: BackendChoice;
  byCount: { n: number; samples: Samples; wire: WireResult; profile?: ProfileResult }[];
}

export async function runRelay(ctx: BenchContext): Promise<string> {
  const seconds = ctx.quick ? 6 : 30;
  const counts = [1, 10];
  const noCapture = captureProblem();
  if (noCapture) ctx.log(`relay latency: no wire figures: ${noCapture}`);
  const noPerf = perfProblem();
  if (noPerf) ctx.log(`relay latency: no profile of camrelay's main thread: ${noPerf}`);
  const camera = await RelayCamera.start(ctx.clip, readAccessUnits(ctx.clip.file));
  const results: RelayResult[] = [];
  try {
    for (const b of ctx.backends) {
      const byCount: RelayResult['byCount'] = [];
      for (const n of counts) {
        ctx.log(`relay latency ${b.label}: ${n} viewer(s), ${seconds} s`);
        // The profile is taken at the largest count, after that row's latency window: perf's
        // sampling must not weigh on the figures.
        const profile = n === counts.at(-1) ? { seconds: ctx.quick ? 3 : 10, missing: noPerf } : undefined;
        const { samples, wire, profiled } = await oneCount(ctx, camera, b, n, seconds, noCapture, profile);
        byCount.push({ n, samples, wire, profile: profiled });
        if (profiled && 'perf' in profiled) ctx.log(`  main thread under perf: ${fmt(profiled.perf.cpuMs / profiled.packetsOut * 1000, 2)} µs sampled per packet out`);
        if ('samples' in wire) {
          const w = wire.samples;
          ctx.log(`  wire: frame relayed p50 ${fmt(percentile(w.last, 50), 2)} ms, p99 ${fmt(percentile(w.last, 99), 2)} ms (${w.last.length} of ${w.expected}; tcpdump dropped ${wire.stats.dropped ?? '?'})`);
        } else ctx.log(`  wire: none: ${wire.missing}`);
        ctx.log(`  at the viewer: last packet p50 ${fmt(percentile(samples.last, 50), 2)} ms, p99 ${fmt(percentile(samples.last, 99), 2)} ms (${samples.last.length} frames)`);
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

async function oneCount(
  ctx: BenchContext,
  camera: RelayCamera,
  b: BackendChoice,
  n: number,
  seconds: number,
  noCapture: string | undefined,
  profile: { seconds: number; missing: string | undefined } | undefined,
): Promise<{ samples: Samples; wire: WireResult; profiled?: ProfileResult }> {
  // Started before camrelay, so that its connection to the camera (the SYN-ACK the stream offsets
  // count from) is in the capture. Headers only: the camera's TCP port, and UDP that looks like
  // RTP/RTCP (RFC 7983: first byte 128-191), which leaves out STUN and DTLS.
  let capture: Capture | undefined;
  let wire: WireResult = { missing: noCapture ?? 'no capture' };
  if (!noCapture) {
    try {
      capture = await Capture.start(`relay-${b.backend ?? 'default'}-${n}`, `(tcp port ${camera.port}) or (udp and udp[8] & 0xc0 = 0x80)`);
    } catch (e) {
      wire = { missing: `tcpdump did not start: ${(e as Error).message}` };
    }
  }
  const playbackFrom = camera.playbacks.length;
  let relay: Camrelay;
  try {
    relay = await Camrelay.start({ streams: { cam: camera.url() }, backend: b.backend });
  } catch (e) {
    await capture?.kill();
    capture?.remove();
    throw e;
  }
  const viewers: NdcViewer[] = [];
  const rtp: ViewerRtp[] = [];
  const samples: Samples = { first: [], last: [], lastKeyframes: [], expected: 0 };
  let collectFrom = Infinity;
  let collectUntil = Infinity;
  let stats: CaptureStats | undefined;
  let profiled: ProfileResult | undefined = profile?.missing ? { n, missing: profile.missing } : undefined;
  let perfFile: string | undefined;
  let perfTaken: { seconds: number; procCpuMs: number; packetsOut: number } | undefined;
  try {
    for (let i = 0; i < n; i++) {
      // No candidates in the offer: the connection is not what is timed here (see connectViewer).
      const { viewer: v } = await connectViewer(`relay${i}`, relay.base, 'cam', 3, false);
      viewers.push(v);
      const mine: ViewerRtp = { offsets: new Map() };
      rtp.push(mine);
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
            // What the wire needs to find this viewer's packets: its SSRC, and its timestamps
            // less the camera's.
            mine.ssrc = pkt.readUInt32BE(8);
            const off = (ts - sent.ts) >>> 0;
            mine.offsets.set(off, (mine.offsets.get(off) ?? 0) + 1);
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
    if (profile && !profile.missing) {
      perfFile = path.join(CACHE_DIR, `perf-relay-${b.backend ?? 'default'}-${n}.data`);
      const delivered = () => viewers.reduce((a, v) => a + v.packets, 0);
      const packets0 = delivered();
      const cpu0 = threadCpuSeconds(relay.pid, relay.pid);
      try {
        await recordThread(relay.pid, profile.seconds, perfFile);
        const cpu1 = threadCpuSeconds(relay.pid, relay.pid);
        perfTaken = {
          seconds: profile.seconds,
          procCpuMs: cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) * 1000 : NaN,
          packetsOut: delivered() - packets0,
        };
      } catch (e) {
        profiled = { n, missing: `perf record failed: ${(e as Error).message}` };
      }
    }
    if (capture) {
      try {
        stats = await capture.stop();
      } catch (e) {
        wire = { missing: `tcpdump did not stop: ${(e as Error).message}` };
      }
    }
  } finally {
    await capture?.kill();
    if (!stats) capture?.remove(); // nothing to read: the run failed, or tcpdump did
    await Promise.all(viewers.map((v) => v.close(relay.base)));
    await relay.stop();
  }
  // Read after camrelay has stopped: parsing the capture and the profile costs CPU this machine
  // shares.
  if (perfFile && perfTaken) {
    try {
      profiled = { n, perf: breakdown(perfFile), ...perfTaken };
    } catch (e) {
      profiled = { n, missing: (e as Error).message };
    } finally {
      rmSync(perfFile, { force: true });
    }
  }
  if (capture && stats) {
    try {
      for (const r of rtp) r.offset = mostSeen(r.offsets);
      const inWindow = (f: WireFrame) => f.at >= collectFrom && f.at <= collectUntil;
      wire = { samples: analyseWire(capture.file, camera.port, camera.playbacks.slice(playbackFrom), inWindow, rtp), stats };
    } catch (e) {
      wire = { missing: `the capture could not be read: ${(e as Error).message}` };
    } finally {
      capture.remove();
    }
  }
  return { samples, wire, profiled };
}

/** The key seen most often (the offset, should a frame key ever name the wrong frame). */
function mostSeen(m: ReadonlyMap<number, number>): number | undefined {
  let best: number | undefined;
  let count = 0;
  for (const [k, c] of m) if (c > count) [best, count] = [k, c];
  return best;
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
  const kf = keyframePackets(ctx.clip);
  const out = [
    '## Relay latency: camera → viewer',
    '',
    machineLine(),
    `Command: \`${ctx.command}\`. Source: the same clip (${describeClip(ctx.clip)}) played by an RTSP camera inside the bench process (bench/relay-camera.ts: RTSP/TCP interleaved, single-NAL and FU-A packets of at most 1400 bytes, each frame's packets in one socket write).`,
    `Each row: a fresh camrelay, N node-datachannel viewers in the bench process, ${seconds} s of frames once every viewer is past its first GOP; percentiles over every (frame, viewer) pair, by nearest rank. Each row is measured twice, over the same frames:`,
    '',
    '- **On the wire** (the figure for the target): tcpdump on `lo` (kernel timestamps, headers only; bench/relay-wire.ts). ' +
      '"Frame relayed" is from the camera\'s TCP segment that carries the frame\'s last byte to camrelay\'s UDP packet with the marker bit (the frame\'s last) to that viewer. ' +
      'It includes: camrelay\'s event loop getting to the socket read (behind whatever it is doing, e.g. sending the previous frame), RTSP reading, depacketizing to a whole frame, the fan-out, and for that viewer packetizing, RTP header, SRTP and the UDP send of each of the frame\'s packets up to the marker. ' +
      `camrelay sends a frame to its viewers one after another, so a viewer's figure also holds the frame's packets to the viewers served before it: with 10 viewers a keyframe (${kf} packets out of camrelay for the median one) is ~${kf * 10} packets out. ` +
      'It leaves out the camera\'s own write and everything on the viewers\' side. ' +
      '"First packet" is from the segment with the frame\'s first byte to the frame\'s first UDP packet to that viewer: it also holds the wait for the rest of the frame (nothing of a frame can go before all of it is in), which for a keyframe spans several TCP segments. ' +
      'A viewer\'s packets are found by their clear RTP header: its SSRC and its timestamp, the camera\'s plus a constant per viewer, both learnt from the frames the viewer matched by content (see below).',
    '- **At the viewer** (secondary): the camera\'s `socket.write` → the packet handed to the bench\'s JavaScript, both read from one clock (performance.now()). ' +
      `Adds to the above: the camera's write, and per packet the viewer's side: loopback UDP, libdatachannel (receive, SRTP decrypt) and a hop from its thread to the bench's event loop, which all N viewers and the camera share (with 10 viewers a keyframe is ~${kf * 10} callbacks in one event loop). ` +
      '"Last packet" is the frame complete at the viewer (its marker packet). Frames are matched by their first slice\'s bytes, which camrelay passes unchanged.',
    '',
    'On this 2-core machine camrelay shares the CPU with the bench process (camera and viewers) and tcpdump.',
    '',
  ];
  for (const r of results) {
    out.push(`### ${r.backend.label}`, '');
    out.push('**On the wire** (tcpdump on `lo`: camera\'s TCP segment in → camrelay\'s UDP packet out)', '');
    const missing = r.byCount.flatMap(({ n, wire }) => ('missing' in wire ? [`${n} viewer(s): ${wire.missing}`] : []));
    const measured = r.byCount.flatMap(({ n, wire }) => ('samples' in wire ? [{ n, w: wire.samples, stats: wire.stats }] : []));
    if (measured.length) {
      out.push(
        table(
          [
            'viewers',
            'frames × viewers measured (expected)',
            'frame relayed p50 ms',
            'frame relayed p99 ms',
            'first packet p50 ms',
            'first packet p99 ms',
            'keyframes: frame relayed p50 ms',
            'keyframes: frame relayed p99 ms',
            'tcpdump: packets dropped by kernel (of received)',
            'tcpdump: CPU, % of a core',
          ],
          measured.map(({ n, w, stats }) => [
            n,
            `${w.last.length} (${w.expected})`,
            fmt(percentile(w.last, 50), 2),
            fmt(percentile(w.last, 99), 2),
            fmt(percentile(w.first, 50), 2),
            fmt(percentile(w.first, 99), 2),
            fmt(percentile(w.lastKeyframes, 50), 2),
            fmt(percentile(w.lastKeyframes, 99), 2),
            `${stats.dropped ?? '?'} of ${stats.received ?? '?'}${stats.complete ? '' : ' (file incomplete: its last second may be missing)'}`,
            stats.cpuShare === undefined ? '–' : `${fmt(stats.cpuShare * 100, 1)}%`,
          ]),
        ),
        '',
        ...measured.flatMap(({ n, w }) => [`${n} viewer(s): ${wireBreakdown(w)} Checks: ${wireChecks(w)}`, '']),
      );
    }
    const reasons = new Set(r.byCount.flatMap(({ wire }) => ('missing' in wire ? [wire.missing] : [])));
    if (reasons.size === 1 && measured.length === 0) out.push(`No wire figures: ${[...reasons][0]}.`, '');
    else for (const m of missing) out.push(`No wire figures for ${m}.`, '');
    out.push('**At the viewer** (secondary: the camera\'s write → the packet in the bench\'s JavaScript, viewers\' receive path included)', '');
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
    for (const { profile } of r.byCount) if (profile) out.push(...profileSection(profile));
  }
  return out.join('\n');
}

/** What camrelay's main thread does for the packets it sends, from perf (bench/perf-thread.ts). */
function profileSection(p: ProfileResult): string[] {
  const head = `**camrelay's main thread under perf** (${p.n} viewers, after the window above)`;
  if ('missing' in p) return [head, '', `No profile: ${p.missing}.`, ''];
  const perPacket = (ms: number) => fmt((ms * 1000) / p.packetsOut, 2);
  return [
    head,
    '',
    `\`perf record -e cpu-clock -F 1999 -g -t <camrelay's main thread>\` for ${p.seconds} s while the viewers kept watching: ${p.perf.samples} samples, ${fmt(p.perf.cpuMs, 0)} ms of CPU sampled (the kernel charged the thread ${fmt(p.procCpuMs, 0)} ms, /proc); ${p.packetsOut} RTP packets reached the viewers meanwhile. Each sample is put in the first bucket its call chain fits (bench/perf-thread.ts).`,
    '',
    table(
      ['where', 'share of the thread\'s sampled CPU', 'µs per packet out'],
      [...p.perf.buckets.map((b) => [b.name, `${fmt(b.percent, 1)}%`, perPacket(b.ms)]), ['all', '100%', perPacket(p.perf.cpuMs)]],
    ),
    '',
  ];
}

/** Where the time goes, per frame: camrelay getting the frame out at all, then to every viewer. */
function wireBreakdown(w: WireSamples): string {
  const pp = (xs: number[]) => `p50 ${fmt(percentile(xs, 50), 2)} / p99 ${fmt(percentile(xs, 99), 2)} ms`;
  return (
    `per frame, last byte in → its first packet out to any viewer ${pp(w.reaction)}; ` +
    `that first packet → the last viewer's marker packet (the fan-out): other frames ${pp(w.fanOut)}, keyframes ${pp(w.fanOutKeyframes)}.`
  );
}

/** What says the wire's matching held: stream offsets, timestamp offsets, what was not matched. */
function wireChecks(w: WireSamples): string {
  const unmatched = w.expected - w.last.length;
  const parts = [
    `frame starts found where the camera's stream offsets put them ${w.startsConfirmed} of ${w.startsChecked} checked`,
    w.offsetChanges === 0 ? 'timestamp offset constant for every viewer' : `**timestamp offset not constant for ${w.offsetChanges} viewer(s)**`,
    `frames out with no camera frame at their timestamp less the offset: ${w.strayFrames}`,
  ];
  if (unmatched > 0) parts.push(`not measured: ${w.missingIn} with no segment in, ${w.missingOut} with no marker packet out, ${w.viewersUnknown} of viewers whose SSRC was not learnt`);
  if (w.unknownLength > 0) parts.push(`${w.unknownLength} TCP segments of unknown length (GSO over 64 KiB)`);
  return `${parts.join('; ')} (${w.tcpSegments} TCP segments in, ${w.rtpPackets} RTP packets out).`;
}
