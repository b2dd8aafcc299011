// What every node-datachannel object shares: the loaded library, the one UDP socket all peers use,
// and the wrappers whose native side is still open. Every wrapper holds N-API thread-safe
// functions that keep Node's event loop alive (a track's until we close() it ourselves, the peer
// connection's until its 'closed' state was delivered), and a track wrapper that is
// garbage-collected before its 'closed' callback ran stays in the library's list of live
// wrappers: cleanup() then touches freed memory (a SIGSEGV/SIGBUS at shutdown, seen here after a
// few dozen viewers). So every wrapper is held in `nativeLive` until the library says it closed.

/** The loaded library object (node-datachannel's default export). */
export type NdcLib = (typeof import('node-datachannel'))['default'];

/** Where every peer's ICE runs: one UDP socket for all of them (libjuice's UDP mux). */
export interface NdcTransport {
  port: number;
  bindAddress?: string;
}

/**
 * Wrappers whose native side has not reported its close yet, held so that the garbage collector
 * cannot free them first (see the header). NdcBackend empties it after the library's cleanup().
 */
export const nativeLive = new Set<object>();
