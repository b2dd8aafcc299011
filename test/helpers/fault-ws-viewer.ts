// One offer on a go2rtc signalling WebSocket, completed the way a browser does it: the offer leaves
// before gathering, the answer is applied, candidates go both ways, and it ends when the werift
// peer is connected (ICE and DTLS done).
import { Viewer } from './werift-viewer.js';
import type { Msg, Signalling } from './signalling.js';
import { waitFor } from './wait.js';

const isAnswer = (m: Msg) => m.type === 'webrtc' && (m.value as { type?: string }).type === 'answer';

export async function offerOnSocket(sig: Signalling, viewer: Viewer, ms = 8000): Promise<void> {
  const from = sig.messages.length;
  const ours: string[] = [];
  let gathered!: () => void;
  const gatheredAll = new Promise<void>((r) => (gathered = r));
  const sdp = await viewer.offerTrickle((c) => (c ? ours.push(c) : gathered()));
  sig.send({ type: 'webrtc', value: { type: 'offer', sdp } });
  const answer = await sig.next((m) => isAnswer(m) || m.type === 'error', ms, from);
  if (answer.type === 'error') throw new Error(`offer refused: ${String(answer.value)}`);
  await viewer.answer((answer.value as { sdp: string }).sdp);
  await gatheredAll;
  for (const c of ours) sig.send({ type: 'webrtc/candidate', value: c });
  // camrelay's candidates trickle after its answer: apply each as it comes until connected.
  let next = sig.messages.indexOf(answer) + 1;
  await waitFor(
    'ICE and DTLS connected',
    async () => {
      for (; next < sig.messages.length; next++) {
        const m = sig.messages[next]!;
        // A candidate the peer cannot use is skipped, as a browser does.
        if (m.type === 'webrtc/candidate') await viewer.addCandidate(String(m.value)).catch(() => undefined);
      }
      return viewer.pc.connectionState === 'connected';
    },
    ms,
    10,
  );
}
