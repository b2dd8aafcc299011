// Preloaded into the camrelay under soak (NODE_OPTIONS=--require): on SIGUSR2, a full garbage
// collection, then one JSON line on stdout (which the harness reads as a log line) with the heap
// after it. RSS read right after this no longer depends on when V8 last collected, so two
// checkpoints compare what is live, not how much garbage happened to be waiting.
'use strict';
const v8 = require('node:v8');
const vm = require('node:vm');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
process.on('SIGUSR2', () => {
  // Twice: the first pass runs finalizers and weak callbacks that free more for the second.
  gc();
  gc();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ level: 30, msg: 'soak gc', heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss })}\n`);
});
