// npm run bench [-- --quick] [--only fanout,onecam,ttff,stop,relay,floor,snapshots,snapshot-cpu,mse,transcode,house,baseline] [--backend werift|node-datachannel|both] [--no-write]
// Prints each benchmark's tables and writes its section of docs/benchmarks.md (bench/report.ts).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cameraCanRun, GstCamera } from '../test/helpers/gst-camera.js';
import { runBaseline } from './baseline.js';
import { probeBackends } from './backends.js';
import { ROOT, TREE } from './bundle.js';
import { ensureClip } from './clip.js';
import type { BenchContext } from './context.js';
import { runFanout } from './fanout.js';
import { runFloor } from './floor.js';
import { runHouse } from './house.js';
import { runMse } from './mse.js';
import { runOnecam } from './onecam.js';
import { runRelay } from './relay.js';
import { runSnapshots } from './snapshots.js';
import { runSnapshotCpu } from './snapshot-cpu.js';
import { writeSection } from './report.js';
import { runStop } from './stop.js';
import { targetsReport } from './targets.js';
import { runTranscode } from './transcode.js';
import { runTtff } from './ttff.js';

const BENCHES = {
  fanout: runFanout,
  onecam: runOnecam,
  ttff: runTtff,
  stop: runStop,
  relay: runRelay,
  floor: runFloor,
  snapshots: runSnapshots,
  'snapshot-cpu': runSnapshotCpu,
  mse: runMse,
  transcode: runTranscode,
  house: runHouse,
  // Last: its ratios use the figures of the others from this same run.
  baseline: runBaseline,
} as const satisfies Record<string, (ctx: BenchContext) => Promise<string>>;

type Name = keyof typeof BENCHES;

const USAGE = `usage: npm run bench -- [--quick] [--only ${Object.keys(BENCHES).join(',')}] [--backend werift|node-datachannel|both] [--no-write]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      backend: { type: 'string', default: 'both' },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const names = (values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(BENCHES)) as Name[];
  for (const n of names) if (!(n in BENCHES)) throw new Error(`unknown benchmark "${n}"\n${USAGE}`);
  const wanted = values.backend;
  if (wanted !== 'both' && wanted !== 'werift' && wanted !== 'node-datachannel') throw new Error(`--backend: werift, node-datachannel or both\n${USAGE}`);
  if (!cameraCanRun('h264-file')) throw new Error('GStreamer (appsrc, h264parse, rtph264pay) is missing: see test/helpers/gst-rtsp-server.py');

  const log = (line: string) => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const t0 = performance.now();
  // Another tree's figures describe that tree, not this one's docs: printed only.
  const write = !values['no-write'] && TREE === ROOT;
  if (TREE !== ROOT) log(`measuring the camrelay of ${TREE} (CAMRELAY_BENCH_TREE): docs/benchmarks.md is not written`);
  const clip = ensureClip(undefined, log);
  const backends = await probeBackends(wanted, log);
  // snapshots, snapshot-cpu, mse and baseline use no WebRTC.
  if (backends.length === 0 && names.some((n) => n !== 'baseline' && n !== 'snapshots' && n !== 'snapshot-cpu' && n !== 'mse')) throw new Error('no WebRTC backend of camrelay runs here');
  const camera = await GstCamera.start({ pipeline: 'h264-file', file: clip.file, fps: clip.fps });
  const ctx: BenchContext = {
    quick: values.quick,
    backends,
    clip,
    camera,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    log,
    shared: new Map(),
  };
  const order = (Object.keys(BENCHES) as Name[]).filter((n) => names.includes(n));
  const failed: string[] = [];
  try {
    for (const name of order) {
      const started = performance.now();
      log(`${name}: start`);
      let md: string;
      try {
        md = await BENCHES[name](ctx);
      } catch (e) {
        // One benchmark failing leaves its section as it was and lets the others run.
        log(`${name}: FAILED: ${e instanceof Error ? e.stack : String(e)}`);
        failed.push(name);
        continue;
      }
      console.log(`\n${md}\n`);
      if (write) writeSection(name, `${md}\n\n_${name}: ${((performance.now() - started) / 1000).toFixed(0)} s of the run._`);
      log(`${name}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
    const targets = targetsReport(ctx);
    if (targets) {
      console.log(`\n${targets}\n`);
      // A partial run (--only) would leave a verdict table missing rows: printed, not written.
      if (write && order.length === Object.keys(BENCHES).length && failed.length === 0) writeSection('targets', targets);
    }
  } finally {
    await camera.stop();
  }
  log(`all done in ${((performance.now() - t0) / 1000).toFixed(0)} s${write ? '' : ' (docs/benchmarks.md not written)'}`);
  if (failed.length) throw new Error(`failed: ${failed.join(', ')} (their sections were left as they were)`);
}

// A signal still runs the 'exit' handlers that kill the camrelay children (bench/camrelay.ts).
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(1);
  },
);
