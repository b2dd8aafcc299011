import { SourceError } from '../core/errors.js';
import { maskCredentials } from '../core/log.js';
import type { Kind } from '../core/media.js';
import type { Credentials } from './auth.js';

// A camera URL as users write it (go2rtc's syntax): rtsp://, rtsps:// (TLS), rtspx:// (TLS without
// certificate check), user info for authentication, and options after '#', separated by '#':
// `#transport=udp`, `#transport=tcp`, `#media=video`, `#timeout=10` (s), `#backchannel=1` (the
// ONVIF audio backchannel, for talking to the camera; off unless asked: see `backchannel`).

export type CameraScheme = 'rtsp' | 'rtsps' | 'rtspx';

export interface CameraUrl {
  scheme: CameraScheme;
  tls: boolean;
  /** False for rtspx://: UniFi and friends use self-signed certificates. */
  verifyCertificate: boolean;
  /** Without IPv6 brackets, for net.connect. */
  host: string;
  port: number;
  credentials?: Credentials;
  /** What requests name: no user info, no '#' options; rtspx:// is written rtsps://. */
  requestUrl: string;
  transport: 'tcp' | 'udp';
  /** go2rtc's `#media=video`: only these kinds are set up. Undefined: any kind. */
  media?: Set<Kind>;
  /** go2rtc's `#timeout=N`: read and request timeout in ms, when given. */
  timeoutMs?: number;
  /**
   * `#backchannel=1`: DESCRIBE asks for the ONVIF backchannel (Require:
   * www.onvif.org/ver20/backchannel) and sets it up. Off by default, unlike go2rtc: a camera
   * without one answers 551 (gst-rtsp-server does), which would cost every start of every camera
   * a second DESCRIBE on a second connection; only a stream someone talks to needs it.
   */
  backchannel: boolean;
}

/**
 * go2rtc connects to 554 for every scheme when the URL names no port (RFC 7826 would say 322 for
 * rtsps); camrelay does the same so that URLs copied from a go2rtc config reach the same port.
 */
const DEFAULT_PORT = 554;

function bad(url: string, why: string): SourceError {
  return new SourceError(`bad camera URL "${maskCredentials(url)}": ${why}`, true);
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a stray '%' in a password is taken literally
  }
}

export function parseCameraUrl(url: string): CameraUrl {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    throw bad(url, 'not a URL');
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'rtsp' && scheme !== 'rtsps' && scheme !== 'rtspx') throw bad(url, `scheme ${scheme}: is not rtsp, rtsps or rtspx`);
  if (!u.hostname) throw bad(url, 'no host');
  const port = u.port ? Number(u.port) : DEFAULT_PORT;

  const out: CameraUrl = {
    scheme,
    tls: scheme !== 'rtsp',
    verifyCertificate: scheme !== 'rtspx',
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    requestUrl: `${scheme === 'rtspx' ? 'rtsps' : scheme}://${u.host}${u.pathname}${u.search}`,
    transport: 'tcp',
    backchannel: false,
  };
  if (u.username || u.password) out.credentials = { username: decode(u.username), password: decode(u.password) };

  for (const part of u.hash.replace(/^#/, '').split('#')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : decode(part.slice(eq + 1).trim());
    switch (key) {
      case 'transport': {
        const t = value.toLowerCase();
        if (t !== 'tcp' && t !== 'udp') throw bad(url, `#transport=${value} is not supported (tcp or udp)`);
        out.transport = t;
        break;
      }
      case 'media': {
        const kinds = new Set<Kind>();
        if (/video/i.test(value)) kinds.add('video');
        if (/audio/i.test(value)) kinds.add('audio');
        if (kinds.size === 0) throw bad(url, `#media=${value} names neither video nor audio`);
        out.media = kinds;
        break;
      }
      case 'timeout': {
        const s = Number(value);
        if (!Number.isFinite(s) || s <= 0) throw bad(url, `#timeout=${value} is not a positive number of seconds`);
        out.timeoutMs = Math.round(s * 1000);
        break;
      }
      case 'backchannel': {
        if (value !== '0' && value !== '1') throw bad(url, `#backchannel=${value} is not supported (0 or 1)`);
        out.backchannel = value === '1';
        break;
      }
      default:
        // Other go2rtc options (#audio=…, #video=… belong to ffmpeg: sources) mean nothing here.
        break;
    }
  }
  return out;
}

/**
 * Where a redirect points, as a CameraUrl. The original credentials are kept only for the same
 * host and port, so a redirect cannot make us send them to another server.
 */
export function redirectTarget(from: CameraUrl, location: string): CameraUrl {
  let abs: URL;
  try {
    abs = new URL(location, from.requestUrl);
  } catch {
    throw new SourceError(`redirect to an unusable Location "${maskCredentials(location)}"`);
  }
  const next = parseCameraUrl(abs.href.replace(/#.*$/, ''));
  next.transport = from.transport;
  next.media = from.media;
  next.timeoutMs = from.timeoutMs;
  next.backchannel = from.backchannel;
  // rtspx:// stays unverified when it is redirected to rtsps://.
  if (from.scheme === 'rtspx' && next.scheme === 'rtsps') next.verifyCertificate = false;
  if (!next.credentials && from.credentials && next.host === from.host && next.port === from.port) next.credentials = from.credentials;
  return next;
}
