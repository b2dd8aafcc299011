import { maskCredentials } from '../core/log.js';
import type { Stream } from '../core/stream.js';
import type { Track } from '../core/media.js';
import type { Source } from '../core/source.js';
import type { ConsumerInfo } from '../core/consumer.js';
import { describeTrack } from '../core/media.js';
import { codecJson, recvMedias } from './go2rtc-json.js';

/** "video:H264/90000" (describeTrack) back to the track's kind and codec name, for matching. */
const trackKey = (t: Track): string => describeTrack(t);

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

/**
 * The tracks of each running source: a source that lists them (RTSP) has its own; the stream's
 * other tracks belong to the first running source that does not list any (ffmpeg, a publisher).
 */
function tracksBySource(s: Stream, infos: Map<Source, Record<string, unknown>>): Map<Source, Track[]> {
  const out = new Map<Source, Track[]>();
  const left = [...s.tracks];
  const take = (key: string): Track | undefined => {
    const i = left.findIndex((t) => trackKey(t) === key);
    return i < 0 ? undefined : left.splice(i, 1)[0];
  };
  for (const src of s.running) {
    const listed = infos.get(src)?.tracks;
    if (!Array.isArray(listed)) continue;
    out.set(src, listed.map((k) => take(String(k))).filter((t): t is Track => t !== undefined));
  }
  const unlisted = s.running.find((src) => !out.has(src));
  if (unlisted) out.set(unlisted, left);
  return out;
}

/** A consumer's info() with go2rtc's format_name where the consumer did not name one. */
function consumerView(c: ConsumerInfo): Record<string, unknown> {
  return { format_name: c.type, ...c };
}

/** One stream as go2rtc's GET /api/streams shows it, plus camrelay's own `state`/`error` fields. */
export function streamView(s: Stream): Record<string, unknown> {
  const running = s.running;
  const infos = new Map(running.map((r) => [r, r.info() as Record<string, unknown>]));
  const tracks = tracksBySource(s, infos);
  const producers = s.sources.map((url, index) => {
    const base: Record<string, unknown> = { url: maskCredentials(url) };
    const src = running.find((r) => r.url === url);
    if (src) {
      const own = tracks.get(src) ?? [];
      Object.assign(base, { id: `${s.name}/${index}` }, infos.get(src), producerFields(src, infos.get(src)!), {
        url: maskCredentials(url),
        medias: recvMedias(own),
        bytes_recv: s.bytesFrom(src),
        receivers: own.map((t) => ({ codec: codecJson(t.kind, t.codec) })),
      });
      for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k];
    }
    return base;
  });
  const view: Record<string, unknown> = {
    producers,
    // A shared fMP4 muxer is listed as its viewers (each with its format_name), as go2rtc lists each.
    consumers: s.consumers.flatMap((c) => {
      const i = c.info();
      return Array.isArray(i.viewers) ? (i.viewers as ConsumerInfo[]).map(consumerView) : [consumerView(i)];
    }),
    state: s.state,
    medias: s.tracks.map(describeTrack),
  };
  if (s.lastError) view.error = maskCredentials(s.lastError.message);
  return view;
}
