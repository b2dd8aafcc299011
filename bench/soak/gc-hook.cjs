// Preloaded into the camrelay under soak (NODE_OPTIONS=--require): on SIGUSR2, a full garbage
// collection, then one JSON line on stdout (which the harness reads as a log line) with the heap
// after it. RSS read right after this no longer depends on when V8 last collected, so two
// checkpoints compare what is live, not how much garbage happened to be waiting.
'use strict';
const v8 = require('node:v8');
const vm = require('node:vm');
const { PerformanceObserver, constants, performance } = require('node:perf_hooks');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
/** performance.now() span of the last forced collection: the observer, called later, skips it. */
const forced = { from: -1, to: -1 };
process.on('SIGUSR2', () => {
  // Twice: the first pass runs finalizers and weak callbacks that free more for the second.
  forced.from = performance.now();
  gc();
  gc();
  forced.to = performance.now();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ level: 30, msg: 'soak gc', heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss })}\n`);
});

// The major GCs V8 starts by itself (its memory reducer gives memory back a few seconds after the
// allocations stop), with when they began on the wall clock: the harness leaves the seconds that
// hold one out of its idle-CPU window, where they would read as work left running.
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR || (e.startTime >= forced.from && e.startTime <= forced.to)) continue;
    process.stdout.write(`${JSON.stringify({ level: 30, msg: 'soak v8 gc', at: performance.timeOrigin + e.startTime, ms: e.duration })}\n`);
  }
}).observe({ entryTypes: ['gc'] });
