// One RTSP player cycle: DESCRIBE, SETUP (interleaved TCP), PLAY, some video RTP, then either a
// TEARDOWN followed by closing the connection (a polite player) or just closing it (a player that
// was killed), alternately. The cycle ends when camrelay has logged the end of both the session
// and the connection.
import type { CamrelayProcess } from '../../test/helpers/camrelay-process.js';
import { RawRtspPlayer } from '../../test/helpers/rtsp-player.js';
import { waitFor } from '../../test/helpers/wait.js';

export const RTSP_KINDS = ['teardown', 'close'] as const;
export type RtspKind = (typeof RTSP_KINDS)[number];

export async function rtspCycle(app: CamrelayProcess, kind: RtspKind, d: { mediaMs: number; endMs: number }): Promise<{ videoPackets: number; reason: string }> {
  const from = app.logs.length;
  const p = new RawRtspPlayer(app.rtspPort);
  try {
    const sdp = await p.play(`rtsp://127.0.0.1:${app.rtspPort}/demo`);
    const video = [...sdp.matchAll(/^m=(\w+)/gm)].findIndex((m) => m[1] === 'video');
    if (video < 0) throw new Error('the SDP has no video');
    await waitFor('video RTP', () => p.track(video).length > 0, d.mediaMs, 10);
    const videoPackets = p.track(video).length;
    const remote = `127.0.0.1:${p.socket.localPort}`;
    if (kind === 'teardown') {
      const r = await p.request('TEARDOWN', `rtsp://127.0.0.1:${app.rtspPort}/demo`);
      if (r.status !== 200) throw new Error(`TEARDOWN answered ${r.status}`);
    }
    p.destroy();
    const closed = await app.waitLog((l) => l.msg === 'rtsp session closed' && l.remote === remote, d.endMs, from);
    await app.waitLog((l) => l.msg === 'connection closed' && l.remote === remote, d.endMs, from);
    return { videoPackets, reason: String(closed.reason) };
  } finally {
    p.destroy();
  }
}
