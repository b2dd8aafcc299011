// The shape every named error of a protocol layer (RTP, RTSP) has: a code its callers branch on
// and count, and a message that starts with that code, so that a log line says which check failed.

/** `<code>: <detail>`; each subclass sets its own `name` and narrows `Code` to its codes. */
export abstract class ProtocolError<Code extends string> extends Error {
  constructor(
    readonly code: Code,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}
