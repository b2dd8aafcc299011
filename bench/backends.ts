// Which of camrelay's WebRTC backends this checkout runs. `webrtc.backend` is written to the
// config only when a backend is asked for; a camrelay that does not know the key yet runs werift
// only, and is benchmarked as it is (labelled so).
import { Camrelay, type Backend } from './camrelay.js';
import type { BackendChoice } from './context.js';

export async function probeBackends(wanted: 'werift' | 'node-datachannel' | 'both', log: (s: string) => void): Promise<BackendChoice[]> {
  const asked: Backend[] = wanted === 'both' ? ['node-datachannel', 'werift'] : [wanted];
  const out: BackendChoice[] = [];
  for (const backend of asked) {
    const problem = await tryStart(backend);
    if (problem === undefined) {
      out.push({ label: backend, backend });
      continue;
    }
    if (backend === 'werift' && /unknown key "webrtc\.backend"/.test(problem)) {
      log('camrelay has no webrtc.backend setting yet: werift (its only backend) runs with no backend key');
      out.push({ label: 'werift (camrelay default, no webrtc.backend key)' });
      continue;
    }
    log(`backend ${backend} is left out: ${problem.split('\n').slice(0, 3).join(' ')}`);
  }
  return out;
}

/** Starts camrelay on the backend; undefined when it started and said it runs that backend. */
async function tryStart(backend: Backend): Promise<string | undefined> {
  let c: Camrelay | undefined;
  try {
    c = await Camrelay.start({ streams: {}, backend });
    const said = c.backendInLog();
    if (said !== undefined && said !== backend) return `camrelay runs ${said} when asked for ${backend}`;
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await c?.stop();
  }
}
