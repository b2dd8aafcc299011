// The soak's result as a Markdown table and notes: the same text goes to the terminal and to
// docs/benchmarks.md.
import { table } from '../report.js';
import type { Row, SoakResult } from './result.js';
import { DEMO } from './config.js';

const mib = (n: number) => (n / 2 ** 20).toFixed(1);
const pct = (x: number) => (x * 100).toFixed(2);

const HEAD = ['WebRTC cycles', 'RTSP cycles', 'then', 'time (s)', 'RSS (MB)', 'RSS low–high (MB)', 'RSS after GC / net (MB)', 'JS heap live / committed (MB)', 'peak RSS (MB)', 'open fds', 'threads', 'children', 'TCP / UDP sockets', 'live objects', 'ffmpeg starts', 'CPU (% of a core)', 'CPU idle after (%)', 'failed'] as const;

export function resultTable(r: SoakResult): string {
  const b = r.baseline;
  const base = ['baseline', '', '', '0', mib(b.rss), '', '', '', mib(b.peak), b.fds, b.threads, b.children, `${b.sockets.tcp} / ${b.sockets.udp}`, Object.entries(b.objects).map(([k, n]) => `${k} ${n}`).join(', '), 0, '', '', 0];
  const row = (x: Row) => [
    x.webrtc,
    x.rtsp,
    x.phase ? `${x.phase.cycles} ${x.phase.kind.toUpperCase()}` : '',
    x.elapsedS.toFixed(0),
    mib(x.rss),
    `${mib(x.rssMin)}–${mib(x.rssMax)}`,
    x.rssGc === undefined ? '' : `${mib(x.rssGc)} / ${mib(x.rssNet ?? NaN)}`,
    x.heapLive === undefined ? '' : `${mib(x.heapLive)} / ${mib(x.heapTotal ?? NaN)}`,
    mib(x.peak),
    x.fdDiff ? `${x.fds} (${x.fdDiff})` : x.fds,
    x.threads,
    x.children,
    `${x.tcp} / ${x.udp}`,
    x.objects,
    x.sourceStarts,
    pct(x.cpu),
    pct(x.idleCpu),
    x.failures,
  ];
  return table(HEAD, [base, ...r.rows.map(row)]);
}

export function criteriaList(r: SoakResult): string {
  return r.criteria.map((c) => `- ${c.notApplicable ? 'n/a' : c.pass ? 'PASS' : 'FAIL'}: ${c.name} — ${c.detail}`).join('\n');
}

export function notes(r: SoakResult): string {
  const kinds = Object.entries(r.kinds)
    .map(([k, s]) => `${k} ${s.cycles}${s.videoPackets ? ` (${s.videoPackets} video RTP packets)` : ''}`)
    .join(', ');
  const reasons = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `"${k}" ${n}`)
      .join(', ');
  const lines = [
    `- camrelay's WebRTC backend: ${r.webrtcBackend} (webrtc.backend: ${r.options.backend}).`,
    r.warmupAdded === undefined
      ? '- No warm-up: the baseline is camrelay right after startup.'
      : `- Baseline after one warm-up cycle of each (clean WebRTC, RTSP); the warm-up left ${r.warmupAdded || 'nothing'} more than at startup${r.webrtcBackend === 'node-datachannel' && r.warmupAdded ? " (node-datachannel's thread pool and its wake-up pipes, started with the first peer and kept until exit)" : ''}.`,
    `- Cycles by kind: ${kinds}.`,
    `- WebRTC sessions ended by camrelay with: ${reasons(r.webrtcReasons) || 'none'}. Of the offers whose socket was dropped, ${r.wsDrop.abortedBeforeAnswer} were aborted before the answer and ${r.wsDrop.answeredFirst} were answered first (those sessions then ended by the connect timeout).`,
    `- RTSP sessions ended with: ${reasons(r.rtspReasons) || 'none'}.`,
    ...(Object.keys(r.outputKinds).length
      ? [
          `- MSE and HLS cycles by kind (ended / ran): ${Object.entries(r.outputKinds).map(([k, s]) => `${k} ${s.ok}/${s.cycles}`).join(', ')}; MSE first fragment after the socket's creation, p50 / p95: ${Object.entries(r.mseFirstFragment).map(([k, q]) => `${k} ${q.p50.toFixed(0)} / ${q.p95.toFixed(0)} ms`).join(', ') || 'none'}.`,
        ]
      : []),
    `- CPU in the ${r.options.idleCpuMs / 1000} s after the last viewer left: ${pct(r.idleCpu)} % of a core (second by second: ${r.idleCpuSlices.map(pct).join(', ')}${leftOut(r.idleCpuLeftOut)}; utime+stime from /proc/<pid>/stat; the window starts when camrelay has logged the end of the last session, and includes stopping the last ffmpeg).`,
    `- RSS at rest at the end (after the idle window and the wait for the baseline): ${mib(r.rssAtRest)} MB.`,
    `- Whole run: ${(r.durationS / 60).toFixed(1)} min.`,
  ];
  if (r.failures.length) lines.push(`- Failures (first ${r.failures.length}):`, ...r.failures.map((f) => `  - ${f}`));
  return lines.join('\n');
}

/** The docs/benchmarks.md section: what was run, where, the table, the verdicts. */
export function section(r: SoakResult, command: string, machine: string): string {
  const o = r.options;
  const idle = o.idleCpuMs / 1000;
  const lines = [
    '## Soak: WebRTC and RTSP viewer cycles',
    '',
    `\`${command}\``,
    '',
    machine,
    '',
    `camrelay runs as a child process (the bundle \`npm start\` runs, scripts/build.mjs; log level debug) with one stream, ffmpeg's test pattern (\`${DEMO}\`), \`webrtc.backend: ${o.backend}\` (it ran **${r.webrtcBackend}**) and \`webrtc.timeouts\` connect ${o.connectTimeout}, disconnect ${o.disconnectTimeout}. The harness (\`bench/soak/\`) runs one WebRTC cycle and one RTSP cycle in turn, with real peers on 127.0.0.1:`,
    '',
    '- WebRTC cycles rotate through four kinds, each with a werift peer: **vanished** (go2rtc WebSocket signalling with trickle ICE, plays until video RTP arrives, then closes the socket and the peer without a word: camrelay\'s disconnect timeout must end it), **no-ice** (answer received, no candidate ever sent: the connect timeout must end it), **clean** (WHEP offer, plays until video arrives, `DELETE`) and **ws-drop** (offer sent on `/api/ws` while the stream is idle, then the socket dropped or closed at once, while camrelay is still starting the source: it must abort the open).',
    '- RTSP cycles (DESCRIBE, SETUP interleaved, PLAY, video RTP) alternate between TEARDOWN-then-close and just closing the connection.',
    ...(o.mse || o.hls
      ? [
          `- Then ${o.mse} MSE cycles (go2rtc's \`{"type":"mse"}\` on \`/api/ws\`, the answer, the init segment and a fragment, then the socket closed) in rounds of 10: the first of a round finds the stream idle and holds it while the other nine come and go; and ${o.hls} HLS sessions (master and media playlist, init.mp4, one segment, then nothing) 10 at a time, each batch ending when camrelay has timed every session out (5 s after its last request). Each kind is followed by a row of its own ("then"), which must be back at the baseline.`,
        ]
      : []),
    `- Each cycle waits for camrelay's own log line saying the session ended (no sleeps); up to ${o.maxTails} WebRTC sessions waiting for a timeout overlap the next cycles. The stream is idle between cycles unless such a session overlaps, so ffmpeg starts and stops hundreds of times (column "ffmpeg starts").`,
    `- At each row: camrelay is left alone for ${idle} s (its CPU in that window is "CPU idle after"; the last row's is the CPU after the last viewer left), then the harness waits (up to 10 s) for it to be back at its baseline and shows what it found.`,
    '- "RSS" is VmRSS the moment the row\'s last cycle ended, "RSS low–high" the range sampled every 250 ms while the row\'s cycles ran, "peak RSS" VmHWM (the kernel\'s high-water mark since exec).' +
      (o.gc
        ? ` "RSS after GC" and "JS heap live / committed" are read after a full garbage collection forced after the ${idle} s window (\`bench/soak/gc-hook.cjs\`, preloaded into camrelay with \`NODE_OPTIONS=--require\`, runs \`gc()\` on SIGUSR2 and logs \`process.memoryUsage()\`). "net" is RSS after GC minus the heap V8 keeps committed but empty (heapTotal - heapUsed). The RSS criterion compares the net figure: a plain reading moves by 20-40 MB with how much heap V8 keeps committed (30 to 60 MB for 25 MB live, returned when its memory reducer decides to), which would hide a 10 MB leak or invent one; the net figure moves with what is live, JS or native. The live JS heap after GC is a criterion of its own.`
        : ''),
    '- CPU is utime+stime from /proc/<pid>/stat (it includes the debug logging). Live objects are `GET /api/debug/objects`; sockets are camrelay\'s fds matched against /proc/<pid>/net/{tcp,tcp6,udp,udp6}.',
    `- ${r.warmupAdded === undefined ? 'The baseline is taken right after startup, with no warm-up.' : 'The baseline is taken after a warm-up of one clean WebRTC cycle and one RTSP cycle (the notes say what the warm-up added).'}`,
    '',
    resultTable(r),
    '',
    criteriaList(r),
    '',
    notes(r),
  ];
  return lines.join('\n');
}

function leftOut(seconds: number[]): string {
  if (seconds.length === 0) return '';
  const which = seconds.map((i) => i + 1).join(' and ');
  return `; second ${which} left out: V8 ran a major GC of its own there (its memory reducer, after the phase's allocations), not work left running`;
}
