// One WebRTC connect/disconnect cycle of each kind the issue names, driven by a real werift peer.
// A cycle has a foreground part (until the viewer is done with camrelay) and a tail (until camrelay
// has ended the session on its side, found in its log). The harness waits for the foreground and
// may overlap tails, so the slow ends (timeouts) do not serialise the run.
import type { CamrelayProcess, LogLine } from '../../test/helpers/camrelay-process.js';
import { Viewer } from '../../test/helpers/werift-viewer.js';
import { waitFor } from '../../test/helpers/wait.js';
import { SoakWs, type WsMsg } from './ws-client.js';

// In this order, the timeouts of 'vanished' and 'no-ice' have mostly run out by the time 'ws-drop'
// needs the stream idle.
export const WEBRTC_KINDS = ['vanished', 'no-ice', 'clean', 'ws-drop'] as const;
export type WebRtcKind = (typeof WEBRTC_KINDS)[number];

export interface Deadlines {
  /** For an answer, for the first video packet. */
  mediaMs: number;
  /** For camrelay to end a session once the viewer is done (covers the connect/disconnect timeouts). */
  endMs: number;
}

export interface CycleEnd {
  /** The close reasons camrelay logged for the cycle's sessions. */
  reasons: string[];
  /** ws-drop only: whether the socket went before the answer (else the answer won the race). */
  abortedBeforeAnswer?: boolean;
}

export interface CycleStart {
  /** Video RTP packets the viewer received (0 for kinds that never connect). */
  videoPackets: number;
  tail: Promise<CycleEnd>;
}

const isAnswer = (m: WsMsg) => m.type === 'webrtc' || m.type === 'error';

function sessionClosed(app: CamrelayProcess, session: string, from: number, ms: number): Promise<LogLine> {
  return app.waitLog((l) => l.msg === 'webrtc session closed' && l.session === session, ms, from);
}

/** Runs the foreground of cycle `i`; rejects if it fails, and closes the local peer whatever happens. */
export async function webrtcCycle(app: CamrelayProcess, i: number, kind: WebRtcKind, d: Deadlines): Promise<CycleStart> {
  const from = app.logs.length;
  switch (kind) {
    case 'clean':
      return clean(app, from, d);
    case 'vanished':
      return overWs(app, i, from, d, 'vanished');
    case 'no-ice':
      return overWs(app, i, from, d, 'no-ice');
    case 'ws-drop':
      return wsDrop(app, i, from, d);
  }
}

/** WHEP: POST the offer, play until video arrives, DELETE the session. */
async function clean(app: CamrelayProcess, from: number, d: Deadlines): Promise<CycleStart> {
  const v = new Viewer();
  try {
    await v.connect(app.base, 'demo', 'sdp');
    const id = new URL(v.location ?? '', app.base).searchParams.get('id');
    if (!id) throw new Error(`no session id in Location ${v.location}`);
    await waitFor('video RTP', () => v.video.length > 0, d.mediaMs, 10);
    const status = await v.hangUp(app.base);
    if (status !== 200) throw new Error(`DELETE answered ${status}`);
    const videoPackets = v.video.length;
    return { videoPackets, tail: sessionClosed(app, id, from, d.endMs).then((l) => ({ reasons: [String(l.reason)] })) };
  } finally {
    await v.close();
  }
}

/**
 * go2rtc signalling with trickle ICE, as Home Assistant does it (the socket is closed once the
 * viewer has what it needs). 'vanished': the peer plays until video arrives, then closes without a
 * word; camrelay must notice the silence (disconnect timeout). 'no-ice': the viewer takes the
 * answer but never sends a candidate nor applies the answer; camrelay must give up (connect timeout).
 */
async function overWs(app: CamrelayProcess, i: number, from: number, d: Deadlines, kind: 'vanished' | 'no-ice'): Promise<CycleStart> {
  const ws = new SoakWs(app.port, 'demo', `camrelay-soak/${i}`);
  const v = new Viewer();
  try {
    await withDeadline(ws.opened, d.mediaMs, 'ws open');
    const wsId = await wsIdOf(app, ws.userAgent, from, d.mediaMs);
    const offer = await v.offerTrickle((c) => {
      if (kind === 'vanished') ws.send({ type: 'webrtc/candidate', value: c }).catch(() => undefined);
    });
    await ws.send({ type: 'webrtc', value: { type: 'offer', sdp: offer } });
    const answer = await ws.next(isAnswer, d.mediaMs);
    if (answer.type === 'error') throw new Error(`ws error: ${String(answer.value)}`);
    const answered = await app.waitLog((l) => l.msg === 'ws webrtc answered' && l.ws === wsId, d.mediaMs, from);
    const session = String(answered.session);
    let videoPackets = 0;
    if (kind === 'vanished') {
      await v.answer((answer.value as { sdp: string }).sdp);
      ws.onMessage((m) => {
        if (m.type === 'webrtc/candidate' && typeof m.value === 'string') v.addCandidate(m.value).catch(() => undefined);
      });
      await waitFor('video RTP', () => v.video.length > 0, d.mediaMs, 10);
      videoPackets = v.video.length;
    }
    return { videoPackets, tail: sessionClosed(app, session, from, d.endMs).then((l) => ({ reasons: [String(l.reason)] })) };
  } finally {
    await ws.end('close');
    await v.close();
  }
}

/**
 * The offer goes out and the socket goes with it, before any answer: dropped (TCP) or closed (close
 * frame), alternately. The caller makes sure the stream is idle: camrelay then has to start the
 * source before it can answer, and the socket goes during that start, as when someone closes the
 * page while the camera wakes. (On a live stream camrelay answers within the event-loop turn that
 * reads the offer, before it can see the close: that is an answered session, not a dropped offer.)
 */
async function wsDrop(app: CamrelayProcess, i: number, from: number, d: Deadlines): Promise<CycleStart> {
  const ws = new SoakWs(app.port, 'demo', `camrelay-soak/${i}`);
  const v = new Viewer();
  try {
    await withDeadline(ws.opened, d.mediaMs, 'ws open');
    const wsId = await wsIdOf(app, ws.userAgent, from, d.mediaMs);
    const offer = await v.offerTrickle(() => undefined);
    // No wait for the send to complete: the socket must go while camrelay is still answering. The
    // frame is written to the kernel at once, before the close, so camrelay still gets the offer.
    const sent = ws.send({ type: 'webrtc', value: { type: 'offer', sdp: offer } });
    await ws.end(Math.floor(i / 4) % 2 === 0 ? 'drop' : 'close');
    await sent.catch(() => undefined);
    const tail = (async (): Promise<CycleEnd> => {
      const ended = await app.waitLog((l) => l.msg === 'ws session ended' && l.ws === wsId, d.endMs, from);
      const answered = Array.isArray(ended.sessions) ? (ended.sessions as unknown[]).map(String) : [];
      if (answered.length > 0) {
        // The answer won the race: the session outlives the socket (as the API says) until its connect timeout.
        const reasons = await Promise.all(answered.map((s) => sessionClosed(app, s, from, d.endMs).then((l) => String(l.reason))));
        return { reasons, abortedBeforeAnswer: false };
      }
      // The open was aborted: its session closed synchronously just before this line.
      const at = app.logs.indexOf(ended);
      const aborted = app.logs.slice(Math.max(from, at - 8), at).find((l) => l.msg === 'webrtc session closed' && l.reason === 'viewer left before the answer');
      if (!aborted) throw new Error(`ws ${wsId} ended with no session: camrelay never saw the offer`);
      return { reasons: [String(aborted.reason)], abortedBeforeAnswer: true };
    })();
    return { videoPackets: 0, tail };
  } finally {
    await ws.end('close');
    await v.close();
  }
}

async function wsIdOf(app: CamrelayProcess, ua: string, from: number, ms: number): Promise<string> {
  const l = await app.waitLog((x) => x.msg === 'ws connected' && x.user_agent === ua, ms, from);
  return String(l.ws);
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms))) ]).finally(() => clearTimeout(t));
}
