/**
 * Run the CLI as a test sees it: in process through main() by default, or,
 * with DUMPSIEVE_BIN set, as its own process from that entry (a built
 * bin/dumpsieve.js, the bundle's dumpsieve.mjs or its launcher script), so
 * that the same tests hold the self-contained bundle to the same output
 * (scripts/test-bundle.sh).
 */
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Standard output as bytes (a flattened dump with -F). */
  stdoutBytes: Buffer;
}

/** The entry under test, or undefined for the in-process CLI. */
export const BIN = process.env.DUMPSIEVE_BIN || undefined;

/** The command line that runs the entry `bin`: scripts under this node, anything else executed. */
export function binCommand(bin: string): [string, string[]] {
  return /\.m?js$/.test(bin) ? [process.execPath, [bin]] : [bin, []];
}

export async function cli(...argv: string[]): Promise<Run> {
  if (BIN) return spawnCli(BIN, argv);
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  // yargs prints --help and --version with console.log: catch that too, as a process's stdout would.
  const log = console.log;
  console.log = (...a: unknown[]) => void o.push(Buffer.from(`${a.map(String).join(' ')}\n`));
  let code: number;
  try {
    code = await main(argv, { stdout: out, stderr: err, stderrIsTTY: false });
  } finally {
    console.log = log;
  }
  const bytes = Buffer.concat(o);
  return { code, stdout: bytes.toString(), stderr: Buffer.concat(e).toString(), stdoutBytes: bytes };
}

function spawnCli(bin: string, argv: string[]): Promise<Run> {
  const [cmd, pre] = binCommand(bin);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, [...pre, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    const o: Buffer[] = [];
    const e: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => o.push(b));
    p.stderr.on('data', (b: Buffer) => e.push(b));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const bytes = Buffer.concat(o);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: bytes.toString(), stderr: Buffer.concat(e).toString(), stdoutBytes: bytes });
    });
  });
}
