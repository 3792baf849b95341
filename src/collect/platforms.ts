import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { L1_SIZES, Platform, TwinError, readYamlFile } from '../model/index.js';

export const PLATFORMS_DIR = fileURLToPath(new URL('../../../platforms/', import.meta.url));
export const DEFAULT_PLATFORM = 'skylake-sp';

export function platformNames(): string[] {
  return readdirSync(PLATFORMS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** A platform by name (platforms/NAME.yaml), by file path, or `random:SEED:K`: the K-th
 *  cache geometry drawn from SEED (`randomPlatform`). */
export function loadPlatform(nameOrFile: string): Platform {
  const random = /^random:(\d+):(\d+)$/.exec(nameOrFile);
  if (random) return randomPlatform(Number(random[1]), Number(random[2]));
  const file = /[/.]/.test(nameOrFile) ? nameOrFile : join(PLATFORMS_DIR, `${nameOrFile}.yaml`);
  if (!existsSync(file))
    throw new TwinError(
      `no platform ${nameOrFile}: give a file, random:SEED:K or one of ${platformNames().join(', ')}`,
    );
  return readYamlFile(Platform, file, 'platform');
}

/** splitmix64's output, reduced to [0, 1): the same draw on every machine. */
function draws(seed: bigint): () => number {
  let state = seed;
  const M = (1n << 64n) - 1n;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & M;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  };
}

/** A cache of `lo` to `hi` bytes with 64-byte lines: `assoc` ways drawn from `ways`, its set
 *  count a power of two (Valgrind's rule), one of those that fit drawn at random. */
function drawCache(next: () => number, lo: number, hi: number, ways: [number, number]) {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  for (;;) {
    const assoc = ways[0] + Math.floor(next() * (ways[1] - ways[0] + 1));
    const sets = [];
    for (let s = 1; s * assoc * 64 <= hi; s *= 2) if (s * assoc * 64 >= lo) sets.push(s);
    if (sets.length) return { size: pick(sets) * assoc * 64, assoc, line: 64 };
  }
}

/** The K-th cache geometry drawn from SEED, for validation on caches no one tuned to: L1s of
 *  16 to 128 KiB with 2 to 16 ways (I1 and D1 drawn apart), an L2 of 256 KiB to 2 MiB with 4
 *  to 16 ways, an LLC of 4 to 64 MiB with 8 to 16 ways. */
export function randomPlatform(seed: number, k: number): Platform {
  const next = draws(BigInt(seed) * 1000003n + BigInt(k));
  return {
    name: `random-${seed}-${k}`,
    I1: drawCache(next, L1_SIZES.lo, L1_SIZES.hi, [2, 16]),
    D1: drawCache(next, L1_SIZES.lo, L1_SIZES.hi, [2, 16]),
    L2: drawCache(next, 256 << 10, 2 << 20, [4, 16]),
    LLC: drawCache(next, 4 << 20, 64 << 20, [8, 16]),
  };
}
