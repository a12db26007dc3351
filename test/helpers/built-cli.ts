/**
 * The built CLI (dist/) run as a child process, for what must be seen from
 * outside: peak RSS, standard input from a pipe, FIFOs, exit codes of the
 * real process. `npm test` builds first; a missing or stale build fails
 * the calling test with a notice (run `npm run build`), it never skips.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');
const MEASURE = join(ROOT, 'test/helpers/measure-cli.mjs');

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Throws unless dist/ is built from the current sources. */
export function assertFreshBuild(): void {
  if (!existsSync(MAIN) || newestSource(join(ROOT, 'src')) > statSync(MAIN).mtimeMs) {
    throw new Error('dist/ is missing or older than src/: run `npm run build` (npm test does)');
  }
}

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak resident set of the CLI process (MiB). */
  maxRssMiB: number;
  ms: number;
}

let seq = 0;
function measureFile(): string {
  return join(tmpdir(), `dumpsieve-measure-${process.pid}-${seq++}.json`);
}

function result(code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, file: string): ChildRun {
  let m = { maxRssKiB: 0, ms: 0 };
  if (existsSync(file)) {
    m = JSON.parse(readFileSync(file, 'utf8')) as typeof m;
    rmSync(file, { force: true });
  }
  return { code, signal, stdout, stderr, maxRssMiB: m.maxRssKiB / 1024, ms: m.ms };
}

/** Run `dumpsieve ARGS` with `input` (bytes or nothing) on standard input. */
export function runBuilt(args: string[], opts: { input?: Uint8Array | string; stdinFd?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): ChildRun {
  assertFreshBuild();
  const file = measureFile();
  const r = spawnSync(process.execPath, [MEASURE, ...args], {
    ...(opts.stdinFd !== undefined ? { stdio: [opts.stdinFd, 'pipe', 'pipe'] } : { input: opts.input }),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: opts.timeoutMs ?? 120_000,
    env: { ...process.env, ...opts.env, DUMPSIEVE_MEASURE_OUT: file },
  });
  return result(r.status, r.signal, r.stdout, r.stderr, file);
}

/**
 * Run `SHELL_PIPE | dumpsieve ARGS` through /bin/sh: the CLI reads a real
 * pipe. `shellPipe` is a shell command whose output feeds standard input.
 */
export function runBuiltPiped(shellPipe: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<ChildRun> {
  assertFreshBuild();
  const file = measureFile();
  const quoted = [process.execPath, MEASURE, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${shellPipe} | ${quoted}`], { env: { ...process.env, DUMPSIEVE_MEASURE_OUT: file } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve(result(code, signal, stdout, stderr, file));
    });
  });
}

/** The command line that runs the built CLI (for shell pipelines in tests). */
export function builtCommand(): string {
  return `'${process.execPath}' '${join(ROOT, 'bin/dumpsieve.js')}'`;
}

export { spawnSync };
