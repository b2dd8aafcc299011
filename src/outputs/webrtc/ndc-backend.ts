// The WebRTC backend on node-datachannel (libdatachannel, native): DTLS, SRTP and ICE in C/C++,
// every peer on one UDP port (webrtc.listen, libjuice's UDP mux), as go2rtc does it.
// The package is an optional dependency with a prebuilt binary per platform: it is imported only
// here, lazily, so that a machine where the binary does not load still runs on werift.
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Owned } from '../../core/owned.js';
import { errorMessage } from '../../core/errors.js';
import { log } from '../../core/log.js';
import { parseListen } from '../../core/listen.js';
import type { WebRtcBackend, WebRtcPeer } from './backend.js';
import { NdcPeer } from './ndc-peer.js';
import { nativeLive, type NdcLib, type NdcTransport } from './ndc-native.js';
import type { WebRtcSettings } from './settings.js';

export interface NdcOptions {
  /** webrtc.listen: ':8555', 'host:port'; '' or port 0 = a port the system picks (still one). */
  listen: string;
  /** webrtc.loopback_only: bind 127.0.0.1, so that the only candidate is 127.0.0.1. */
  loopbackOnly?: boolean;
}

type IceUdpMuxListener = InstanceType<NdcLib['IceUdpMuxListener']>;

/** The library loads, but webrtc.listen cannot be bound: a configuration problem, not a platform one. */
export class NdcListenError extends Error {
  override name = 'NdcListenError';
}

/**
 * Owns the library's process-wide state: the shared UDP socket (held open by a mux listener from
 * start to close, so the port is taken at startup and stays the same) and libdatachannel's
 * threads, logger and wrappers, which cleanup() releases. close() after every peer has closed.
 *
 * libdatachannel starts its threads with the first peer and keeps them until cleanup(), among
 * them usrsctp's timer thread, which wakes every 10 ms whether or not any peer exists (0.35% of
 * a core here, for ever). So once the last peer has closed, the backend releases that state
 * too; the next peer starts it again (a few ms).
 */
export class NdcBackend extends Owned implements WebRtcBackend {
  readonly name = 'node-datachannel';
  #listener: IceUdpMuxListener | undefined;
  /** Peers created and not yet done (their native close reported, or given up on). */
  #peers = 0;
  /** libdatachannel's threads may be running: a peer was created since the last release. */
  #started = false;
  #releaseTimer: NodeJS.Immediate | undefined;
  /** Said once: a release skipped because a native close was never reported. */
  #warnedStuck = false;

  private constructor(
    private readonly lib: NdcLib,
    readonly transport: NdcTransport,
    listener: IceUdpMuxListener,
  ) {
    super('NdcBackend');
    this.#listener = listener;
  }

  /** Loads the library (throws where its binary does not load) and binds the shared UDP port. */
  static async load(opts: NdcOptions): Promise<NdcBackend> {
    const lib = (await import('node-datachannel')).default;
    const transport = transportFor(opts);
    initLogger(lib);
    let listener: IceUdpMuxListener;
    try {
      // libjuice reports a failed bind on stdout (its log reaches initLogger only once a peer
      // exists), so a taken port is found here first, with Node's own error.
      await assertUdpFree(transport);
      // Peers share the socket only when they ask for the same port and address as this listener.
      listener = new lib.IceUdpMuxListener(transport.port, transport.bindAddress);
    } catch (e) {
      lib.cleanup();
      const where = `${transport.bindAddress ?? ''}:${transport.port}`;
      throw new NdcListenError(`webrtc.listen ${JSON.stringify(opts.listen)}: cannot bind UDP ${where} (${errorMessage(e)}; is the port in use?)`);
    }
    log.info({ udp: `${transport.bindAddress ?? ''}:${transport.port}`, library: lib.getLibraryVersion() }, 'webrtc listening (one UDP port for every peer)');
    return new NdcBackend(lib, transport, listener);
  }

  createPeer(settings: WebRtcSettings): WebRtcPeer {
    if (this.closed) throw new Error('webrtc backend closed');
    if (this.#releaseTimer) clearImmediate(this.#releaseTimer);
    this.#releaseTimer = undefined;
    this.#started = true;
    const peer = new NdcPeer(this.lib, settings, this.transport);
    this.#peers++;
    void peer.done.then(() => {
      if (--this.#peers === 0 && !this.closed) {
        // Not from inside the native callback that settled `done`: cleanup() frees its wrapper.
        this.#releaseTimer = setImmediate(() => this.#releaseIdle());
      }
    });
    return peer;
  }

  /** The number of peers alive (tests, debugging). */
  get peers(): number {
    return this.#peers;
  }

  /** Whether libdatachannel's threads are released (no peer since the last release). */
  get released(): boolean {
    return !this.#started;
  }

  #releaseIdle(): void {
    this.#releaseTimer = undefined;
    if (this.closed || this.#peers > 0 || !this.#started) return;
    // A wrapper whose close was never reported would make cleanup() wait for it, blocking the
    // event loop up to 10 s: keep the threads rather than risk that (shutdown still cleans up).
    if (nativeLive.size > 0) {
      if (!this.#warnedStuck) log.warn({ wrappers: nativeLive.size }, 'node-datachannel: a closed peer never reported its close; the library keeps its threads until shutdown');
      this.#warnedStuck = true;
      return;
    }
    const t0 = performance.now();
    try {
      this.lib.cleanup();
      this.#started = false;
      // cleanup() dropped the logger's callback; without one the library's warnings are lost.
      initLogger(this.lib);
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'node-datachannel cleanup failed');
      return;
    }
    log.debug({ ms: Math.round((performance.now() - t0) * 10) / 10 }, 'node-datachannel: no peer left, library threads released');
  }

  protected onClose(): void {
    if (this.#releaseTimer) clearImmediate(this.#releaseTimer);
    this.#releaseTimer = undefined;
    this.#listener?.stop();
    this.#listener = undefined;
    // Closes what is still open and waits (up to 10 s, blocking) for libdatachannel's threads.
    try {
      this.lib.cleanup();
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'node-datachannel cleanup failed');
    }
    // cleanup() has unlisted every wrapper: they may be collected now.
    nativeLive.clear();
  }
}

/** libdatachannel logs to stdout unless given a logger (libjuice too, until a first peer has
 * set its handler); stdout is our JSON log. */
function initLogger(lib: NdcLib): void {
  lib.initLogger('Warning', (level, message) => {
    const l = log.child({ lib: 'libdatachannel' });
    if (level === 'Warning') l.warn(message);
    else l.error(message);
  });
}

/** Binds and releases the port (none to check for port 0). Rejects with the bind error. */
async function assertUdpFree({ port, bindAddress }: NdcTransport): Promise<void> {
  if (port === 0) return;
  if (bindAddress) return tryBind(isIPv4(bindAddress) ? 'udp4' : 'udp6', port, bindAddress);
  // No address: libjuice binds [::] (both families), or 0.0.0.0 where IPv6 is off (containers).
  try {
    await tryBind('udp6', port, '::');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EPROTONOSUPPORT') throw e;
    await tryBind('udp4', port, '0.0.0.0');
  }
}

async function tryBind(type: 'udp4' | 'udp6', port: number, address: string): Promise<void> {
  const sock = dgram.createSocket(type);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, address, resolve);
    });
  } finally {
    sock.close();
  }
}

function transportFor(opts: NdcOptions): NdcTransport {
  if (opts.listen === '') return { port: 0, ...(opts.loopbackOnly && { bindAddress: '127.0.0.1' }) };
  const { host, port } = parseListen(opts.listen);
  const bindAddress = opts.loopbackOnly ? '127.0.0.1' : host;
  return { port, ...(bindAddress !== undefined && { bindAddress }) };
}
