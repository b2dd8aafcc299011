import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

export interface ApiCredentials {
  username: string;
  password: string;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Whether an Authorization header carries these Basic credentials. */
export function basicAuthOk(header: string | undefined, creds: ApiCredentials): boolean {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  return same(Buffer.from(m[1]!, 'base64').toString(), `${creds.username}:${creds.password}`);
}

/** Basic auth on every route (API, page, media) when api.username/api.password are set. */
export function basicAuth(creds: ApiCredentials): RequestHandler {
  return (req, res, next) => {
    if (basicAuthOk(req.headers.authorization, creds)) return next();
    res.set('WWW-Authenticate', 'Basic realm="camrelay"').status(401).json({ error: 'authentication required' });
  };
}
