import { readFileSync } from 'node:fs';
import { TwinError } from '../model/index.js';

const UNISTD = ['/usr/include/x86_64-linux-gnu/asm/unistd_64.h', '/usr/include/asm/unistd_64.h'];

/** `#define __NR_name N` lines of the kernel's unistd_64.h → number-to-name table. */
export function parseUnistd(text: string): Map<number, string> {
  const table = new Map<number, string>();
  for (const m of text.matchAll(/^#define\s+__NR_(\w+)\s+(\d+)\s*$/gm)) table.set(Number(m[2]), m[1]);
  return table;
}

let cached: Map<number, string> | null = null;

/** The x86-64 system call table, read from the kernel headers (linux-libc-dev). */
export function syscallTable(): Map<number, string> {
  if (cached) return cached;
  for (const f of UNISTD) {
    try {
      cached = parseUnistd(readFileSync(f, 'utf8'));
      return cached;
    } catch {
      /* try the next */
    }
  }
  throw new TwinError(
    'the kernel headers are missing (no unistd_64.h): run scripts/bootstrap.sh, which installs linux-libc-dev',
  );
}

export function syscallName(nr: number): string {
  return syscallTable().get(nr) ?? `sys_${nr}`;
}

/** A call's number in syscallTable. */
export function syscallNumber(name: string): number {
  for (const [nr, n] of syscallTable()) if (n === name) return nr;
  throw new TwinError(`no system call named ${name} in the kernel headers`);
}
