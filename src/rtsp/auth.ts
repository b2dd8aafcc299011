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

/** Server side: issues Digest (and Basic) challenges and checks Authorization headers. */
export class AuthChecker {
  readonly realm = 'camrelay';
  #nonce = randomBytes(16).toString('hex');

  constructor(private readonly creds: Credentials) {}

  challenges(): string[] {
    return [`Digest realm="${this.realm}", nonce="${this.#nonce}"`, `Basic realm="${this.realm}"`];
  }

  check(method: string, authorization: string | undefined): boolean {
    if (!authorization) return false;
    const m = /^\s*(basic|digest)\s+(.*)$/i.exec(authorization);
    if (!m) return false;
    const { username, password } = this.creds;
    if (m[1]!.toLowerCase() === 'basic') {
      return same(Buffer.from(m[2]!.trim(), 'base64').toString(), `${username}:${password}`);
    }
    const p = parseAuthParams(m[2]!);
    if (p.username !== username || p.nonce !== this.#nonce || p.realm !== this.realm || !p.uri || !p.response) return false;
    const ha1 = md5(`${username}:${this.realm}:${password}`);
    const ha2 = md5(`${method}:${p.uri}`);
    const expected = p.qop === 'auth' ? md5(`${ha1}:${p.nonce}:${p.nc ?? ''}:${p.cnonce ?? ''}:auth:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
    return same(p.response.toLowerCase(), expected);
  }
}
