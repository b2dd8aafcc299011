// RTSP authentication (RFC 2326 §D.2 points to HTTP's RFC 2617): Basic and Digest (MD5, with or
// without qop=auth), for the client answering a camera's challenge and the server issuing one.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  scheme: 'basic' | 'digest';
  params: Record<string, string>;
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** Splits `k=v, k2="v, 2"` into a map (keys lowercased). */
export function parseAuthParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([a-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/gi;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  return out;
}

/** The challenges in WWW-Authenticate headers we can answer, Digest first. */
export function parseChallenges(headers: string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const h of headers) {
    const m = /^\s*(basic|digest)\b\s*(.*)$/i.exec(h);
    if (m) out.push({ scheme: m[1]!.toLowerCase() as Challenge['scheme'], params: parseAuthParams(m[2]!) });
  }
  return out.sort((a, b) => (a.scheme === b.scheme ? 0 : a.scheme === 'digest' ? -1 : 1));
}

/** Client side: answers one challenge; keeps the nonce count across requests. */
export class AuthAnswerer {
  #nc = 0;
  constructor(
    private readonly creds: Credentials,
    private readonly challenge: Challenge,
  ) {}

  header(method: string, uri: string): string {
    const { username, password } = this.creds;
    if (this.challenge.scheme === 'basic') return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
    const p = this.challenge.params;
    const realm = p.realm ?? '';
    const nonce = p.nonce ?? '';
    const ha1 = md5(`${username}:${realm}:${password}`);
    const ha2 = md5(`${method}:${uri}`);
    const qop = (p.qop ?? '').split(',').map((s) => s.trim()).includes('auth') ? 'auth' : undefined;
    const fields = [`username="${username}"`, `realm="${realm}"`, `nonce="${nonce}"`, `uri="${uri}"`];
    if (qop) {
      const nc = (++this.#nc).toString(16).padStart(8, '0');
      const cnonce = randomBytes(8).toString('hex');
      fields.push(`response="${md5(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`)}"`, `qop=${qop}`, `nc=${nc}`, `cnonce="${cnonce}"`);
    } else {
      fields.push(`response="${md5(`${ha1}:${nonce}:${ha2}`)}"`);
    }
    if (p.opaque !== undefined) fields.push(`opaque="${p.opaque}"`);
    if (p.algorithm) fields.push(`algorithm=${p.algorithm}`);
    return 'Digest ' + fields.join(', ');
  }
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export interface AuthCheckerOptions {
  /** How long a nonce is valid after its challenge or its last accepted use (ms); default 60 s. */
  nonceTtlMs?: number;
  /** Nonces outstanding at once; the oldest is forgotten first (its user gets stale=true). */
  maxNonces?: number;
  now?: () => number;
}

export const DEFAULT_NONCE_TTL_MS = 60_000;
const DEFAULT_MAX_NONCES = 4096;

/** The outcome of a check; `stale`: the digest was right but for an expired or forgotten nonce. */
export type AuthResult = { ok: true } | { ok: false; stale: boolean; why: string };

interface NonceState {
  /** Who was challenged: a digest with this nonce is valid only on that connection. */
  owner: string;
  expires: number;
  /** Highest nonce count seen (qop=auth); a later request must count higher. */
  nc: number;
}

/**
 * Server side: issues Digest (and Basic) challenges and checks Authorization headers. Every
 * challenge has a fresh random nonce, valid on one connection until unused for nonceTtlMs; a digest must
 * name the request's own URI; with qop=auth its nonce count must grow, so a captured header
 * replays neither on another connection, nor for another path, nor again.
 */
export class AuthChecker {
  readonly realm = 'camrelay';
  /** Insertion order is expiry order (one lifetime for all, re-inserted on use): the oldest are at the front. */
  #nonces = new Map<string, NonceState>();
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(
    private readonly creds: Credentials,
    opts: AuthCheckerOptions = {},
  ) {
    this.#ttl = opts.nonceTtlMs ?? DEFAULT_NONCE_TTL_MS;
    this.#max = opts.maxNonces ?? DEFAULT_MAX_NONCES;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Nonces held now (bounded by maxNonces). */
  get outstanding(): number {
    return this.#nonces.size;
  }

  /** WWW-Authenticate values for a 401 to `owner` (one connection); `stale` after an expired nonce. */
  challenges(owner: string, stale = false): string[] {
    const now = this.#now();
    for (const [n, st] of this.#nonces) {
      if (st.expires > now && this.#nonces.size < this.#max) break;
      this.#nonces.delete(n);
    }
    const nonce = randomBytes(16).toString('hex');
    this.#nonces.set(nonce, { owner, expires: now + this.#ttl, nc: 0 });
    return [`Digest realm="${this.realm}", nonce="${nonce}", qop="auth"${stale ? ', stale=true' : ''}`, `Basic realm="${this.realm}"`];
  }

  /** Forgets the nonces of a connection that closed. */
  forget(owner: string): void {
    for (const [n, st] of this.#nonces) if (st.owner === owner) this.#nonces.delete(n);
  }

  check(method: string, requestUri: string, authorization: string | undefined, owner: string): AuthResult {
    if (!authorization) return { ok: false, stale: false, why: 'no Authorization header' };
    const m = /^\s*(basic|digest)\s+(.*)$/i.exec(authorization);
    if (!m) return { ok: false, stale: false, why: 'unknown authorization scheme' };
    const { username, password } = this.creds;
    if (m[1]!.toLowerCase() === 'basic') {
      const ok = same(Buffer.from(m[2]!.trim(), 'base64').toString(), `${username}:${password}`);
      return ok ? { ok } : { ok, stale: false, why: 'wrong Basic credentials' };
    }
    const p = parseAuthParams(m[2]!);
    if (p.username !== username || p.realm !== this.realm || !p.nonce || !p.uri || !p.response) return { ok: false, stale: false, why: 'wrong or incomplete Digest' };
    if (!sameUri(p.uri, requestUri)) return { ok: false, stale: false, why: `Digest uri "${p.uri.slice(0, 200)}" is not the request's` };
    const ha1 = md5(`${username}:${this.realm}:${password}`);
    const ha2 = md5(`${method}:${p.uri}`);
    const qop = p.qop?.toLowerCase();
    if (qop !== undefined && qop !== 'auth') return { ok: false, stale: false, why: `unsupported qop ${qop.slice(0, 20)}` };
    const expected = qop === 'auth' ? md5(`${ha1}:${p.nonce}:${p.nc ?? ''}:${p.cnonce ?? ''}:auth:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
    if (!same(p.response.toLowerCase(), expected)) return { ok: false, stale: false, why: 'wrong Digest response' };
    // The password was right; whether this nonce may still be used is another matter (stale).
    const st = this.#nonces.get(p.nonce);
    if (!st || st.owner !== owner) return { ok: false, stale: true, why: st ? 'nonce issued to another connection' : 'unknown nonce' };
    if (st.expires <= this.#now()) {
      this.#nonces.delete(p.nonce);
      return { ok: false, stale: true, why: 'nonce expired' };
    }
    if (qop === 'auth') {
      const nc = /^[0-9a-f]{1,8}$/i.test(p.nc ?? '') ? parseInt(p.nc!, 16) : NaN;
      if (!(nc > st.nc)) return { ok: false, stale: false, why: `nonce count ${p.nc ?? 'missing'} does not grow` };
      st.nc = nc;
    }
    // Valid for nonceTtlMs after its last use: a player's keep-alives must not meet a 401 (and
    // a log line) every minute; bound to its connection, a nonce in use is no wider exposure.
    st.expires = this.#now() + this.#ttl;
    this.#nonces.delete(p.nonce);
    this.#nonces.set(p.nonce, st);
    return { ok: true };
  }
}

/** The same resource: equal as written, or the same path and query once parsed (absolute or not). */
function sameUri(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  const a = pathAndQuery(digestUri);
  return a !== undefined && a === pathAndQuery(requestUri);
}

function pathAndQuery(u: string): string | undefined {
  try {
    const url = new URL(u, 'rtsp://host/');
    return url.pathname.replace(/\/+$/, '') + url.search;
  } catch {
    return undefined;
  }
}
