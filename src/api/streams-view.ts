import { maskCredentials } from '../core/log.js';
import type { Stream } from '../core/stream.js';
import type { Source } from '../core/source.js';
import type { Consumer, ConsumerInfo } from '../core/consumer.js';
import { describeTrack } from '../core/media.js';
import { codecJson, recvMedias } from './go2rtc-json.js';

/** host:port of a URL (the scheme's default port when it names none), for go2rtc's remote_addr. */
function hostPort(url: string, host: unknown): string | undefined {
  if (typeof host !== 'string' || host === '') return undefined;
  try {
    const u = new URL(url);
    const port = u.port || ({ 'rtsp:': '554', 'rtsps:': '322', 'http:': '80', 'https:': '443', 'rtmp:': '1935' } as Record<string, string>)[u.protocol];
    return port ? (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`) : host;
  } catch {
    return host;
  }
}

/** go2rtc's connection fields (format_name, protocol, remote_addr) for one of our running sources. */
function producerFields(source: Source, info: Record<string, unknown>): Record<string, unknown> {
  const type = typeof info.type === 'string' ? info.type : undefined;
  if (type === 'rtsp') {
    return { format_name: 'rtsp', protocol: `rtsp+${info.transport === 'udp' ? 'udp' : 'tcp'}`, remote_addr: hostPort(source.url, info.remote_addr) };
  }
  if (type === 'ffmpeg') return { format_name: 'ffmpeg', protocol: 'pipe' };
  return { format_name: type ?? 'rtsp' };
}

/** A consumer's info() with go2rtc's format_name where the consumer did not name one. */
function consumerView(c: ConsumerInfo, transcoded: string[]): Record<string, unknown> {
  return { format_name: c.type, ...c, ...(transcoded.length > 0 && { transcoded }) };
}

/** What `c` gets through one of the stream's automatic transcodes: ["video"], ["audio"] or both. */
export function transcodedKinds(s: Stream, c: Consumer): string[] {
  return [...s.bindingOf(c)].filter(([, b]) => b.auto).map(([kind]) => kind);
}

/** A running source as a producer: go2rtc's fields and its own tracks. */
function producerView(s: Stream, src: Source, id: string, url: string): Record<string, unknown> {
  const info = src.info() as Record<string, unknown>;
  const run = s.runOf(src);
  const own = run?.tracks ?? [];
  const view: Record<string, unknown> = Object.assign({ url }, { id }, info, producerFields(src, info), {
    url,
    medias: recvMedias(own),
    bytes_recv: run?.bytes,
    receivers: own.map((t) => ({ codec: codecJson(t.kind, t.codec) })),
  });
  if (run?.auto) view.transcode = 'auto';
  for (const k of Object.keys(view)) if (view[k] === undefined) delete view[k];
  return view;
}

/** One stream as go2rtc's GET /api/streams shows it, plus camrelay's own `state`/`error` fields. */
export function streamView(s: Stream): Record<string, unknown> {
  const running = s.running;
  const producers = s.sources.map((url, index) => {
    const src = running.find((r) => r.url === url);
    return src ? producerView(s, src, `${s.name}/${index}`, maskCredentials(url)) : { url: maskCredentials(url) };
  });
  // The automatic transcodes that run now follow the configured sources (camrelay's `transcode` field).
  running.forEach((src) => {
    if (s.runOf(src)?.auto) producers.push(producerView(s, src, `${s.name}/${producers.length}`, maskCredentials(src.url)));
  });
  const view: Record<string, unknown> = {
    producers,
    // A shared fMP4 muxer is listed as its viewers (each with its format_name), as go2rtc lists each.
    consumers: s.consumers.flatMap((c) => {
      const i = c.info();
      const t = transcodedKinds(s, c);
      return Array.isArray(i.viewers) ? (i.viewers as ConsumerInfo[]).map((v) => consumerView(v, t)) : [consumerView(i, t)];
    }),
    state: s.state,
    medias: s.tracks.map(describeTrack),
  };
  if (s.lastError) view.error = maskCredentials(s.lastError.message);
  return view;
}
