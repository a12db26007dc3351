/** The dump input of every command: one file, the parts of a split set, or `-` (standard input). */
import { UsageError } from '../../core/errors.js';
import { parseSize } from '../../core/units.js';
import type { InputSpec } from '../../pipeline/input.js';
import type { CliIO } from '../io.js';

export const inputOptions = {
  'work-dir': {
    type: 'string',
    describe: 'Directory for the spill file of standard input, a FIFO or a compressed input (default: the system temp directory)',
  },
  'spill-limit': {
    type: 'string',
    describe: 'Most bytes a spill file may take, e.g. 64G (default: what the work directory holds)',
  },
} as const;

export const INPUT_HELP = 'Dump: ELF, kdump-compressed or flattened (may be .gz); several files: the parts of a split set; -: standard input';

/** The InputSpec of a command's input paths and --work-dir / --spill-limit. */
export function inputFrom(paths: readonly string[], args: Record<string, unknown>, io: CliIO): InputSpec {
  if (paths.length === 0) throw new UsageError('name the dump to read (or - for standard input)');
  const workDir = args.workDir as string | undefined;
  if (workDir === '') throw new UsageError('--work-dir is empty');
  const limit = args.spillLimit as string | undefined;
  return {
    paths,
    workDir,
    spillLimit: limit === undefined ? undefined : parseSize(limit, '--spill-limit'),
    stdin: io.stdin,
  };
}

/**
 * yargs drops a lone `-` from positional arguments, so the command line
 * carries it as this token (a NUL never occurs in a path) and pathsOf turns
 * it back into `-`.
 */
export const STDIN_TOKEN = '\u0000-';

/** Replace each lone `-` before `--` by STDIN_TOKEN. */
export function protectStdinArgs(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((a, i) => (a === '-' && (end < 0 || i < end) ? STDIN_TOKEN : a));
}

/** Positional values as strings (yargs gives numbers for names like `1`), `-` restored. */
export function pathsOf(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (x === STDIN_TOKEN ? '-' : String(x)));
}
