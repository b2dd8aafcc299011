// webrtc.backend: which library runs the peer connections. 'auto' prefers node-datachannel
// (native DTLS/SRTP: far less CPU per viewer; one UDP port for all) where its prebuilt
// binary loads, and falls back to werift (pure TypeScript, runs everywhere) where it does not.
import { log } from '../../core/log.js';
import type { WebRtcBackend } from './backend.js';
import { NdcBackend, NdcListenError, type NdcOptions } from './ndc-backend.js';

/** webrtc.backend's values (the config layer validates them). */
export type BackendChoice = 'auto' | 'werift' | 'node-datachannel';

export interface SelectedBackend {
  backend: WebRtcBackend;
  /** Why this one runs, for the startup log. */
  reason: string;
  /** Releases the library (node-datachannel: its UDP port and native threads). After every peer closed. */
  close(): Promise<void>;
}

/** How node-datachannel is loaded; tests pass one that fails. */
export type NdcLoader = (opts: NdcOptions) => Promise<NdcBackend>;

export async function selectBackend(choice: BackendChoice, opts: NdcOptions, load: NdcLoader = (o) => NdcBackend.load(o)): Promise<SelectedBackend> {
  if (choice === 'werift') return werift('webrtc.backend: werift');
  let ndc: NdcBackend;
  try {
    ndc = await load(opts);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    // Asked for by name, a failure is the user's to see; 'auto' carries on with what runs, but a
    // port that cannot be bound is the config's problem on any backend.
    if (e instanceof NdcListenError) throw e;
    if (choice === 'node-datachannel') throw new Error(`webrtc.backend node-datachannel: ${why}`);
    log.warn({ err: why }, 'node-datachannel does not load here; WebRTC runs on werift');
    return werift(`auto: node-datachannel did not load (${firstLine(why)})`);
  }
  return {
    backend: ndc,
    reason: choice === 'auto' ? 'auto: node-datachannel loaded' : 'webrtc.backend: node-datachannel',
    close: async () => {
      ndc.close();
      await ndc.done;
    },
  };
}

// Loaded only when it runs: werift and its dependencies add about 25 MB to a process that
// does not use them.
async function werift(reason: string): Promise<SelectedBackend> {
  const { weriftBackend } = await import('./werift-backend.js');
  return { backend: weriftBackend, reason, close: async () => undefined };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 200);
}
