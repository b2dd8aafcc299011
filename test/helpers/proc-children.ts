// A process's children by name, straight from /proc: cheap enough to poll every few ms, unlike
// ps. Every thread's children file is read, since Node may spawn from a thread other than main.
import { readdirSync, readFileSync } from 'node:fs';

export function childrenNamed(pid: number, names: readonly string[]): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let kids: string[];
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean);
    } catch {
      continue;
    }
    for (const k of kids) {
      try {
        if (names.includes(readFileSync(`/proc/${k}/comm`, 'utf8').trim())) out.push(Number(k));
      } catch {
        // gone while we looked
      }
    }
  }
  return out;
}
