// Mutations of RTSP client sessions (requests and interleaved frames) for fuzzing camrelay's RTSP
// server: byte edits, truncation, duplicated and huge header fields, CR/LF/NUL injection, bad
// numbers in the fields the server reads, and interleaved frames on channels never set up.
// Deterministic for a seed (mulberry32), so a failing run replays with the same FUZZ_SEED.
import { ByteMutator } from './byte-mutator.js';

export { prng } from './byte-mutator.js';

const BAD_NUMBERS = ['0', '-1', '1.5', '0x10', '1e9', 'NaN', '', ' ', '+1', '65535', '65536', '4294967295', '4294967296', '99999999999999999999', '١٢'];
const BAD_FIELDS: Record<string, string[]> = {
  cseq: BAD_NUMBERS,
  'content-length': [...BAD_NUMBERS, '65537', '1000000'],
  session: ['', ';', ';timeout=x', 'x'.repeat(300), '0000000000000000', '../../etc', 'abc;timeout=-1'],
  transport: [
    '', ';', 'RTP/AVP/TCP;unicast;interleaved=300-301', 'RTP/AVP/TCP;interleaved=-1-0', 'RTP/AVP/TCP;interleaved=254-255',
    'RTP/AVP/TCP;interleaved=1-0', 'RTP/AVP/TCP;interleaved=0', 'RTP/AVP;unicast;client_port=0-0', 'RTP/AVP;unicast;client_port=70000-70001',
    'RTP/AVP;unicast;client_port=1-2', 'RTP/AVP;multicast;destination=224.0.0.1;port=5000-5001', 'RTP/AVP/UDP;unicast;client_port=5000-4999',
    'RTP/SAVP;unicast', 'RAW/RAW/UDP;unicast', 'RTP/AVP/TCP;unicast;interleaved=0-1,RTP/AVP;unicast;client_port=9-10',
    'RTP/AVP;unicast;client_port=' + '9'.repeat(40), 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record;mode=play',
  ],
  range: ['npt=abc-', 'npt=-5', 'npt=99999999999999999999-', 'clock=19961108T142300Z-', 'smpte=0:10:00-', 'npt=now-now', 'npt=1e308-', ''],
  'content-type': ['', 'application/sdp; charset=\u00ff', 'text/html', 'application/sdp'.repeat(100)],
  authorization: ['Digest', 'Digest username=', 'Basic !!!!', 'Basic ' + 'A'.repeat(5000), 'Digest nonce="x", uri="/", response="y", nc=zz, qop=auth'],
};

export interface RtspMutation {
  /** What was done, for the report. */
  kind: string;
  bytes: Buffer;
}

export class RequestMutator extends ByteMutator {
  /** One mutated copy of a message (a request or an interleaved frame) of the corpus. */
  mutate(msg: Buffer, corpus: readonly Buffer[]): RtspMutation {
    if (msg[0] === 0x24) return this.#interleaved(msg);
    const r = this.int(10);
    if (r < 3) return { kind: 'bytes', bytes: this.bytes(msg, corpus) };
    if (r < 5) return { kind: 'field', bytes: this.#badField(msg) };
    if (r < 6) return { kind: 'inject', bytes: this.#inject(msg) };
    if (r < 7) return { kind: 'duplicate-header', bytes: this.#duplicateHeader(msg) };
    if (r < 8) return { kind: 'huge', bytes: this.#huge(msg) };
    if (r < 9) return { kind: 'truncate', bytes: msg.subarray(0, this.int(msg.length)) };
    return { kind: 'interleaved', bytes: this.#interleaved(Buffer.from([0x24, 0, 0, 4, 0x80, 0x60, 0, 1])).bytes };
  }

  #split(msg: Buffer): { head: string[]; body: Buffer } {
    const end = msg.indexOf('\r\n\r\n');
    const headEnd = end < 0 ? msg.length : end;
    return { head: msg.toString('latin1', 0, headEnd).split('\r\n'), body: end < 0 ? Buffer.alloc(0) : msg.subarray(end + 4) };
  }

  #join(head: string[], body: Buffer): Buffer {
    return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
  }

  /** A field the server reads gets a bad value (added when the message has none). */
  #badField(msg: Buffer): Buffer {
    const { head, body } = this.#split(msg);
    const name = this.pick(Object.keys(BAD_FIELDS));
    const value = this.pick(BAD_FIELDS[name]!);
    const i = head.findIndex((l, j) => j > 0 && l.toLowerCase().startsWith(name + ':'));
    const line = `${name.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase())}: ${value}`;
    if (i > 0) head[i] = line;
    else head.splice(1 + this.int(head.length), 0, line);
    return this.#join(head, body);
  }

  /** CR, LF, NUL or a bare CRLF inside a header value or the request line. */
  #inject(msg: Buffer): Buffer {
    const { head, body } = this.#split(msg);
    const i = this.int(head.length);
    const l = head[i] ?? '';
    const at = this.int(l.length + 1);
    head[i] = l.slice(0, at) + this.pick(['\r', '\n', '\0', '\r\n', '\r\r', '\n\n', '\r\n\r\n', '\0\r\n']) + l.slice(at);
    return this.#join(head, body);
  }

  #duplicateHeader(msg: Buffer): Buffer {
    const { head, body } = this.#split(msg);
    if (head.length < 2) return msg;
    const i = 1 + this.int(head.length - 1);
    for (let n = 1 + this.int(this.rand() < 0.1 ? 200 : 3); n > 0; n--) head.splice(i, 0, head[i]!);
    return this.#join(head, body);
  }

  /** A value far over what any client sends: up to past the server's 16 KiB header limit. */
  #huge(msg: Buffer): Buffer {
    const { head, body } = this.#split(msg);
    const size = this.pick([1000, 8000, 16 * 1024, 20_000, 70_000]);
    const i = this.int(head.length);
    if (i === 0) head[0] = head[0]!.replace(/ /, ' ' + 'a'.repeat(size));
    else head[i] = head[i] + 'x'.repeat(size);
    return this.#join(head, body);
  }

  /** Interleaved frames: another channel, a length that lies, a payload cut short or padded. */
  #interleaved(msg: Buffer): RtspMutation {
    const b = Buffer.from(msg);
    switch (this.int(4)) {
      case 0:
        b[1] = this.pick([1, 2, 3, 5, 127, 254, 255, this.int(256)]);
        return { kind: 'interleaved-channel', bytes: b };
      case 1:
        if (b.length >= 4) b.writeUInt16BE(this.pick([0, 1, 0xffff, this.int(0x10000)]), 2);
        return { kind: 'interleaved-length', bytes: b };
      case 2:
        return { kind: 'interleaved-truncate', bytes: b.subarray(0, this.int(b.length)) };
      default:
        return { kind: 'interleaved-bytes', bytes: Buffer.concat([b.subarray(0, 4), this.bytes(b.subarray(4), [b])]) };
    }
  }
}
