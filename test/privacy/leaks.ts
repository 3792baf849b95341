/* The privacy test's search: an original program's own strings and symbols, and where any of
 * them occurs in a set of files (a profile, a clone's sources, a clone's binary).
 *
 * Drives the binutils only (objcopy, nm); imports nothing from src/. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Strings shorter than this are not searched: short runs ("%s: %s", "GET") are everyone's. */
export const MIN_LENGTH = 8;

/** What any program of this kind carries, and so proves nothing about the original, by reason.
 *  Each entry was a hit of the search on an original Twin never saw (Debian's memcached,
 *  redis-server, nginx) or on the test's own server; a new hit fails the test until a person
 *  decides it belongs to one of these reasons (PostgreSQL's postgres was added with its protocol). Names the C library exports (`optarg`,
 *  `stderr`, `getpeername`, `shutdown`…) are allowed by `isLibcName`, read from the machine's
 *  libc itself, not listed here. */
export const ALLOWED_BY_REASON: Readonly<Record<string, readonly string[]>> = {
  // The wire protocols' own words. A clone answers the same protocol as its original, so
  // Twin's runtime sends them too, and a profile names its protocol ("memcached").
  http: [
    'HTTP/1.1 200 OK',
    'HTTP/1.1 400 Bad Request',
    '400 Bad Request',
    '501 Not Implemented',
    'Content-Length',
    'Content-Length: 0',
    'Content-Type',
    'Connection',
    'Connection: close',
    'keep-alive',
    'Transfer-Encoding',
  ],
  memcached: ['memcached', 'SERVER_ERROR'],
  // Redis's error replies, which RESP clients receive and match: Twin's RESP shim answers a
  // malformed request with the same words.
  resp: [
    'wrong number of arguments',
    'invalid bulk length',
    'too big inline request',
    'Protocol error: invalid bulk length',
    'Protocol error: invalid multibulk length',
    'Protocol error: too big inline request',
  ],
  // The PostgreSQL v3 protocol's: the parameters a server reports at start-up (libpq reads
  // them; their values are the protocol's defaults, not the original's settings), its
  // transaction command tags, and the protocol's name, which the profile names.
  postgres: [
    'postgres',
    'DateStyle',
    'ISO, MDY',
    'IntervalStyle',
    'TimeZone',
    'integer_datetimes',
    'datetime',
    'server_encoding',
    'encoding',
    'server_version',
    'standard_conforming_strings',
    'ROLLBACK',
    'rollback',
    'statement',
    'POSTGRES',
    'PostgreSQL',
    'ReadyForQuery',
    'no encryption',
  ],
  // The platform's: the loopback address, the null device, digit and letter alphabets.
  platform: ['127.0.0.1', '/dev/null', '0123456789', 'abcdefghijklmnopqrstuvwxyz'],
  // Names gcc's crt files (crt1.o, crti.o, crtbegin.o) and the GNU linker put into every
  // executable they link, a clone included. (`main` is shorter than MIN_LENGTH.)
  crt: [
    '_IO_stdin_used',
    '__bss_start',
    '__data_start',
    'data_start',
    '__dso_handle',
    '__TMC_END__',
    '__FRAME_END__',
    '__GNU_EH_FRAME_HDR',
    '_GLOBAL_OFFSET_TABLE_',
    '_DYNAMIC',
    '__abi_tag',
    '__do_global_dtors_aux',
    '__do_global_dtors_aux_fini_array_entry',
    '__frame_dummy_init_array_entry',
    'frame_dummy',
    'completed.0',
    'deregister_tm_clones',
    'register_tm_clones',
  ],
  // C itself, in Twin's C sources and in the originals' assertion texts: keywords, a cast, a
  // call every server makes, and a source file name (an unstripped clone lists its files).
  c: [
    'volatile',
    'continue',
    '(double)',
    'len == 0',
    'SIGPIPE, SIG_IGN',
    'server.c',
    'EADDRINUSE',
    'ECONNABORTED',
    'SO_REUSEADDR',
    'TCP_NODELAY',
  ],
  // Plain English words that Twin's comments, flags (-fno-toplevel-reorder), profile fields
  // ("protocol") and messages ("worker process %u exited") use and that happen to be whole
  // strings of redis-server's or nginx's .rodata.
  english: [
    'protocol',
    'incomplete',
    'toplevel',
    'absolute',
    'relative',
    'condition',
    'comparison',
    'everything',
    '<number>',
    'worker process',
    // Whole strings of postgres's .rodata: the runtime's messages and comments, the profile's
    // fields (`conflict`, `moreConnections`), the generated Makefile's and chain's comments.
    'configuration',
    'conflict',
    'connection',
    'finalize',
    'function',
    'functions',
    'generated',
    'location',
    'missing name',
    'out of memory',
    'attribute',
    'character',
    'children',
    'comments',
    'database',
    'description',
    'including',
    'inherits',
    'insensitive',
    'parameter',
    'position',
    'prepared',
    'references',
    'remainder',
    'sequence',
  ],
};

export const ALLOWED: readonly string[] = Object.values(ALLOWED_BY_REASON).flat();

/** Fails with a clear message when a tool the search needs is missing: never a silent pass. */
export function requireTool(name: string, install = 'apt-get install binutils gcc'): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim() : '';
  if (!path)
    throw new Error(`${name} is not installed (not on PATH): the privacy test needs it (${install})`);
  return path;
}

/** Printable ASCII runs of at least `min` bytes, like strings(1), without surrounding blanks. */
export function printableRuns(buf: Buffer, min: number): string[] {
  const runs: string[] = [];
  let start = -1;
  const flush = (end: number) => {
    if (start >= 0) {
      const s = buf.toString('latin1', start, end).trim();
      if (s.length >= min) runs.push(s);
    }
    start = -1;
  };
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if ((b >= 32 && b < 127) || b === 9) {
      if (start < 0) start = i;
    } else flush(i);
  }
  flush(buf.length);
  return runs;
}

/** The printable runs of a binary's .rodata (objcopy -O binary --only-section=.rodata). */
export function rodataStrings(binary: string, min = MIN_LENGTH): string[] {
  requireTool('objcopy');
  const dir = mkdtempSync(join(tmpdir(), 'twin-privacy-'));
  try {
    const dump = join(dir, 'rodata.bin');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.rodata', binary, dump], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    return printableRuns(readFileSync(dump), min);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Names of the symbols `nm` lists as defined, without a version suffix (`stderr@GLIBC_2.2.5`). */
function nmNames(args: string[]): string[] {
  requireTool('nm');
  const r = spawnSync('nm', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  // A stripped binary has no static table: nm says "no symbols" (and exits 0 or 1 by version).
  if (r.status !== 0 && !/no symbols/.test(r.stderr))
    throw new Error(`nm ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3)
    .map((f) => f[2].replace(/@.*$/, ''));
}

/** Defined symbol names, of both the static table (if any: none in a stripped binary) and the
 *  dynamic one. */
export function symbolNames(binary: string): string[] {
  return [...new Set([...nmNames(['--defined-only', binary]), ...nmNames(['-D', '--defined-only', binary])])];
}

let libcNames: Set<string> | undefined;

/** Whether `name` is a symbol the machine's C library exports: the platform's names, not the
 *  original's (a binary that copies `stderr` or `optarg` lists them as its own). */
export function isLibcName(name: string): boolean {
  if (!libcNames) {
    const r = spawnSync('sh', ['-c', 'gcc -print-file-name=libc.so.6'], { encoding: 'utf8' });
    const libc = r.status === 0 ? r.stdout.trim() : '';
    if (!libc.startsWith('/'))
      throw new Error('cannot find libc.so.6 (gcc -print-file-name=libc.so.6): the privacy test needs gcc');
    libcNames = new Set(nmNames(['-D', '--defined-only', libc]));
  }
  return libcNames.has(name);
}

const CONVERSION = /%[-+ #0-9.*]*(hh|h|ll|l|L|q|j|z|t)?[diouxXeEfFgGaAcspn%]/g;

/** Whether `s` is a printf format of conversions, punctuation and blanks only ("%s:%d: %s",
 *  "%ld.%06ld"): no word or number of its own, which any program that prints may hold. */
export function isWordless(s: string): boolean {
  const rest = s.replace(CONVERSION, '');
  return rest.length < s.length && !/[A-Za-z0-9]/.test(rest);
}

/** An original's own strings: the printable runs of its .rodata and its defined symbol names, of
 *  at least MIN_LENGTH characters, less ALLOWED, wordless formats and the C library's names. */
export function originalStrings(binary: string): string[] {
  const allowed = new Set(ALLOWED);
  const all = [...rodataStrings(binary), ...symbolNames(binary)];
  return [...new Set(all)].filter(
    (s) => s.length >= MIN_LENGTH && !allowed.has(s) && !isWordless(s) && !isLibcName(s),
  );
}

export interface Leak {
  string: string;
  file: string;
}

/** Which of `strings` occur in which of `files`: a byte search (text and binary files alike).
 *  Each string is looked up by its first MIN_LENGTH bytes at every offset of a file, then
 *  compared whole, so thousands of strings cost one pass over each file. */
export function leaks(strings: readonly string[], files: readonly string[]): Leak[] {
  const byPrefix = new Map<string, string[]>();
  for (const s of new Set(strings)) {
    if (s.length < MIN_LENGTH)
      throw new Error(`"${s}" is shorter than ${MIN_LENGTH} characters: too short to search for`);
    const p = s.slice(0, MIN_LENGTH);
    const list = byPrefix.get(p);
    if (list) list.push(s);
    else byPrefix.set(p, [s]);
  }
  const found: Leak[] = [];
  for (const file of files) {
    // latin1 maps each byte to one character, so offsets and bytes agree.
    const text = readFileSync(file).toString('latin1');
    const seen = new Set<string>();
    for (let i = 0; i + MIN_LENGTH <= text.length; i++) {
      const cands = byPrefix.get(text.slice(i, i + MIN_LENGTH));
      if (!cands) continue;
      for (const s of cands) if (!seen.has(s) && text.startsWith(s, i)) seen.add(s);
    }
    for (const s of seen) found.push({ string: s, file });
  }
  return found;
}

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}
