// DNS rebinding and cross-site requests. A page on evil.example that rebinds its name to our
// address is, for the browser, same-origin with us: it may read our answers and write to us. The
// browser still names evil.example in Host, and only browsers do this, so browser requests must
// name a Host of ours; state-changing ones (and WebSocket upgrades) must also come from a page of
// the same origin. Clients that are not browsers (Home Assistant's aiohttp, curl, another container
// calling http://camrelay:1984) name whatever host they were given and are left alone.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

export interface BrowserPolicy {
  /** api.allowed_hosts: extra names (a leading `.` or `*.` also matches every name under it). */
  allowedHosts: string[];
  /**
   * The Origin rule: '' (default) = a present Origin must be our own on state-changing methods and
   * upgrades; '*' = any origin (go2rtc's `api.origin: "*"`, for pages elsewhere that call us).
   */
  origin: '' | '*';
}

/** A refusal: the status is always 403; the message names what was wrong. */
export interface Refusal {
  reason: 'host' | 'origin';
  message: string;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Whether the request comes from a browser. Origin and Sec-Fetch-* are the standard signs, but a
 * same-origin GET over plain http to a name that is not "potentially trustworthy" (exactly the
 * rebinding case: http://evil.example:1984) carries neither in Chromium; Referer and a `Mozilla/`
 * User-Agent (every browser's, which Chromium's scripts cannot change) catch that one.
 */
export function fromBrowser(h: IncomingHttpHeaders): boolean {
  return (
    h.origin !== undefined ||
    h['sec-fetch-site'] !== undefined ||
    h['sec-fetch-mode'] !== undefined ||
    h.referer !== undefined ||
    /^Mozilla\//.test(h['user-agent'] ?? '')
  );
}

/** The host name of a Host header value, lower case, without port or IPv6 brackets; undefined if malformed. */
export function hostName(host: string): string | undefined {
  // Only name[:port]: anything URL would also accept (path, user info) is no Host.
  if (!host || /[/?#@\\\s]/.test(host)) return undefined;
  try {
    const name = new URL(`http://${host}/`).hostname;
    return name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  } catch {
    return undefined;
  }
}

/** This machine's own names: os.hostname(), its first label, and `<first label>.local` (mDNS). */
export function ownNames(h = hostname()): string[] {
  const full = h.toLowerCase();
  if (!full) return [];
  const short = full.split('.')[0]!;
  return [...new Set([full, short, `${short}.local`])];
}

export function hostAllowed(name: string, policy: BrowserPolicy, own = ownNames()): boolean {
  if (isIP(name) !== 0) return true;
  const n = name.replace(/\.$/, '');
  if (n === 'localhost' || n.endsWith('.localhost')) return true;
  if (own.includes(n)) return true;
  for (const entry of policy.allowedHosts) {
    const e = entry.toLowerCase().replace(/\.$/, '');
    if (e.startsWith('*.') || e.startsWith('.')) {
      const suffix = e.slice(e.indexOf('.'));
      if (n.endsWith(suffix) || n === suffix.slice(1)) return true;
    } else if (n === e) return true;
  }
  return false;
}

/**
 * Whether Origin names the same origin as Host (scheme-default ports ignored). Like go2rtc, a Host
 * without a port also matches an Origin with the same name on any port (a reverse proxy on :80
 * in front of a page served elsewhere on that host).
 */
export function sameOrigin(origin: string, host: string): boolean {
  let o: URL;
  let h: URL;
  try {
    o = new URL(origin);
    h = new URL(`${o.protocol}//${host}/`);
  } catch {
    return false;
  }
  if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
  if (o.host === h.host) return true;
  return !host.includes(':') || host.endsWith(']') ? o.hostname === h.hostname : false;
}

/** Why a request must be refused (403), or undefined. `upgrade`: a WebSocket handshake. */
export function checkBrowserRequest(method: string, headers: IncomingHttpHeaders, policy: BrowserPolicy, upgrade = false): Refusal | undefined {
  if (!fromBrowser(headers)) return undefined;
  const host = headers.host ?? '';
  const name = hostName(host);
  if (name === undefined || !hostAllowed(name, policy)) {
    return {
      reason: 'host',
      message: `Host "${host}" is not one of this server's names: a browser must reach camrelay by its IP address, localhost, this machine's name, or a name listed in api.allowed_hosts`,
    };
  }
  const origin = headers.origin;
  if (policy.origin === '*' || origin === undefined) return undefined;
  if (!upgrade && !STATE_CHANGING.has(method.toUpperCase())) return undefined;
  if (sameOrigin(origin, host)) return undefined;
  return {
    reason: 'origin',
    message: `cross-origin ${upgrade ? 'WebSocket' : method.toUpperCase()} refused: Origin "${origin}" is not this server (Host "${host}")`,
  };
}
