// rtsp-relay (the baseline of `npm run bench`) set up as its README does: an express app, one
// WebSocket route proxying one camera. Its ffmpeg-static dependency was installed without its
// download script, so ffmpeg-static reads the binary from FFMPEG_BIN (Debian's /usr/bin/ffmpeg,
// set by bench/baseline.ts).
//
// env: CAMERA_URL. Prints JSON lines on stdout: {"event":"listening","port":N}, and for every
// child rtsp-relay spawns {"event":"spawn"|"exit","pid":P,"t":ms} with t on the epoch clock
// (performance.timeOrigin + performance.now(), comparable across processes of this machine).
'use strict';
const childProcess = require('child_process');
const { performance } = require('perf_hooks');

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const now = () => performance.timeOrigin + performance.now();

// rtsp-relay takes `spawn` from child_process when it loads: wrap it first, to time its ffmpeg.
const spawn = childProcess.spawn;
childProcess.spawn = function timedSpawn(...args) {
  const child = spawn.apply(this, args);
  emit({ event: 'spawn', pid: child.pid, t: now(), cmd: [args[0], ...(args[1] || [])].join(' ') });
  child.once('exit', (code, signal) => emit({ event: 'exit', pid: child.pid, t: now(), code, signal }));
  return child;
};

const express = require('express');
const app = express();
const { proxy } = require('rtsp-relay')(app);

app.ws('/stream', proxy({ url: process.env.CAMERA_URL, transport: 'tcp', verbose: false }));

const server = app.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }));

// The bench holds our stdin: when it goes, so do we (and rtsp-relay's ffmpeg with us).
process.stdin.resume();
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
