import { RtspParseError } from './errors.js';

// RTSP/1.0 messages (RFC 2326 6, 7) and `$`-interleaved binary frames (10.12) read incrementally
// from one TCP byte stream. Both directions share one reader, so the client can use it later.

/** Header fields in arrival order; lookup ignores case, as RFC 2326 4.2 requires. */
export class RtspHeaders {
  #fields: Array<[string, string]> = [];

  constructor(init?: Record<string, string | number | undefined> | Iterable<[string, string]>) {
    if (!init) return;
    const entries = Symbol.iterator in init ? init : Object.entries(init);
    for (const [k, v] of entries as Iterable<[string, string | number | undefined]>) {
      if (v !== undefined) this.append(k, String(v));
    }
  }

  get(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.#fields.find(([k]) => k.toLowerCase() === n)?.[1];
  }

  getAll(name: string): string[] {
    const n = name.toLowerCase();
    return this.#fields.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  append(name: string, value: string): this {
    this.#fields.push([name, value]);
    return this;
  }

  set(name: string, value: string | number): this {
    this.delete(name);
    return this.append(name, String(value));
  }

  delete(name: string): void {
    const n = name.toLowerCase();
    this.#fields = this.#fields.filter(([k]) => k.toLowerCase() !== n);
  }

  entries(): Array<[string, string]> {
    return [...this.#fields];
  }
}

export interface RtspRequest {
  type: 'request';
  method: string;
  url: string;
  /** e.g. '1.0' */
  version: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface RtspResponse {
  type: 'response';
  version: string;
  status: number;
  reason: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface InterleavedFrame {
  type: 'interleaved';
  channel: number;
  /** A view into the reader's input: copy it if it must outlive the current chunk's handling. */
  payload: Buffer;
}

export type RtspItem = RtspRequest | RtspResponse | InterleavedFrame;

export interface RtspReaderLimits {
  /** Start line plus header fields, including the empty line. */
  maxHeaderBytes: number;
  maxBodyBytes: number;
}

export const DEFAULT_READER_LIMITS: RtspReaderLimits = {
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 64 * 1024,
};

const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;
const REQUEST_LINE = /^([A-Za-z_-]+) (\S+) RTSP\/(\d\.\d)$/;
const STATUS_LINE = /^RTSP\/(\d\.\d) (\d{3})(?: (.*))?$/;

/**
 * Incremental reader. push() returns every complete item the bytes so far contain and keeps the
 * rest (bounded by the limits: an interleaved frame is at most 64 KiB by its 16-bit length).
 * After it throws an RtspParseError the stream cannot be resynchronised; drop the connection.
 */
export class RtspMessageReader {
  #pending: Buffer = Buffer.alloc(0);
  #failed: RtspParseError | undefined;

  constructor(private readonly limits: RtspReaderLimits = DEFAULT_READER_LIMITS) {}

  /** Bytes held while waiting for the rest of an item. */
  get buffered(): number {
    return this.#pending.length;
  }

  push(chunk: Buffer): RtspItem[] {
    if (this.#failed) throw this.#failed;
    const data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const items: RtspItem[] = [];
    let off = 0;
    try {
      for (;;) {
        // Some peers put stray CRLFs between messages (keep-alives); they carry nothing.
        while (off < data.length && (data[off] === CR || data[off] === LF)) off++;
        if (off >= data.length) break;
        const used = data[off] === DOLLAR ? this.#interleaved(data, off, items) : this.#message(data, off, items);
        if (used === 0) break;
        off += used;
      }
    } catch (e) {
      if (e instanceof RtspParseError) this.#failed = e;
      this.#pending = Buffer.alloc(0);
      throw e;
    }
    // Copy the remainder so that a small leftover does not pin a large socket chunk.
    this.#pending = off >= data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(off));
    return items;
  }

  #interleaved(data: Buffer, off: number, items: RtspItem[]): number {
    if (data.length - off < 4) return 0;
    const channel = data[off + 1]!;
    const len = data.readUInt16BE(off + 2);
    if (data.length - off < 4 + len) return 0;
    items.push({ type: 'interleaved', channel, payload: data.subarray(off + 4, off + 4 + len) });
    return 4 + len;
  }

  #message(data: Buffer, off: number, items: RtspItem[]): number {
    const { maxHeaderBytes, maxBodyBytes } = this.limits;
    // Check the start line as soon as it is complete, so garbage fails fast instead of filling the buffer.
    const firstLf = data.indexOf(LF, off);
    const windowEnd = Math.min(data.length, off + maxHeaderBytes);
    if (firstLf < 0 || firstLf >= windowEnd) {
      if (hasControlByte(data, off, windowEnd)) throw new RtspParseError('BadStartLine', 'binary data where a start line should be');
      if (data.length - off >= maxHeaderBytes) throw new RtspParseError('HeaderTooLarge', `no end of line within ${maxHeaderBytes} bytes`);
      return 0;
    }
    const startLine = data.toString('latin1', off, firstLf).replace(/\r$/, '');
    const req = REQUEST_LINE.exec(startLine);
    const res = req ? null : STATUS_LINE.exec(startLine);
    if (!req && !res) throw new RtspParseError('BadStartLine', JSON.stringify(startLine.slice(0, 80)));

    const headEnd = findHeaderEnd(data, firstLf, windowEnd);
    if (!headEnd) {
      if (data.length - off >= maxHeaderBytes) throw new RtspParseError('HeaderTooLarge', `header exceeds ${maxHeaderBytes} bytes`);
      return 0;
    }
    const headers = parseHeaderLines(data.toString('utf8', firstLf + 1, headEnd.linesEnd));
    const cl = headers.get('content-length');
    let bodyLen = 0;
    if (cl !== undefined) {
      if (!/^\s*\d{1,10}\s*$/.test(cl)) throw new RtspParseError('BadContentLength', JSON.stringify(cl.slice(0, 40)));
      bodyLen = Number(cl);
      if (bodyLen > maxBodyBytes) throw new RtspParseError('BodyTooLarge', `${bodyLen} bytes, limit ${maxBodyBytes}`);
    }
    const total = headEnd.bodyStart - off + bodyLen;
    if (data.length - off < total) return 0;
    // Copied: bodies are small and are kept (SDP), the input chunk is not.
    const body = Buffer.from(data.subarray(headEnd.bodyStart, headEnd.bodyStart + bodyLen));
    if (req) {
      items.push({ type: 'request', method: req[1]!, url: req[2]!, version: req[3]!, headers, body });
    } else {
      items.push({ type: 'response', version: res![1]!, status: Number(res![2]), reason: res![3] ?? '', headers, body });
    }
    return total;
  }
}

/** Text lines hold no control bytes but CR (and the LF ending them). */
function hasControlByte(data: Buffer, from: number, end: number): boolean {
  for (let i = from; i < end; i++) {
    const c = data[i]!;
    if ((c < 0x20 && c !== CR && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** The empty line ending the header: CRLFCRLF, or bare LFLF from lenient peers. */
function findHeaderEnd(data: Buffer, from: number, end: number): { linesEnd: number; bodyStart: number } | undefined {
  for (let i = from; i < end; i++) {
    if (data[i] !== LF) continue;
    // `i` ends a line; the header ends if the next line is empty.
    if (data[i + 1] === LF) return { linesEnd: i, bodyStart: i + 2 };
    if (data[i + 1] === CR && data[i + 2] === LF) return { linesEnd: i, bodyStart: i + 3 };
  }
  return undefined;
}

function parseHeaderLines(text: string): RtspHeaders {
  const headers = new RtspHeaders();
  const fields: Array<[string, string]> = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue;
    // A CR, LF or NUL inside a field could forge headers when the value is echoed (CSeq) or cut
    // it short in C peers; the message is refused, whatever the field.
    const bad = /[\r\n\0]/.exec(line);
    if (bad) {
      const what = bad[0] === '\0' ? 'NUL' : bad[0] === '\r' ? 'CR' : 'LF';
      throw new RtspParseError('BadHeaderValue', `${what} inside header line ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (line[0] === ' ' || line[0] === '\t') {
      // Obsolete line folding: continues the previous field's value.
      const last = fields[fields.length - 1];
      if (!last) throw new RtspParseError('BadHeaderLine', 'continuation line before any header');
      last[1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new RtspParseError('BadHeaderLine', JSON.stringify(line.slice(0, 80)));
    const name = line.slice(0, colon).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new RtspParseError('BadHeaderLine', JSON.stringify(line.slice(0, 80)));
    fields.push([name, line.slice(colon + 1).trim()]);
  }
  for (const [k, v] of fields) headers.append(k, v);
  return headers;
}

export const STATUS_REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  415: 'Unsupported Media Type',
  454: 'Session Not Found',
  455: 'Method Not Valid in This State',
  459: 'Aggregate Operation Not Allowed',
  461: 'Unsupported Transport',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'RTSP Version Not Supported',
};

function serializeHead(startLine: string, headers: RtspHeaders, body: Buffer): Buffer {
  const h = new RtspHeaders(headers.entries());
  if (body.length > 0) h.set('Content-Length', body.length);
  else h.delete('Content-Length');
  let text = startLine + '\r\n';
  for (const [k, v] of h.entries()) {
    // A CR or LF in a value would let it forge further headers; NUL cuts C peers' strings short.
    if (/[\r\n\0]/.test(k + v)) throw new Error(`header ${k} contains a line break or NUL`);
    text += `${k}: ${v}\r\n`;
  }
  text += '\r\n';
  const head = Buffer.from(text, 'utf8');
  return body.length > 0 ? Buffer.concat([head, body]) : head;
}

export function serializeRequest(r: { method: string; url: string; headers: RtspHeaders; body?: Buffer }): Buffer {
  return serializeHead(`${r.method} ${r.url} RTSP/1.0`, r.headers, r.body ?? Buffer.alloc(0));
}

export function serializeResponse(r: { status: number; reason?: string; headers: RtspHeaders; body?: Buffer }): Buffer {
  // The reason phrase is free text from handlers; a line break in it must not end the status line.
  const reason = (r.reason ?? STATUS_REASONS[r.status] ?? 'Unknown').replace(/[\r\n\0]+/g, ' ');
  return serializeHead(`RTSP/1.0 ${r.status} ${reason}`, r.headers, r.body ?? Buffer.alloc(0));
}

/** The 4-byte `$` prefix of an interleaved frame; write it and the payload together (writev). */
export function interleavedHeader(channel: number, length: number): Buffer {
  if (channel < 0 || channel > 255 || length < 0 || length > 0xffff) throw new RangeError(`interleaved frame ch=${channel} len=${length}`);
  const h = Buffer.allocUnsafe(4);
  h[0] = DOLLAR;
  h[1] = channel;
  h.writeUInt16BE(length, 2);
  return h;
}

export function serializeInterleaved(channel: number, payload: Buffer): Buffer {
  return Buffer.concat([interleavedHeader(channel, payload.length), payload]);
}
