// npm run soak [-- --webrtc 1000 --rtsp 1000 --mse 100 --hls 50 --every 100 --write]
// Drives a real camrelay process through WebRTC and RTSP viewer cycles, then MSE and HLS ones, and
// prints its resources at checkpoints; exits 1 if an acceptance criterion fails. With --write, the result replaces the
// 'soak' section of docs/benchmarks.md.
import { parseArgs } from 'node:util';
import { DEFAULTS, runSoak } from './soak/harness.js';
import { criteriaList, notes, resultTable, section } from './soak/format.js';
import { machineLine, writeSection, BENCHMARKS_MD } from './report.js';

const { values } = parseArgs({
  options: {
    webrtc: { type: 'string', default: '1000' },
    rtsp: { type: 'string', default: '1000' },
    mse: { type: 'string', default: '100' },
    hls: { type: 'string', default: '50' },
    every: { type: 'string', default: String(DEFAULTS.every) },
    reference: { type: 'string', default: String(DEFAULTS.reference) },
    'connect-timeout': { type: 'string', default: DEFAULTS.connectTimeout },
    'disconnect-timeout': { type: 'string', default: DEFAULTS.disconnectTimeout },
    backend: { type: 'string', default: DEFAULTS.backend },
    warmup: { type: 'boolean', default: true },
    gc: { type: 'boolean', default: true },
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
  allowNegative: true,
});

if (values.help) {
  console.log(`usage: npm run soak -- [--webrtc N] [--rtsp N] [--mse N] [--hls N] [--every N] [--reference N]
                       [--connect-timeout 1.5s] [--disconnect-timeout 1s] [--backend NAME] [--no-warmup] [--no-gc] [--write]
  --webrtc/--rtsp  cycles of each (default 1000 each)
  --mse/--hls      MSE cycles over /api/ws (default 100) and HLS sessions (default 50) after them, each
                   kind followed by a row that must be back at the baseline; 0 = none
  --every          a checkpoint row every N cycles (default ${DEFAULTS.every}); one is always at --reference (default ${DEFAULTS.reference})
  --backend        webrtc.backend in camrelay's config: auto (default; CAMRELAY_TEST_WEBRTC_BACKEND overrides), werift, node-datachannel
  --no-warmup      baseline right after startup (default: after one clean WebRTC and one RTSP cycle)
  --no-gc          no forced GC at checkpoints (default: camrelay preloads bench/soak/gc-hook.cjs, and
                   each row also shows RSS and the live JS heap right after a full GC)
  --write          replace the 'soak' section of docs/benchmarks.md with this run (default: print only)`);
  process.exit(0);
}

const count = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, not ${v}`);
    process.exit(2);
  }
  return n;
};

const options = {
  ...DEFAULTS,
  webrtc: count('webrtc', values.webrtc),
  rtsp: count('rtsp', values.rtsp),
  mse: count('mse', values.mse),
  hls: count('hls', values.hls),
  every: Math.max(1, count('every', values.every)),
  reference: count('reference', values.reference),
  connectTimeout: values['connect-timeout'],
  disconnectTimeout: values['disconnect-timeout'],
  backend: values.backend,
  warmup: values.warmup,
  gc: values.gc,
  progress: (line: string) => console.error(`[soak] ${line}`),
};

const command = ['npm run soak --', ...process.argv.slice(2)].join(' ');
console.error(`[soak] ${options.webrtc} WebRTC + ${options.rtsp} RTSP cycles, then ${options.mse} MSE and ${options.hls} HLS; ${values.write ? `the result goes to ${BENCHMARKS_MD}` : 'print only (--write puts the result in docs/benchmarks.md)'}`);
const result = await runSoak(options);
console.log(resultTable(result));
console.log();
console.log(criteriaList(result));
console.log();
console.log(notes(result));
if (values.write) {
  writeSection('soak', section(result, command, machineLine()));
  console.log(`\nwrote the 'soak' section of ${BENCHMARKS_MD}`);
} else {
  console.log('\ndocs/benchmarks.md not written (pass --write)');
}
process.exitCode = result.pass ? 0 : 1;
