// GET /metrics: Prometheus text format (prom-client). Events (source starts, session closes) are
// counted as they happen, from outside the core: the source factory, the RTSP player factory and
// the session table are wrapped or observed here. Everything else (states, consumers, byte totals
// of live outputs, children) is read from the live objects at scrape time, so hot paths pay nothing
// beyond the byte counters the outputs already keep and one addition per source frame.
import { Router } from 'express';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Owned } from '../core/owned.js';
import type { StreamRegistry } from '../core/registry.js';
import type { Stream, StreamState } from '../core/stream.js';
import type { Source, SourceFactory } from '../core/source.js';
import { StallError } from '../core/stall-watch.js';
import type { ConsumerInfo } from '../core/consumer.js';
import type { Frame } from '../core/media.js';
import { liveObjects } from '../core/objects.js';
import { closeCodeOf, type CloseCode } from '../core/close-reason.js';
import { droppedLogLines } from '../core/log.js';
import { refusalCounts } from '../core/refusals.js';
import { uncaughtCounts } from '../core/uncaught.js';
import type { PlayerFactory, RtspPlayer } from '../rtsp/player.js';
import { RTSP_REFUSAL_REASONS, type RtspRefusalReason } from '../rtsp/server.js';
import type { WebRtcSession } from '../outputs/webrtc/session.js';
import type { SessionTable } from './sessions.js';
import { onFmp4Viewer } from '../outputs/fmp4/muxers.js';

const STATES: StreamState[] = ['idle', 'starting', 'live', 'backoff', 'stopping'];
const KINDS = ['webrtc', 'rtsp', 'mjpeg', 'snapshot', 'preload', 'mse', 'mp4', 'hls'];
export const CLOSE_REASONS = ['client', 'disconnect_timeout', 'connect_timeout', 'failed', 'server_shutdown', 'replaced', 'slow_consumer', 'other'] as const;
export type CloseReasonLabel = (typeof CLOSE_REASONS)[number];

// The label values predate the codes and are scraped as they are: a viewer's own close counts as
// `client`, any peer failure as `failed`. Codes not listed here count as `other`.
const LABEL_OF: Partial<Record<CloseCode, CloseReasonLabel>> = {
  client: 'client',
  peer_closed: 'client',
  disconnect_timeout: 'disconnect_timeout',
  connect_timeout: 'connect_timeout',
  peer_failed: 'failed',
  peer_disconnected: 'failed',
  shutdown: 'server_shutdown',
  replaced: 'replaced',
  slow_consumer: 'slow_consumer',
};

/** A session's close code → the bounded label of camrelay_webrtc_sessions_closed_total. */
export function closeReasonLabel(code: CloseCode | undefined): CloseReasonLabel {
  return (code && LABEL_OF[code]) ?? 'other';
}

/** An output whose byte counters are read at scrape time and kept once it closes. */
type Output = Owned & { info(): ConsumerInfo };

interface Totals {
  bytes: number;
  packets: number;
}

// Node's own metrics (RSS, CPU, event-loop lag via monitorEventLoopDelay, GC) are per process:
// collected once, however many Camrelay instances a test process starts.
/** The lag histogram's sampling interval; its figures are tick-to-tick times, so this is their floor. */
export const EVENT_LOOP_SAMPLE_MS = 100;
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // The event-loop lag histogram samples on a timer: every 10 ms by default, which alone keeps an
    // idle camrelay at about 0.5% of a core. 100 ms still catches the stalls that matter.
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return processRegistry;
}

export interface MetricsContext {
  registry: StreamRegistry;
  sessions: SessionTable<WebRtcSession>;
}

export class Metrics {
  readonly #reg = new Registry();
  #ctx: MetricsContext | undefined;
  /** Streams whose 'backoff' events are counted (subscribed once, at their first source). */
  #watched = new WeakSet<Stream>();
  /** Bytes/frames in per stream, from source frames; kept after the source goes. */
  #in = new Map<string, { bytes: number; frames: number }>();
  /** Live outputs by stream and kind, and the totals of those that closed. */
  #live = new Map<Output, { stream: string; kind: string }>();
  #closedOut = new Map<string, Totals>();

  readonly #sourceStarts = new Counter({ name: 'camrelay_source_starts_total', help: 'Sources started (each attempt, retries included)', labelNames: ['stream'], registers: [this.#reg] });
  readonly #sourceStops = new Counter({ name: 'camrelay_source_stops_total', help: 'Sources stopped by camrelay (nobody watching, stream removed, shutdown)', labelNames: ['stream'], registers: [this.#reg] });
  readonly #sourceFailures = new Counter({ name: 'camrelay_source_failures_total', help: 'Sources that failed to start or ended by themselves, by reason (stall: live but no frame for stall_timeout; error: any other)', labelNames: ['stream', 'reason'], registers: [this.#reg] });
  readonly #backoff = new Counter({ name: 'camrelay_backoff_retries_total', help: 'Source retries scheduled with backoff', labelNames: ['stream'], registers: [this.#reg] });
  readonly #opened = new Counter({ name: 'camrelay_webrtc_sessions_opened_total', help: 'WebRTC sessions answered', registers: [this.#reg] });
  readonly #closed = new Counter({ name: 'camrelay_webrtc_sessions_closed_total', help: 'WebRTC sessions closed, by reason', labelNames: ['reason'], registers: [this.#reg] });
  readonly #dropped = new Counter({ name: 'camrelay_consumers_dropped_total', help: 'Viewers dropped for falling behind (send buffer over its limit), by kind', labelNames: ['kind'], registers: [this.#reg] });
  readonly #refused = new Counter({ name: 'camrelay_webrtc_sessions_refused_total', help: 'WebRTC offers refused by webrtc.max_sessions', registers: [this.#reg] });
  readonly #rtspRefused = new Counter({ name: 'camrelay_rtsp_refused_total', help: 'RTSP connections closed by a bound (rtsp.max_connections, rtsp.header_timeout) and ANNOUNCEs forbidden by the publish rule, by reason', labelNames: ['reason'], registers: [this.#reg] });

  constructor() {
    const self = this;
    new Gauge({
      name: 'camrelay_streams',
      help: 'Configured streams by state',
      labelNames: ['state'],
      registers: [this.#reg],
      collect() {
        const n = new Map<string, number>(STATES.map((s) => [s, 0]));
        for (const s of self.#ctx?.registry.all() ?? []) n.set(s.state, (n.get(s.state) ?? 0) + 1);
        for (const [state, v] of n) this.set({ state }, v);
      },
    });
    new Gauge({
      name: 'camrelay_consumers',
      help: 'Consumers attached to streams, by kind',
      labelNames: ['kind'],
      registers: [this.#reg],
      collect() {
        const n = new Map<string, number>(KINDS.map((k) => [k, 0]));
        for (const s of self.#ctx?.registry.all() ?? []) {
          for (const c of s.consumers) {
            const info = c.info();
            // A shared muxer stands for its viewers (MSE, stream.mp4): they are what is counted.
            const kinds = Array.isArray(info.viewers) ? (info.viewers as ConsumerInfo[]).map((v) => v.type) : [info.type];
            for (const kind of kinds) n.set(kind, (n.get(kind) ?? 0) + 1);
          }
        }
        for (const [kind, v] of n) this.set({ kind }, v);
      },
    });
    new Gauge({
      name: 'camrelay_talkers',
      help: 'Viewers talking to a camera now (its backchannel; one per stream at most)',
      registers: [this.#reg],
      collect() {
        this.set((self.#ctx?.registry.all() ?? []).filter((s) => s.talk.talker !== undefined).length);
      },
    });
    new Counter({
      name: 'camrelay_talk_packets_total',
      help: "Microphone packets sent to a camera's backchannel, per stream",
      labelNames: ['stream'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const s of self.#ctx?.registry.all() ?? []) if (s.talk.sent > 0) this.inc({ stream: s.name }, s.talk.sent);
      },
    });
    new Gauge({
      name: 'camrelay_webrtc_sessions',
      help: 'WebRTC sessions open now',
      registers: [this.#reg],
      collect() {
        this.set(self.#ctx?.sessions.size ?? 0);
      },
    });
    new Gauge({
      name: 'camrelay_auto_transcodes',
      help: 'Automatic transcodes running (transcode: auto), by the kind they give',
      labelNames: ['kind'],
      registers: [this.#reg],
      collect() {
        const n = new Map<string, number>([['video', 0], ['audio', 0]]);
        const runs = (self.#ctx?.registry.all() ?? []).flatMap((s) => s.running.map((src) => s.runOf(src)));
        for (const t of runs.flatMap((r) => (r?.auto ? r.tracks : []))) n.set(t.kind, (n.get(t.kind) ?? 0) + 1);
        for (const [kind, v] of n) this.set({ kind }, v);
      },
    });
    new Gauge({
      name: 'camrelay_snapshot_decoders',
      help: 'Long-lived snapshot decoders (ffmpeg) alive, all streams and sizes (bounded by api.max_snapshots)',
      registers: [this.#reg],
      collect() { this.set(liveObjects()['SnapshotDecoder'] ?? 0); },
    });
    new Gauge({
      name: 'camrelay_child_processes',
      help: 'Child processes (ffmpeg) alive',
      registers: [this.#reg],
      collect() {
        this.set(liveObjects()['ChildProcess'] ?? 0);
      },
    });
    new Counter({
      name: 'camrelay_log_lines_dropped_total',
      help: 'Log lines dropped because stdout did not take them (a pipe nobody reads)',
      registers: [this.#reg],
      collect() {
        this.reset();
        this.inc(droppedLogLines());
      },
    });
    // Process-wide counts (src/core/refusals.ts, src/core/uncaught.ts), every label at 0 from the start.
    new Counter({
      name: 'camrelay_api_refused_total',
      help: 'Requests, connections and sockets refused or cut by a bound or a browser rule, by reason (docs/security.md)',
      labelNames: ['reason'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const [reason, n] of refusalCounts()) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'camrelay_uncaught_errors_total',
      help: 'Errors nothing caught (uncaughtException, unhandledRejection): each is a bug, logged with its stack',
      labelNames: ['kind'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(uncaughtCounts())) this.inc({ kind }, n);
      },
    });
    // Counters whose value is a sum read at scrape time: reset, then set from the sums.
    new Counter({
      name: 'camrelay_stream_bytes_in_total',
      help: 'Media bytes received from sources, per stream',
      labelNames: ['stream'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const [stream, t] of self.#in) this.inc({ stream }, t.bytes);
      },
    });
    new Counter({
      name: 'camrelay_stream_frames_in_total',
      help: 'Media frames (access units, audio frames) received from sources, per stream',
      labelNames: ['stream'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const [stream, t] of self.#in) this.inc({ stream }, t.frames);
      },
    });
    new Counter({
      name: 'camrelay_stream_bytes_out_total',
      help: 'RTP bytes sent to WebRTC and RTSP viewers, per stream and kind',
      labelNames: ['stream', 'kind'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const [key, t] of self.#outTotals()) this.inc(labelsOf(key), t.bytes);
      },
    });
    new Counter({
      name: 'camrelay_stream_packets_out_total',
      help: 'RTP packets sent to WebRTC and RTSP viewers, per stream and kind',
      labelNames: ['stream', 'kind'],
      registers: [this.#reg],
      collect() {
        this.reset();
        for (const [key, t] of self.#outTotals()) this.inc(labelsOf(key), t.packets);
      },
    });
    // Labelled series exist (at 0) before the first event, so rate() and absent() behave.
    for (const reason of CLOSE_REASONS) this.#closed.inc({ reason }, 0);
    for (const kind of ['webrtc', 'rtsp', 'mjpeg', 'mse', 'mp4', 'hls']) this.#dropped.inc({ kind }, 0);
    for (const reason of RTSP_REFUSAL_REASONS) this.#rtspRefused.inc({ reason }, 0);
    processMetrics();
  }

  /** What the scrape-time metrics read; the app sets it once its parts exist. */
  observe(ctx: MetricsContext): void {
    this.#ctx = ctx;
    ctx.sessions.on('add', (s: WebRtcSession) => this.#sessionAdded(s));
    // A deleted stream's series go with it: names come and go through the API.
    ctx.registry.on('removed', (name: string) => this.#forget(name));
    // fMP4 viewers (MSE, stream.mp4) of this registry's streams: bytes and drops by kind.
    onFmp4Viewer((v, stream) => {
      if (ctx.registry.get(stream.name) === stream) this.#track(v, stream.name, v.kind);
    });
  }

  /** The factory, counting each source it makes: starts, stops, failures, frames in. */
  watchSources(make: SourceFactory): SourceFactory {
    return (url, streamName) => {
      this.#watchStream(streamName);
      const src = make(url, streamName);
      this.source(streamName, src);
      return src;
    };
  }

  /** Counts a source that did not come from the factory (an external publisher). */
  source(streamName: string, src: Source): void {
    this.#watchStream(streamName);
    this.#sourceStarts.inc({ stream: streamName });
    let t = this.#in.get(streamName);
    if (!t) this.#in.set(streamName, (t = { bytes: 0, frames: 0 }));
    const totals = t;
    const onFrame = (f: Frame) => {
      totals.frames++;
      for (const d of f.data) totals.bytes += d.length;
    };
    src.on('frame', onFrame);
    src.once('close', (err?: Error) => {
      src.off('frame', onFrame);
      if (err) this.#sourceFailures.inc({ stream: streamName, reason: err instanceof StallError ? 'stall' : 'error' });
      else this.#sourceStops.inc({ stream: streamName });
    });
  }

  /** The RTSP player factory, keeping each player's byte counts. */
  watchPlayers(f: PlayerFactory): PlayerFactory {
    return {
      open: (ctx) => {
        const p = f.open(ctx);
        if (p && hasInfo(p)) this.#track(p, ctx.stream, 'rtsp');
        return p;
      },
    };
  }

  refused(): void {
    this.#refused.inc();
  }

  /** Counts `o` in camrelay_consumers_dropped_total as `kind` if it closes for falling behind (an MJPEG viewer). */
  watchDrop(o: Owned, kind: string): void {
    o.once('close', (reason?: Error) => {
      if (closeCodeOf(reason) === 'slow_consumer') this.#dropped.inc({ kind });
    });
  }

  /** The RTSP server's onRefused. */
  rtspRefused(reason: RtspRefusalReason): void {
    this.#rtspRefused.inc({ reason });
  }

  get contentType(): string {
    return this.#reg.contentType;
  }

  async render(): Promise<string> {
    return (await this.#reg.metrics()) + '\n' + (await processMetrics().metrics());
  }

  /** Drops every series labelled with this stream (its sources and outputs were closed first). */
  #forget(stream: string): void {
    this.#in.delete(stream);
    for (const key of [...this.#closedOut.keys()]) if (labelsOf(key).stream === stream) this.#closedOut.delete(key);
    for (const [o, at] of [...this.#live]) if (at.stream === stream) this.#live.delete(o);
    for (const c of [this.#sourceStarts, this.#sourceStops, this.#sourceFailures, this.#backoff]) {
      // get() reads the series synchronously (these counters have no collect); remove needs every label.
      void c.get().then(({ values }) => {
        for (const v of values) if (v.labels.stream === stream) c.remove(v.labels);
      });
    }
  }

  #watchStream(name: string): void {
    const s = this.#ctx?.registry.get(name);
    if (!s || this.#watched.has(s)) return;
    this.#watched.add(s);
    s.on('backoff', () => this.#backoff.inc({ stream: name }));
  }

  #sessionAdded(s: WebRtcSession): void {
    this.#opened.inc();
    this.#track(s, s.streamName, 'webrtc');
    s.once('close', () => this.#closed.inc({ reason: closeReasonLabel(s.closeCode) }));
  }

  #track(o: Output, stream: string, kind: string): void {
    if (o.closed) return;
    this.#live.set(o, { stream, kind });
    o.once('close', (reason?: Error) => {
      // Not live any more when its stream was deleted first (#forget): nothing to keep.
      if (!this.#live.delete(o)) return;
      const key = keyOf(stream, kind);
      const t = this.#closedOut.get(key) ?? { bytes: 0, packets: 0 };
      const i = o.info();
      t.bytes += num(i.bytes_send);
      t.packets += num(i.packets_send);
      this.#closedOut.set(key, t);
      if (closeCodeOf(reason) === 'slow_consumer') this.#dropped.inc({ kind });
    });
  }

  #outTotals(): Map<string, Totals> {
    const out = new Map<string, Totals>();
    for (const [k, t] of this.#closedOut) out.set(k, { ...t });
    for (const [o, { stream, kind }] of this.#live) {
      const key = keyOf(stream, kind);
      const t = out.get(key) ?? { bytes: 0, packets: 0 };
      const i = o.info();
      t.bytes += num(i.bytes_send);
      t.packets += num(i.packets_send);
      out.set(key, t);
    }
    return out;
  }
}

function hasInfo(p: RtspPlayer): p is RtspPlayer & Output {
  return 'info' in p && typeof p.info === 'function';
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

// Stream names may hold any character but NUL; NUL joins the two labels of one key.
function keyOf(stream: string, kind: string): string {
  return `${stream}\0${kind}`;
}
function labelsOf(key: string): { stream: string; kind: string } {
  const i = key.lastIndexOf('\0');
  return { stream: key.slice(0, i), kind: key.slice(i + 1) };
}

export function metricsRoutes(m: Metrics): Router {
  const r = Router();
  r.get('/metrics', async (_req, res) => {
    res.type(m.contentType).send(await m.render());
  });
  return r;
}
