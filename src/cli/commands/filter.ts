/** `dumpsieve filter`: makedumpfile's job, with makedumpfile's flags. */
import type { Argv } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { toJson } from '../../report/json.js';
import { exists, write, type CliIO } from '../io.js';
import { codecFromArgs, codecOptions, costParamsOption, intOption, outputOptions, parseCostParams, parseProtect } from '../options.js';
import { progressBar } from '../progress.js';
import { unsupportedOptions } from '../unsupported.js';
import { buildOracle, oracleOptions } from './oracle-options.js';
import { inputFrom, inputOptions, pathsOf } from './input-options.js';

/** filter's own options (makedumpfile's spelling). */
const OPTIONS = {
  d: intOption('d', {
    alias: 'dump-level',
    min: 0,
    max: 31,
    default: 0,
    describe: 'Exclude: 1 zero, 2 cache, 4 private cache, 8 user data, 16 free pages (sum them; offline and hwpoison pages are always excluded)',
  }),
  ...codecOptions,
  E: { type: 'boolean', describe: 'Write ELF (exact exclusion: every excluded page is a gap)' },
  F: { type: 'boolean', describe: 'Write the flattened format to standard output (for | ssh ...); refused when standard output is a terminal' },
  f: { alias: 'force', type: 'boolean', default: false, describe: 'Overwrite an existing output file' },
  flags: { type: 'string', describe: 'Classify with a /proc/kpageflags-style table instead of mem_map' },
  protect: { type: 'string', array: true, nargs: 1, describe: 'Physical ranges never to exclude: START-END (end excluded) or START+SIZE, comma-separated' },
  reasons: { type: 'string', describe: 'Write the per-page exclusion-reason map to this file' },
  'message-level': intOption('message-level', {
    min: 0,
    max: 31,
    describe: "makedumpfile's message level: the report is printed when it has bit 16 (default: always; 0 is -q)",
  }),
  cost: { type: 'boolean', default: false, describe: 'Add the reading-cost model to the report (computed from page counts, not measured)' },
  ...costParamsOption,
  'num-threads': intOption('num-threads', { min: 0, max: 256, describe: 'Compression worker threads (default: by codec and CPUs; 0 compresses on the main thread)' }),
  'memory-limit': intOption('memory-limit', {
    min: 1,
    max: 1 << 20,
    describe: 'Resident memory to stay within, in MiB: without --num-threads, only the compression workers that fit (about 64 MiB for the run, 17 MiB a worker)',
  }),
  'cyclic-buffer': intOption('cyclic-buffer', {
    min: 4,
    max: 65536,
    describe: "KiB of each bitmap buffer, as makedumpfile's option (default 128); the rest of dumpsieve's buffers are fixed",
  }),
  ...oracleOptions,
  ...inputOptions,
  ...outputOptions,
} as const;

export function filterCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'filter <files..>',
    describe: 'Write a filtered dump (kdump-compressed by default), skipping excluded pages without reading them',
    builder: (y: Argv) =>
      y
        .positional('files', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'IN... OUT: the dump (ELF, kdump-compressed or flattened, may be .gz; several files: the parts of a split set; -: standard input), then the dump to write (omit it with -F: standard output)',
        })
        .options(OPTIONS)
        // These first, then makedumpfile's options that dumpsieve does not have.
        .group([...Object.keys(OPTIONS), 'help', 'version'], 'Options:')
        .options(unsupportedOptions()),
    handler: async (args: Record<string, unknown>) => {
      const codec = codecFromArgs(args, !!args.E);
      const flattened = !!args.F;
      const files = pathsOf(args.files);
      // IN... OUT, or IN... with -F (the stream goes to standard output).
      let output: string | undefined;
      if (!flattened && files.length >= 2) output = files.pop();
      if (flattened && files.length >= 2 && !(await exists(files[files.length - 1]!))) {
        throw new UsageError('-F writes the flattened format to standard output; redirect it instead of naming an output file');
      }
      if (flattened && io.stdoutIsTTY) throw new UsageError('-F writes a dump to standard output, which is a terminal: redirect it (> FILE) or pipe it (| ssh HOST ...)');
      const json = args.json as boolean;
      const ml = args.messageLevel as number | undefined;
      const quiet = (args.quiet as boolean) || (ml !== undefined && (ml & 16) === 0);
      if (flattened && json) throw new UsageError('--json needs standard output, which -F uses for the dump');
      const costParams = args.costParams as string | undefined;
      const showCost = (args.cost as boolean) || costParams !== undefined;
      const costs = parseCostParams(costParams);
      // Loaded on use: each command pulls in only its own pipeline.
      const { filterDump } = await import('../../pipeline/filter.js');
      const { renderFilterReport } = await import('../../report/filter-text.js');
      const bar = progressBar(io, quiet, ['plan', 'write']);
      try {
        const report = await filterDump({
          input: inputFrom(files, args, io),
          output,
          force: args.f as boolean,
          format: args.E ? 'elf' : 'kdump',
          flattened,
          codec,
          dumpLevel: args.d as number,
          flagsTable: args.flags as string | undefined,
          oracle: await buildOracle(args.ramOracle as string[] | undefined, args.ramOracleApi),
          protect: parseProtect(args.protect as string[] | undefined),
          reasonsFile: args.reasons as string | undefined,
          threads: args.numThreads as number | undefined,
          memoryLimitMiB: args.memoryLimit as number | undefined,
          bitmapBuffer: args.cyclicBuffer === undefined ? undefined : (args.cyclicBuffer as number) * 1024,
          costs,
          stdout: io.stdout,
          onProgress: (e) => bar.update(e),
        });
        bar.stop();
        if (json) await write(io.stdout, toJson(report));
        else if (!quiet) await write(io.stderr, renderFilterReport(report, { cost: showCost }));
        setExit(0);
      } finally {
        bar.stop();
      }
    },
  };
}
