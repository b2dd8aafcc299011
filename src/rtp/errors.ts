// Named errors of the RTP layer. Each one means "drop this packet (or this NAL)", never "close".
import { ProtocolError } from '../core/protocol-error.js';

export type RtpPacketErrorCode = 'RtpTruncated' | 'RtpBadVersion' | 'RtpBadPadding' | 'RtpBadExtension';

/** A packet that does not parse as RTP (RFC 3550 5.1). */
export class RtpPacketError extends ProtocolError<RtpPacketErrorCode> {
  override name = 'RtpPacketError';
}

export type DepacketizeErrorCode =
  | 'EmptyPayload'
  | 'UnsupportedNalType'
  | 'StapTruncated'
  | 'FuaTruncated'
  | 'FuaWithoutStart'
  | 'FuaSequenceGap'
  | 'FuaUnfinished'
  | 'NalTooLarge'
  | 'AccessUnitTooLarge'
  // H.265 (RFC 7798): aggregation packets and fragmentation units.
  | 'ApTruncated'
  | 'FuTruncated'
  | 'FuWithoutStart'
  | 'FuSequenceGap'
  | 'FuUnfinished'
  // AAC (RFC 3640): AU headers and fragmented access units.
  | 'AuHeadersTruncated'
  | 'AuDataTruncated'
  | 'AuFragmentBroken';

/** A payload the depacketizer cannot use; what was broken has been dropped, the state is clean. */
export class DepacketizeError extends ProtocolError<DepacketizeErrorCode> {
  override name = 'DepacketizeError';
}
