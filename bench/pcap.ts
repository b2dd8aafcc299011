// A reader of classic pcap files (what `tcpdump -w` writes), enough for the relay benchmark's
// wire timestamps: IPv4 over Ethernet, Linux cooked capture (SLL, SLL2), BSD loopback or raw IP;
// TCP and UDP headers and whatever payload the snapshot length kept. No dependency.

export interface PcapPacket {
  /** Capture time: whole seconds since the epoch, and nanoseconds within the second. */
  sec: number;
  nsec: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  proto: 'tcp' | 'udp';
  /** TCP only: sequence number and flags (SYN 0x02, ACK 0x10, FIN 0x01, RST 0x04). */
  seq: number;
  flags: number;
  /** The payload's length on the wire (from the IP header), however much of it was captured; -1 unknown. */
  payloadLength: number;
  /** The captured part of the payload (cut by the snapshot length). */
  payload: Buffer;
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;

/** Link-layer header → offset of the IPv4 header, or undefined when the frame is not IPv4. */
type LinkDecoder = (b: Buffer, at: number, len: number) => number | undefined;

const LINKS: Record<number, LinkDecoder> = {
  // Ethernet (also what Linux gives for `-i lo`), with at most one 802.1Q tag.
  1: (b, at, len) => {
    if (len < 14) return undefined;
    let type = b.readUInt16BE(at + 12);
    let off = 14;
    if (type === ETHERTYPE_VLAN && len >= 18) {
      type = b.readUInt16BE(at + 16);
      off = 18;
    }
    return type === ETHERTYPE_IPV4 ? at + off : undefined;
  },
  // BSD loopback: a 4-byte address family in the writer's byte order; AF_INET is 2 everywhere.
  0: (b, at, len) => (len >= 4 && (b.readUInt32LE(at) === 2 || b.readUInt32BE(at) === 2) ? at + 4 : undefined),
  // Raw IP (LINKTYPE_RAW, and DLT_RAW's numbers on some systems), IPv4 only (228).
  101: (b, at, len) => (len >= 1 && b[at]! >> 4 === 4 ? at : undefined),
  12: (b, at, len) => (len >= 1 && b[at]! >> 4 === 4 ? at : undefined),
  14: (b, at, len) => (len >= 1 && b[at]! >> 4 === 4 ? at : undefined),
  228: (_b, at) => at,
  // Linux cooked capture v1: 16 bytes, protocol last.
  113: (b, at, len) => (len >= 16 && b.readUInt16BE(at + 14) === ETHERTYPE_IPV4 ? at + 16 : undefined),
  // Linux cooked capture v2: 20 bytes, protocol first.
  276: (b, at, len) => (len >= 20 && b.readUInt16BE(at) === ETHERTYPE_IPV4 ? at + 20 : undefined),
};

export interface PcapFile {
  linkType: number;
  snapLength: number;
  /** Records in the file, IPv4 TCP/UDP or not. */
  records: number;
  packets: PcapPacket[];
}

/** Every IPv4 TCP and UDP packet of a classic pcap file, in file (capture) order. */
export function readPcap(file: Buffer): PcapFile {
  if (file.length < 24) throw new Error('pcap: shorter than its 24-byte header');
  const magicBE = file.readUInt32BE(0);
  if (magicBE === 0x0a0d0d0a) throw new Error('pcap: this is pcapng; tcpdump -w writes classic pcap');
  const MAGICS: Record<number, { le: boolean; nano: boolean }> = {
    0xa1b2c3d4: { le: false, nano: false },
    0xd4c3b2a1: { le: true, nano: false },
    0xa1b23c4d: { le: false, nano: true },
    0x4d3cb2a1: { le: true, nano: true },
  };
  const m = MAGICS[magicBE];
  if (!m) throw new Error(`pcap: unknown magic 0x${magicBE.toString(16)}`);
  const u32 = (o: number) => (m.le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const snapLength = u32(16);
  // The upper bits of the link-type field may hold an FCS length (pcap-savefile(5)).
  const linkType = u32(20) & 0x0fffffff;
  const link = LINKS[linkType];
  if (!link) throw new Error(`pcap: link type ${linkType} is not read here`);
  const packets: PcapPacket[] = [];
  let records = 0;
  for (let off = 24; off + 16 <= file.length; ) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const at = off + 16;
    off = at + incl;
    if (off > file.length) break; // the last record cut short (tcpdump stopped mid-write)
    records++;
    const ip = link(file, at, incl);
    if (ip === undefined) continue;
    const p = decodeIpv4(file, ip, at + incl);
    if (!p) continue;
    packets.push({ sec, nsec: m.nano ? frac : frac * 1000, ...p });
  }
  return { linkType, snapLength, records, packets };
}

function decodeIpv4(b: Buffer, ip: number, end: number): Omit<PcapPacket, 'sec' | 'nsec'> | undefined {
  if (ip + 20 > end || b[ip]! >> 4 !== 4) return undefined;
  const ihl = (b[ip]! & 0x0f) * 4;
  const total = b.readUInt16BE(ip + 2);
  // A fragment after the first has no transport header.
  if ((b.readUInt16BE(ip + 6) & 0x1fff) !== 0) return undefined;
  const protocol = b[ip + 9]!;
  const src = `${b[ip + 12]}.${b[ip + 13]}.${b[ip + 14]}.${b[ip + 15]}`;
  const dst = `${b[ip + 16]}.${b[ip + 17]}.${b[ip + 18]}.${b[ip + 19]}`;
  const t = ip + ihl;
  // A total length of 0 is a GSO packet over 64 KiB (BIG TCP): its length is not known here.
  const ipPayload = total === 0 ? -1 : total - ihl;
  if (protocol === 6) {
    if (t + 20 > end) return undefined;
    const dataOff = (b[t + 12]! >> 4) * 4;
    return {
      src,
      dst,
      proto: 'tcp',
      srcPort: b.readUInt16BE(t),
      dstPort: b.readUInt16BE(t + 2),
      seq: b.readUInt32BE(t + 4),
      flags: b[t + 13]!,
      payloadLength: ipPayload < 0 ? -1 : Math.max(0, ipPayload - dataOff),
      payload: b.subarray(Math.min(end, t + dataOff), end),
    };
  }
  if (protocol === 17) {
    if (t + 8 > end) return undefined;
    return {
      src,
      dst,
      proto: 'udp',
      srcPort: b.readUInt16BE(t),
      dstPort: b.readUInt16BE(t + 2),
      seq: 0,
      flags: 0,
      payloadLength: Math.max(0, b.readUInt16BE(t + 4) - 8),
      payload: b.subarray(t + 8, end),
    };
  }
  return undefined;
}
