import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Platform, TwinError, readYamlFile } from '../model/index.js';

export const PLATFORMS_DIR = fileURLToPath(new URL('../../../platforms/', import.meta.url));
export const DEFAULT_PLATFORM = 'skylake-sp';

export function platformNames(): string[] {
  return readdirSync(PLATFORMS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** A platform by name (platforms/NAME.yaml) or by file path. */
export function loadPlatform(nameOrFile: string): Platform {
  const file = /[/.]/.test(nameOrFile) ? nameOrFile : join(PLATFORMS_DIR, `${nameOrFile}.yaml`);
  if (!existsSync(file))
    throw new TwinError(`no platform ${nameOrFile}: give a file or one of ${platformNames().join(', ')}`);
  return readYamlFile(Platform, file, 'platform');
}
