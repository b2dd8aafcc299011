// How often a viewer (headless Chromium) sends anything to camrelay while it receives video: the
// ground for webrtc.timeouts.disconnect (issue 13 item 6). Chromium plays the demo stream through
// a UDP relay on loopback that stamps every datagram camrelay receives from it; per backend the
// largest gap between successive datagrams is printed, for all of them (what werift sees: STUN,
// DTLS, SRTCP) and for SRTCP only (all node-datachannel lets camrelay see), plus STUN alone.
//
//   node --import tsx bench/viewer-gaps.ts [--seconds 25] [--backend werift|node-datachannel]
import { parseArgs } from 'node:util';
import { CamrelayProcess, testConfig } from '../test/helpers/camrelay-process.js';
import { ChromiumRelayViewer } from '../test/helpers/chromium-relay-viewer.js';
import type { DatagramKind } from '../test/helpers/udp-relay.js';
import { waitFor } from '../test/helpers/wait.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '25' },
    backend: { type: 'string', multiple: true },
  },
});
const seconds = Number(values.seconds);
if (!(seconds >= 5 && seconds <= 600)) throw new Error(`--seconds: 5 to 600, got ${values.seconds}`);
const backends = values.backend ?? ['werift', 'node-datachannel'];

const DEMO = 'ffmpeg:virtual?video=testsrc2&size=640x360&clock=0&audio=sine#video=h264#audio=opus';

interface Row {
  backend: string;
  seconds: number;
  counts: Record<string, number>;
  gapAll: number;
  gapRtcp: number;
  gapStun: number;
  rtcpPerSecond: number;
}

async function measure(backend: string): Promise<Row> {
  process.env.CAMRELAY_TEST_WEBRTC_BACKEND = backend;
  // A long disconnect timeout: this measures the viewer, camrelay must not end the session.
  const app = await CamrelayProcess.start(testConfig({ demo: DEMO }).replace('disconnect: 2s', 'disconnect: 60s'));
  let v: ChromiumRelayViewer | undefined;
  try {
    v = await ChromiumRelayViewer.play(app.base, 'demo');
    const viewer = v;
    await waitFor('video decoded', async () => (await viewer.videoWidth()) > 0, 20000, 100);
    // The first seconds (ICE, DTLS, the first keyframe) are not steady state.
    await new Promise((r) => setTimeout(r, 2000));
    const from = performance.timeOrigin + performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const to = performance.timeOrigin + performance.now();
    const counts: Record<string, number> = {};
    for (const a of v.relay.fromViewer) if (a.at >= from && a.at <= to) counts[a.kind] = (counts[a.kind] ?? 0) + 1;
    const gap = (k?: DatagramKind[]) => Math.round(viewer.relay.largestGap(k, from, to));
    return {
      backend,
      seconds,
      counts,
      gapAll: gap(),
      gapRtcp: gap(['rtcp']),
      gapStun: gap(['stun']),
      rtcpPerSecond: Number(((counts.rtcp ?? 0) / seconds).toFixed(1)),
    };
  } finally {
    await v?.close();
    await app.stop();
  }
}

const rows: Row[] = [];
for (const b of backends) {
  const row = await measure(b);
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.log('\n| backend | seconds | SRTCP/s | largest gap, all datagrams | largest gap, SRTCP only | largest gap, STUN only | datagrams by kind |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.backend} | ${r.seconds} | ${r.rtcpPerSecond} | ${r.gapAll} ms | ${r.gapRtcp} ms | ${r.gapStun} ms | ${JSON.stringify(r.counts)} |`);
}
