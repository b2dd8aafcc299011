// DESCRIBE answers real cameras send that other players accept (issue 13 item 10), as a scripted
// camera serves them. Each carries H.264 on the payload type named `h264Pt`; parameter sets come
// in band, as many cameras send them, so no sprop-parameter-sets here.

export interface CameraSdp {
  name: string;
  sdp: string;
  /** The payload type the H.264 RTP packets carry. */
  h264Pt: number;
  /** Another payload type the camera also sends on the same channel (a second codec), if any. */
  otherPt?: number;
}

const crlf = (lines: string[]): string => lines.join('\r\n') + '\r\n';

export const CAMERA_SDPS: CameraSdp[] = [
  {
    // A popular home camera brand adds a vendor metadata section whose formats are not numbers.
    name: 'vendor application section with non-numeric formats',
    h264Pt: 96,
    sdp: crlf([
      'v=0',
      'o=- 14665860 31787219 1 IN IP4 127.0.0.1',
      's=Session streamed by "vendor"',
      'c=IN IP4 0.0.0.0',
      't=0 0',
      'a=control:*',
      'm=video 0 RTP/AVP 96',
      'a=rtpmap:96 H264/90000',
      'a=fmtp:96 packetization-mode=1',
      'a=control:track1',
      'm=application/x-vendor 0 RTP/AVP smart/0/25000',
      'a=rtpmap:95 x-vendor/90000',
      'a=control:track2',
    ]),
  },
  {
    name: 'no v=, o=, s= or t= lines',
    h264Pt: 96,
    sdp: crlf(['m=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=fmtp:96 packetization-mode=1', 'a=control:track1']),
  },
  {
    // MPEG-4 part 2 first, H.264 second, on one m= line: camrelay must pick 97.
    name: 'one m=video line with MP4V-ES and H.264',
    h264Pt: 97,
    otherPt: 96,
    sdp: crlf([
      'v=0',
      'o=- 0 0 IN IP4 127.0.0.1',
      's=two codecs',
      't=0 0',
      'm=video 0 RTP/AVP 96 97',
      'a=rtpmap:96 MP4V-ES/90000',
      'a=fmtp:96 profile-level-id=1;config=000001B001000001B58913000001000000012000C48D8800F50A041E1463000001B24C61766335382E35342E313030',
      'a=rtpmap:97 H264/90000',
      'a=fmtp:97 packetization-mode=1',
      'a=control:track1',
    ]),
  },
];
