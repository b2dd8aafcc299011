// HTTP for tests without keep-alive: every request uses its own connection and closes it, so
// counting camrelay's TCP sockets is not disturbed by a client-side connection pool.
import http from 'node:http';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: init.method ?? 'GET', headers: { connection: 'close', ...init.headers }, agent: false, signal: init.signal, timeout: init.timeoutMs ?? 20000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${init.method ?? 'GET'} ${url}: no answer within ${init.timeoutMs ?? 20000} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}
