import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TwinError } from './errors.js';
import { Profile, PROFILE_SCHEMA_VERSION } from './profile.js';

/** Zod's first issue as one line: `what: message at path (expected …, got …)`. */
export function describeIssue(what: string, err: z.ZodError): string {
  const issue = err.issues[0];
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  return `${what}: ${issue.message} at ${path}`;
}

/** Parses `data` with `schema`; a mismatch becomes a one-line TwinError naming the field. */
export function parseWith<T extends z.ZodTypeAny>(schema: T, data: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(data);
  if (!r.success) throw new TwinError(describeIssue(what, r.error));
  return r.data;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new TwinError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export function readYamlFile<T extends z.ZodTypeAny>(schema: T, file: string, what: string): z.infer<T> {
  const text = readText(file, what);
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new TwinError(`${what} ${file} is not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseWith(schema, data, `${what} ${file}`);
}

/** Writes whole or not at all: a temporary name, then rename. */
export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function writeJsonFile(file: string, data: unknown): void {
  writeFileAtomic(file, JSON.stringify(data, null, 2) + '\n');
}

/** A profile file, validated; one of another schema version is refused with what to do. */
export function readProfile(file: string): Profile {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TwinError(
      code ? `cannot read profile ${file}: ${code}` : `profile ${file} is not JSON: ${(e as Error).message}`,
    );
  }
  const v = (data as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof data === 'object' && data !== null && v !== undefined && v !== PROFILE_SCHEMA_VERSION)
    throw new TwinError(
      `profile ${file} has schemaVersion ${JSON.stringify(v)}; this Twin reads version ${PROFILE_SCHEMA_VERSION}: profile the target again with this version`,
    );
  return parseWith(Profile, data, `profile ${file}`);
}
