/** `dumpsieve filter`: makedumpfile's job, with makedumpfile's flags. */
import { access } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { toJson } from '../../report/json.js';
import { parseCosts } from '../../pipeline/cost.js';
import { write, type CliIO } from '../io.js';
import { codecFromArgs, codecOptions, parseProtect, outputOptions } from '../options.js';
import { progressBar } from '../progress.js';
import { buildOracle, oracleOptions } from './oracle-options.js';
import { inputFrom, inputOptions, pathsOf } from './input-options.js';

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
        .options({
          d: { alias: 'dump-level', type: 'number', default: 0, describe: 'Exclude: 1 zero, 2 cache, 4 private cache, 8 user data, 16 free pages (sum them; offline and hwpoison pages are always excluded)' },
          ...codecOptions,
          E: { type: 'boolean', describe: 'Write ELF (exact exclusion: every excluded page is a gap)' },
          F: { type: 'boolean', describe: 'Write the flattened format to standard output (for | ssh ...)' },
          f: { alias: 'force', type: 'boolean', default: false, describe: 'Overwrite an existing output file' },
          flags: { type: 'string', describe: 'Classify with a /proc/kpageflags-style table instead of mem_map' },
          protect: { type: 'string', array: true, nargs: 1, describe: 'Physical ranges never to exclude: START-END or START+SIZE, comma-separated' },
          reasons: { type: 'string', describe: 'Write the per-page exclusion-reason map to this file' },
          'message-level': { type: 'number', describe: "makedumpfile's message level: the report is printed when it has bit 16 (default: always)" },
          cost: { type: 'string', describe: 'Cost parameters of the reading-cost table, e.g. call=2us,read=1GiB/s,fabricate=10ms' },
          'num-threads': { type: 'number', describe: 'Compression worker threads (default: by codec and CPUs; 0 compresses on the main thread)' },
          ...oracleOptions,
          ...inputOptions,
          ...outputOptions,
        }),
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
      const json = args.json as boolean;
      const ml = args.messageLevel as number | undefined;
      const quiet = (args.quiet as boolean) || (ml !== undefined && (ml & 16) === 0);
      if (flattened && json) throw new UsageError('--json needs standard output, which -F uses for the dump');
      // Loaded on use: each command pulls in only its own pipeline.
      const { filterDump } = await import('../../pipeline/filter.js');
      const { renderFilterReport } = await import('../../report/filter-text.js');
      const bar = progressBar(io, quiet);
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
          costs: parseCosts(args.cost as string | undefined),
          stdout: io.stdout,
          onProgress: (e) => bar.update(e),
        });
        bar.stop();
        if (json) await write(io.stdout, toJson(report));
        else if (!quiet) await write(io.stderr, renderFilterReport(report));
        setExit(0);
      } finally {
        bar.stop();
      }
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
