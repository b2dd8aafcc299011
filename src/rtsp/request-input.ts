// The input side of one RTSP server connection: bytes to items (requests, responses, interleaved
// frames), handed on one at a time and in order. What arrives while a handler is still working
// waits here, bounded; and an item must be complete within rtsp.header_timeout of its first byte,
// since the idle timeout alone lets a client that sends one byte at a time hold a connection.
import { errorMessage } from '../core/errors.js';
import { RtspProtocolError } from './errors.js';
import { RtspMessageReader, type RtspItem, type RtspReaderLimits } from './message.js';

/** Requests that may wait behind one still being answered (DESCRIBE waits for the source). */
const MAX_QUEUED = 64;

/** The connection the items are for. */
export interface InputTarget {
  isClosed(): boolean;
  /** A final answer is being flushed: input is ignored from now on. */
  isClosing(): boolean;
  handle(item: RtspItem): void;
  /** Bytes the reader refused: the stream cannot be resynchronised. */
  unparsable(e: unknown): void;
  fail(e: RtspProtocolError): void;
  /** An item was not complete within the header timeout (before fail, for a metric). */
  headerTimedOut(): void;
}

export class RequestInput {
  #reader: RtspMessageReader;
  #queue: RtspItem[] = [];
  #busy = false;
  #headerTimer: NodeJS.Timeout | undefined;

  constructor(
    limits: RtspReaderLimits,
    private readonly headerTimeoutMs: number,
    private readonly target: InputTarget,
  ) {
    this.#reader = new RtspMessageReader(limits);
  }

  /** A handler is still working on a request. */
  get busy(): boolean {
    return this.#busy;
  }

  push(chunk: Buffer): void {
    let items: RtspItem[];
    try {
      items = this.#reader.push(chunk);
    } catch (e) {
      this.target.unparsable(e);
      return;
    }
    this.#armHeaderTimer(items.length > 0);
    for (const item of items) {
      if (this.#busy) {
        if (this.#queue.length >= MAX_QUEUED) return this.target.fail(new RtspProtocolError('HandlerFailed', `more than ${MAX_QUEUED} requests waiting`));
        // Interleaved payloads are views into this chunk: keep a copy of what must wait.
        this.#queue.push(item.type === 'interleaved' ? { ...item, payload: Buffer.from(item.payload) } : item);
        continue;
      }
      this.#safeHandle(item);
    }
  }

  /** A handler went asynchronous: what arrives meanwhile waits. */
  hold(): void {
    this.#busy = true;
  }

  /** Its answer is out: the next items may be handled (drain() hands on those that waited). */
  release(): void {
    this.#busy = false;
  }

  /** Works through what waited while a handler was busy, until the next one goes async. */
  drain(): void {
    const t = this.target;
    while (!this.#busy && this.#queue.length > 0 && !t.isClosed() && !t.isClosing()) this.#safeHandle(this.#queue.shift()!);
  }

  stop(): void {
    this.#queue = [];
    clearTimeout(this.#headerTimer);
    this.#headerTimer = undefined;
  }

  /** The deadline restarts when a chunk completed an item and began another. */
  #armHeaderTimer(completed: boolean): void {
    if (this.#reader.buffered === 0) {
      clearTimeout(this.#headerTimer);
      this.#headerTimer = undefined;
      return;
    }
    if (this.#headerTimer && !completed) return;
    clearTimeout(this.#headerTimer);
    const ms = this.headerTimeoutMs;
    this.#headerTimer = setTimeout(() => {
      this.#headerTimer = undefined;
      if (this.target.isClosed()) return;
      this.target.headerTimedOut();
      this.target.fail(new RtspProtocolError('HeaderTimeout', `a request was not complete within ${ms} ms of its first byte (rtsp.header_timeout)`));
    }, ms);
  }

  #safeHandle(item: RtspItem): void {
    const t = this.target;
    if (t.isClosed() || t.isClosing()) return;
    try {
      t.handle(item);
    } catch (e) {
      t.fail(new RtspProtocolError('HandlerFailed', `${item.type} handler threw: ${errorMessage(e)}`));
    }
  }
}
