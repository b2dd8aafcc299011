// GET /api in a loop from a process of its own (bench/snapshots.ts forks it), so that the time
// measured is camrelay's answer and not the bench's event loop, busy with a burst of responses.
// Each GET has its own connection (agent: false): a fresh client, as after Home Assistant's
// watchdog lost its keep-alive socket, waits for the accept as well as for the answer.
// argv: <base url> <pause ms between GETs> <loops>: that many loops of GETs, staggered, each
// pausing after every answer. Sends {t, ms, status} over IPC per GET, where t is the epoch ms at
// which the request was sent.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const [base, pauseArg, loopsArg] = process.argv.slice(2);
if (!base || !process.send) throw new Error('usage: fork api-sampler.ts <base url> <pause ms> (with an IPC channel)');
const pause = Number(pauseArg ?? 10);
const loops = Math.max(1, Math.min(16, Number(loopsArg ?? 1)));

export interface ApiSample {
  /** Epoch ms the request was sent. */
  t: number;
  ms: number;
  /** HTTP status; 0 = no answer (error or the 5 s deadline). */
  status: number;
}

function once(): Promise<ApiSample> {
  const start = performance.now();
  const t = performance.timeOrigin + start;
  return new Promise((resolve) => {
    const done = (status: number) => resolve({ t, ms: performance.now() - start, status });
    const req = http.get(`${base}/api`, { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.once('end', () => done(res.statusCode ?? 0));
      res.once('error', () => done(0));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => done(0));
  });
}

let running = true;
process.on('disconnect', () => (running = false));
async function loop(offset: number): Promise<void> {
  await new Promise((r) => setTimeout(r, offset));
  // Bounded: at most an hour of samples, ending when the bench goes away.
  for (let i = 0; running && i < 360_000; i++) {
    const s = await once();
    if (!running) break;
    process.send!(s);
    await new Promise((r) => setTimeout(r, pause));
  }
}

process.send({ ready: true });
await Promise.all(Array.from({ length: loops }, (_, i) => loop((i * pause) / loops)));
process.exit(0);
