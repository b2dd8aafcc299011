// The WebRTC backend on node-datachannel (libdatachannel, native): DTLS, SRTP and ICE in C/C++,
// every peer on one UDP port (webrtc.listen, libjuice's UDP mux), as go2rtc does it.
// The package is an optional dependency with a prebuilt binary per platform. It is loaded into
// this process only with the first peer: loading it costs ~9 MB of resident memory (its 9 MB
// shared object, the dynamic linking of it against node's OpenSSL, its JS), which a camrelay
// nobody has watched yet need not carry. At startup a child process checks that it loads (so
// that 'auto' still falls back to werift where the binary does not), and webrtc.listen's port is
// held by a plain socket until the library takes it over.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
 * Owns the library's process-wide state: the shared UDP socket (held from start to close, by a
 * plain socket until the first peer and by a mux listener from then on, so the port is taken at
 * startup and stays the same) and libdatachannel's
 * threads, logger and wrappers, which cleanup() releases. close() after every peer has closed.
 *
 * libdatachannel starts its threads with the first peer and keeps them until cleanup(), among
 * them usrsctp's timer thread, which wakes every 10 ms whether or not any peer exists (0.35% of
 * a core here, for ever). So once the last peer has closed, the backend releases that state
 * too; the next peer starts it again (a few ms).
 */
export class NdcBackend extends Owned implements WebRtcBackend {
  readonly name = 'node-datachannel';
  /** The library, once the first peer loaded it (it stays loaded: a shared object is not unloaded). */
  #lib: NdcLib | undefined;
  #listener: IceUdpMuxListener | undefined;
  /** Holds webrtc.listen's port from start until the library's mux listener takes it over. */
  #hold: dgram.Socket | undefined;
  /** Peers created and not yet done (their native close reported, or given up on). */
  #peers = 0;
  /** libdatachannel's threads may be running: a peer was created since the last release. */
  #started = false;
  #releaseTimer: NodeJS.Immediate | undefined;
  /** Said once: a release skipped because a native close was never reported. */
  #warnedStuck = false;

  private constructor(
    readonly transport: NdcTransport,
    hold: dgram.Socket,
  ) {
    super('NdcBackend');
    this.#hold = hold;
  }

  /**
   * Checks (in a child process) that the library loads, throwing where its binary does not, and
   * binds the shared UDP port; the library itself is loaded by the first peer.
   */
  static async load(opts: NdcOptions): Promise<NdcBackend> {
    const wanted = transportFor(opts);
    await assertLoads();
    let hold: dgram.Socket;
    try {
      // libjuice reports a failed bind on stdout (its log reaches initLogger only once a peer
      // exists), so a taken port is found here, with Node's own error.
      hold = await holdUdp(wanted);
    } catch (e) {
      const where = `${wanted.bindAddress ?? ''}:${wanted.port}`;
      throw new NdcListenError(`webrtc.listen ${JSON.stringify(opts.listen)}: cannot bind UDP ${where} (${errorMessage(e)}; is the port in use?)`);
    }
    // Port 0: the system's pick, which the library's listener then binds in its turn.
    const transport = { ...wanted, port: hold.address().port };
    log.info({ udp: `${transport.bindAddress ?? ''}:${transport.port}` }, 'webrtc listening (one UDP port for every peer)');
    return new NdcBackend(transport, hold);
  }

  /** The library, loaded (synchronously, once) by the first peer; its mux listener takes over the port. */
  #library(): NdcLib {
    if (this.#lib) return this.#lib;
    const t0 = performance.now();
    const lib = loadLib();
    initLogger(lib);
    // Closing the held socket frees the port at once (the fd is closed synchronously), and the
    // listener binds it in the same turn of the event loop.
    this.#hold?.close();
    this.#hold = undefined;
    // Peers share the socket only when they ask for the same port and address as this listener.
    this.#listener = new lib.IceUdpMuxListener(this.transport.port, this.transport.bindAddress);
    this.#lib = lib;
    log.info({ library: lib.getLibraryVersion(), ms: Math.round(performance.now() - t0) }, 'node-datachannel loaded (first peer)');
    return lib;
  }

  /** Whether the library has been loaded into this process (tests: not before the first peer). */
  get loaded(): boolean {
    return this.#lib !== undefined;
  }

  createPeer(settings: WebRtcSettings): WebRtcPeer {
    if (this.closed) throw new Error('webrtc backend closed');
    if (this.#releaseTimer) clearImmediate(this.#releaseTimer);
    this.#releaseTimer = undefined;
    const lib = this.#library();
    this.#started = true;
    const peer = new NdcPeer(lib, settings, this.transport);
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
      this.#lib!.cleanup();
      this.#started = false;
      // cleanup() dropped the logger's callback; without one the library's warnings are lost.
      initLogger(this.#lib!);
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'node-datachannel cleanup failed');
      return;
    }
    log.debug({ ms: Math.round((performance.now() - t0) * 10) / 10 }, 'node-datachannel: no peer left, library threads released');
  }

  protected onClose(): void {
    if (this.#releaseTimer) clearImmediate(this.#releaseTimer);
    this.#releaseTimer = undefined;
    this.#hold?.close();
    this.#hold = undefined;
    this.#listener?.stop();
    this.#listener = undefined;
    if (!this.#lib) return;
    // Closes what is still open and waits (up to 10 s, blocking) for libdatachannel's threads.
    try {
      this.#lib.cleanup();
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

/** node-datachannel's entry, resolved without loading it. */
const requireHere = createRequire(import.meta.url);

function loadLib(): NdcLib {
  return (requireHere('node-datachannel') as { default: NdcLib }).default;
}

/** How long the child that loads the library may take (a cold disk, a slow box). */
const LOAD_CHECK_MS = 10_000;

/**
 * Imports the library in a child process (same node, options and environment, resolved from this
 * module's directory as an import here would be); rejects with the child's error message.
 */
async function assertLoads(): Promise<void> {
  const cwd = path.dirname(fileURLToPath(import.meta.url));
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', "await import('node-datachannel')"], { cwd, timeout: LOAD_CHECK_MS }, (err, _out, stderr) => {
      if (!err) return resolve();
      const line = stderr.split('\n').map((l) => /^\w*Error(?: \[\w+\])?: (.*)$/.exec(l)).find(Boolean);
      reject(new Error(line ? line[1] : `node-datachannel: the check that it loads failed (${errorMessage(err)})`));
    });
  });
}

/** Binds the port (port 0: one the system picks) and keeps it bound. Rejects with the bind error. */
async function holdUdp({ port, bindAddress }: NdcTransport): Promise<dgram.Socket> {
  if (bindAddress) return bindUdp(isIPv4(bindAddress) ? 'udp4' : 'udp6', port, bindAddress);
  // No address: libjuice binds [::] (both families), or 0.0.0.0 where IPv6 is off (containers).
  try {
    return await bindUdp('udp6', port, '::');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL' && code !== 'EPROTONOSUPPORT') throw e;
    return bindUdp('udp4', port, '0.0.0.0');
  }
}

async function bindUdp(type: 'udp4' | 'udp6', port: number, address: string): Promise<dgram.Socket> {
  const sock = dgram.createSocket(type);
  try {
    // A listener for good: an error on the held socket later must not be an unhandled one.
    await new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.bind(port, address, resolve);
    });
  } catch (e) {
    sock.close();
    throw e;
  }
  // Nothing is read from it (no peer sends before an answer); it must not keep the process up.
  sock.unref();
  return sock;
}

function transportFor(opts: NdcOptions): NdcTransport {
  if (opts.listen === '') return { port: 0, ...(opts.loopbackOnly && { bindAddress: '127.0.0.1' }) };
  const { host, port } = parseListen(opts.listen);
  const bindAddress = opts.loopbackOnly ? '127.0.0.1' : host;
  return { port, ...(bindAddress !== undefined && { bindAddress }) };
}
