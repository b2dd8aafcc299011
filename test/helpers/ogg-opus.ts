// Opus packets out of an Ogg file (RFC 3533 pages, RFC 7845 Ogg Opus), for tests that make their
// input with ffmpeg (`-c:a libopus -f ogg`): one logical stream, packets joined across pages.
import { execFileSync } from 'node:child_process';

export interface OggOpus {
  /** The OpusHead packet's fields (RFC 7845 5.1). */
  head: { channels: number; preSkip: number; inputSampleRate: number };
  /** The audio packets, in order, OpusHead and OpusTags left out. */
  packets: Buffer[];
}

/** Splits an Ogg byte stream into its packets (a 255-byte lacing value continues the packet). */
export function oggPackets(file: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  let partial: Buffer[] = [];
  let offset = 0;
  while (offset < file.length) {
    if (file.toString('latin1', offset, offset + 4) !== 'OggS') throw new Error(`no Ogg page at byte ${offset}`);
    const segments = file[offset + 26]!;
    const table = file.subarray(offset + 27, offset + 27 + segments);
    let body = offset + 27 + segments;
    for (const lacing of table) {
      partial.push(file.subarray(body, body + lacing));
      body += lacing;
      if (lacing < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    offset = body;
  }
  return packets;
}

export function parseOggOpus(file: Buffer): OggOpus {
  const [head, tags, ...packets] = oggPackets(file);
  if (!head || head.toString('latin1', 0, 8) !== 'OpusHead') throw new Error('the first packet is not OpusHead');
  if (!tags || tags.toString('latin1', 0, 8) !== 'OpusTags') throw new Error('the second packet is not OpusTags');
  return { head: { channels: head[9]!, preSkip: head.readUInt16LE(10), inputSampleRate: head.readUInt32LE(12) }, packets };
}

/**
 * Encodes `seconds` of a sine with ffmpeg's libopus (20 ms frames) and returns its packets. The
 * channel count is what the encoder signals; a browser's microphone is usually 1 in 2-signalled.
 */
export function opusTone(opts: { frequency: number; seconds: number; channels?: 1 | 2; bitrate?: string }): OggOpus {
  const ogg = execFileSync(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin'],
      ...['-f', 'lavfi', '-i', `sine=frequency=${opts.frequency}:sample_rate=48000`],
      ...['-t', String(opts.seconds), '-ac', String(opts.channels ?? 2)],
      ...['-c:a', 'libopus', '-b:a', opts.bitrate ?? '32k', '-frame_duration', '20', '-f', 'ogg', 'pipe:1'],
    ],
    { maxBuffer: 64 << 20 },
  );
  return parseOggOpus(ogg);
}
