/**
 * The one way tests run the CLI: in process through main() by default, or,
 * with DUMPSIEVE_BIN set, as its own process from that entry (a built
 * bin/dumpsieve.js, the bundle's dumpsieve.mjs or its launcher script), so
 * that the same tests hold the self-contained bundle to the same output
 * (scripts/test-bundle.sh). `ptyCli` runs the entry on a pseudo-terminal
 * (util-linux `script`), for what only a terminal shows: the progress
 * display, and -F refusing to write a dump to one.
 */
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { assertFreshBuild, ROOT } from '../helpers/built-cli.js';

export interface Run {
  code: number;
  /** Standard output and error decoded as UTF-8; the bytes for anything else (a flattened dump with -F, latin1 text). */
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
}

export interface CliOptions {
  /** What `-` reads. */
  stdin?: Readable | Uint8Array | undefined;
  /** Working directory of a spawned entry (the in-process CLI runs in the test's). */
  cwd?: string | undefined;
  /** How `stdout` and `stderr` are decoded (default utf8; latin1 keeps every byte of a dump's strings). */
  encoding?: BufferEncoding | undefined;
}

/** The entry under test, or undefined for the in-process CLI. */
export const BIN = process.env.DUMPSIEVE_BIN || undefined;

/** The command line that runs the entry `bin`: scripts under this node, anything else executed. */
export function binCommand(bin: string): [string, string[]] {
  return /\.m?js$/.test(bin) ? [process.execPath, [bin]] : [bin, []];
}

/** `dumpsieve ARGV...` with nothing on standard input. */
export function cli(...argv: string[]): Promise<Run> {
  return cliWith({}, ...argv);
}

export async function cliWith(opts: CliOptions, ...argv: string[]): Promise<Run> {
  if (BIN) return spawnCli(BIN, argv, opts);
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  const stdin = opts.stdin instanceof Uint8Array ? Readable.from([Buffer.from(opts.stdin)]) : opts.stdin;
  // yargs prints --help and --version with console.log: catch that too, as a process's stdout would.
  const log = console.log;
  console.log = (...a: unknown[]) => void o.push(Buffer.from(`${a.map(String).join(' ')}\n`));
  let code: number;
  try {
    code = await main(argv, { stdin, stdout: out, stderr: err, stderrIsTTY: false, stdoutIsTTY: false });
  } finally {
    console.log = log;
  }
  return result(code, o, e, opts.encoding);
}

function result(code: number, o: Buffer[], e: Buffer[], encoding: BufferEncoding = 'utf8'): Run {
  const stdoutBytes = Buffer.concat(o);
  const stderrBytes = Buffer.concat(e);
  return { code, stdout: stdoutBytes.toString(encoding), stderr: stderrBytes.toString(encoding), stdoutBytes, stderrBytes };
}

function spawnCli(bin: string, argv: string[], opts: CliOptions): Promise<Run> {
  const [cmd, pre] = binCommand(bin);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, [...pre, ...argv], { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    const o: Buffer[] = [];
    const e: Buffer[] = [];
    p.stdout!.on('data', (b: Buffer) => o.push(b));
    p.stderr!.on('data', (b: Buffer) => e.push(b));
    if (p.stdin && opts.stdin) {
      p.stdin.on('error', () => undefined); // the CLI may stop reading early (an error); its exit code tells
      if (opts.stdin instanceof Uint8Array) p.stdin.end(opts.stdin);
      else opts.stdin.pipe(p.stdin);
    }
    p.on('error', reject);
    p.on('close', (code, signal) => resolve(result(code ?? (signal ? 128 : 1), o, e, opts.encoding)));
  });
}

export interface PtyRun {
  code: number;
  /** What the terminal received (standard output and error interleaved, `\n` as `\r\n`). */
  screen: string;
}

/**
 * `dumpsieve ARGV...` with standard input, output and error on a
 * pseudo-terminal (util-linux `script -qfec CMD /dev/null`): the entry
 * DUMPSIEVE_BIN names, or the built bin/dumpsieve.js. `columns` sets the
 * terminal's width.
 */
export function ptyCli(argv: readonly string[], opts: { cwd?: string; columns?: number } = {}): Promise<PtyRun> {
  if (!BIN) assertFreshBuild();
  const [cmd, pre] = binCommand(BIN ?? join(ROOT, 'bin/dumpsieve.js'));
  const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const line = [`stty cols ${opts.columns ?? 100} rows 40 2>/dev/null;`, 'exec', ...[cmd, ...pre, ...argv].map(quote)].join(' ');
  return new Promise((resolve, reject) => {
    const p = spawn('script', ['-qfec', line, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    const o: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => o.push(b));
    p.stderr.on('data', (b: Buffer) => o.push(b));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), screen: Buffer.concat(o).toString() }));
  });
}
