// GET /api/debug/objects without leaving a trace in the figures it is read with: the answer is
// taken only once camrelay has closed its end of the connection, so that a snapshot of camrelay's
// fds and sockets taken next does not count the request's own connection.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { waitFor } from '../../test/helpers/wait.js';
import { nonZero, type CamrelayProcess } from '../../test/helpers/camrelay-process.js';

export async function liveObjects(app: CamrelayProcess): Promise<Record<string, number>> {
  let localPort = 0;
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.get(`${app.base}/api/debug/objects`, { agent: false, headers: { connection: 'close' }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      res.on('error', reject);
    });
    req.on('socket', (s) => s.once('connect', () => (localPort = s.localPort ?? 0)));
    req.on('timeout', () => req.destroy(new Error('GET /api/debug/objects: no answer within 10 s')));
    req.on('error', reject);
  });
  if (localPort) await waitFor('camrelay to close the request connection', () => !serverEndOpen(app.port, localPort), 2000, 5);
  return nonZero(JSON.parse(body) as Record<string, number>);
}

/** Whether a socket from port `server` to our `client` port still has an fd (inode ≠ 0; TIME_WAIT has none). */
function serverEndOpen(server: number, client: number): boolean {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let rows: string[];
    try {
      rows = readFileSync(table, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const row of rows) {
      const f = row.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1]!.endsWith(`:${hex(server)}`) && f[2]!.endsWith(`:${hex(client)}`) && f[9] !== '0') return true;
    }
  }
  return false;
}
