// Named errors of the RTSP layer. A parse or protocol error closes only the connection it came from.
import { ProtocolError } from '../core/protocol-error.js';

export type RtspParseErrorCode =
  | 'BadStartLine'
  | 'BadHeaderLine'
  | 'BadHeaderValue'
  | 'HeaderTooLarge'
  | 'BadContentLength'
  | 'BodyTooLarge';

/** The byte stream is not RTSP: the reader cannot resynchronise, so the connection must close. */
export class RtspParseError extends ProtocolError<RtspParseErrorCode> {
  override name = 'RtspParseError';
}

export type RtspProtocolErrorCode =
  | 'ChannelNotSetUp'
  | 'IdleTimeout'
  | 'UnknownPath'
  | 'AnnounceRefused'
  | 'HandlerFailed'
  | 'HeaderTimeout'
  | 'TooManyConnections'
  | 'PublishForbidden';

/** A well-formed message that breaks the protocol (data on a channel never set up, silence, ...). */
export class RtspProtocolError extends ProtocolError<RtspProtocolErrorCode> {
  override name = 'RtspProtocolError';
}

export class SdpError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'SdpError';
  }
}

export class RtspListenError extends Error {
  constructor(
    readonly address: string,
    readonly code: string | undefined,
    detail: string,
  ) {
    super(`RTSP server cannot listen on ${address}: ${detail}`);
    this.name = 'RtspListenError';
  }
}
