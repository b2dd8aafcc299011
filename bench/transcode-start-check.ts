// Whether the transcode's decoder starts cleanly: the command camrelay runs for it (read from
// /proc/<pid>/cmdline, so that this follows src/ as it changes) is run again by the bench with
// its output to `-f null`, for a few seconds from a fresh start, and its stderr (at camrelay's
// -loglevel error) is kept. A decoder that starts without the references of the frames it gets
// ("Could not find ref with POC …") decodes damaged pictures until the camera's next keyframe,
// and the first H.264 keyframe a viewer gets is one of them.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface StartCheck {
  /** stderr lines saying a reference picture was missing. */
  missingRefs: number;
  /** The first of those lines, else the first stderr line, if any. */
  first: string | undefined;
}

/** The transcode's arguments with its RTSP publish replaced by `-f null -` (undefined if not found). */
export function nullOutputArgs(pid: number): { bin: string; args: string[] } | undefined {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (argv.at(-1) === '') argv.pop();
  const input = argv.indexOf('-i');
  let out = -1;
  for (let i = argv.length - 2; i > input; i--) {
    if (argv[i] === '-f' && argv[i + 1] === 'rtsp') {
      out = i;
      break;
    }
  }
  if (input < 0 || out < 0) return undefined;
  return { bin: argv[0]!, args: [...argv.slice(1, out), '-f', 'null', '-'] };
}

/** The same command without `-fflags nobuffer` (which drops the packets ffmpeg read while probing its input). */
export function withoutNobuffer(cmd: { bin: string; args: string[] }): { bin: string; args: string[] } {
  const args = [...cmd.args];
  const i = args.findIndex((a, k) => a === '-fflags' && args[k + 1] === 'nobuffer');
  if (i >= 0) args.splice(i, 2);
  return { bin: cmd.bin, args };
}

/** Runs the command for `ms` and reads what it said. */
export function runStartCheck(cmd: { bin: string; args: string[] }, ms: number): Promise<StartCheck> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd.bin, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-20000)));
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.once('exit', () => {
      clearTimeout(t);
      const lines = err.split('\n').filter(Boolean);
      const missing = lines.filter((l) => /Could not find ref/.test(l));
      resolve({ missingRefs: missing.length, first: missing[0] ?? lines[0] });
    });
  });
}
