// Can node-datachannel's sends be spread over threads? Each case loads the addon in the threads
// it names, waits until every one has loaded it, then has each make a few peer connections with a
// video track (what a thread sending to its share of the viewers would do first). Run as a child
// process of bench/floor.ts, because a failure here is a V8 fatal error that ends the process.
//
// usage: node --import tsx bench/ndc-threads.ts <one-worker|main+worker|two-workers>
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

export const THREAD_CASES = ['one-worker', 'main+worker', 'two-workers'] as const;

// Plain JavaScript: an eval'd worker does not go through tsx.
const THREAD_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
let ndc;
parentPort.on('message', (m) => {
  if (m === 'go') { makePeers(ndc); parentPort.postMessage('made'); }
  if (m === 'end') { ndc.cleanup(); parentPort.postMessage('ended'); }
});
${makePeers.toString()}
import(workerData.url).then((mod) => { ndc = mod.default; parentPort.postMessage('loaded'); });
`;

interface Ndc {
  PeerConnection: new (name: string, config: { iceServers: string[] }) => { addTrack(v: unknown): { close(): void }; close(): void };
  Video: new (mid: string, dir: string) => { addH264Codec(pt: number): void };
  cleanup(): void;
}

function makePeers(ndc: Ndc): void {
  for (let i = 0; i < 3; i++) {
    const pc = new ndc.PeerConnection(`p${i}`, { iceServers: [] });
    const v = new ndc.Video('0', 'SendOnly');
    v.addH264Codec(96);
    pc.addTrack(v).close();
    pc.close();
  }
}

async function main(which: string): Promise<void> {
  const url = pathToFileURL(createRequire(import.meta.url).resolve('node-datachannel')).href;
  const workers = Array.from({ length: which === 'two-workers' ? 2 : 1 }, () => new Worker(THREAD_CODE, { eval: true, workerData: { url } }));
  const next = (w: Worker, what: string) => new Promise<void>((resolve) => w.on('message', (m) => m === what && resolve()));
  const loaded = workers.map((w) => next(w, 'loaded'));
  const mainNdc = which === 'main+worker' ? ((await import(url)) as { default: Ndc }).default : undefined;
  await Promise.all(loaded);
  const made = workers.map((w) => next(w, 'made'));
  for (const w of workers) w.postMessage('go');
  if (mainNdc) makePeers(mainNdc);
  await Promise.all(made);
  console.log(JSON.stringify({ ok: true }));
  const ended = workers.map((w) => next(w, 'ended'));
  for (const w of workers) w.postMessage('end');
  await Promise.all(ended);
  await Promise.all(workers.map((w) => w.terminate()));
  process.exit(0);
}

if (process.argv[1] === import.meta.filename) {
  const which = process.argv[2] ?? '';
  if (!(THREAD_CASES as readonly string[]).includes(which)) throw new Error(`usage: ndc-threads.ts <${THREAD_CASES.join('|')}>`);
  await main(which);
}
