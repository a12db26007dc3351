/** `dumpsieve analyze`: page classes, predicted savings per level and codec, the cost of reading. */
import type { Argv } from 'yargs';
import { checkOutputs } from '../../io/paths.js';
import { writeFileAtomic } from '../../io/sink.js';
import { toJson } from '../../report/json.js';
import { write, type CliIO } from '../io.js';
import { costParamsOption, intOption, outputOptions, parseCostParams, parseProtect } from '../options.js';
import { progressBar } from '../progress.js';
import { buildOracle, oracleOptions } from './oracle-options.js';
import { INPUT_HELP, inputFrom, inputOptions, pathsOf } from './input-options.js';

export function analyzeCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'analyze <input..>',
    describe: 'Report page classes, the output size of every dump level and codec, and a model of what reading the dump costs',
    builder: (y: Argv) =>
      y.positional('input', { type: 'string', array: true, demandOption: true, describe: INPUT_HELP }).options({
        flags: { type: 'string', describe: 'Classify with a /proc/kpageflags-style table instead of mem_map' },
        d: intOption('d', { alias: 'dump-level', min: 0, max: 31, default: 31, describe: 'Dump level of the filter strategies in the reading-cost model' }),
        sample: intOption('sample', { min: 0, default: 16384, describe: 'Pages sampled for zero-page and compression estimates (0: all)' }),
        seed: intOption('seed', { min: 0, max: 0xffff_ffff, default: 1, describe: 'Seed of the sample choice' }),
        ...costParamsOption,
        svg: { type: 'string', describe: 'Write a memory map (SVG) to this file' },
        f: { alias: 'force', type: 'boolean', default: false, describe: 'Overwrite an existing --svg file' },
        protect: { type: 'string', array: true, nargs: 1, describe: 'Physical ranges never to exclude' },
        ...oracleOptions,
        ...inputOptions,
        ...outputOptions,
      }),
    handler: async (args: Record<string, unknown>) => {
      const { analyzeDump } = await import('../../pipeline/analyze.js');
      const { renderAnalyzeReport } = await import('../../report/analyze-text.js');
      const { renderMemoryMapSvg } = await import('../../report/svg.js');
      const svg = args.svg as string | undefined;
      await checkOutputs({ outputs: [svg], inputs: [args.input as string, args.flags as string | undefined], force: args.f as boolean });
      const costs = parseCostParams(args.costParams as string | undefined);
      const bar = progressBar(io, args.quiet as boolean, ['classify', 'sample']);
      try {
        const report = await analyzeDump({
          input: inputFrom(pathsOf(args.input), args, io),
          flagsTable: args.flags as string | undefined,
          oracle: await buildOracle(args.ramOracle as string[] | undefined, args.ramOracleApi),
          protect: parseProtect(args.protect as string[] | undefined),
          sample: args.sample as number,
          seed: args.seed as number,
          costLevel: args.d as number,
          costs,
          onProgress: (e) => bar.update(e),
        });
        bar.stop();
        if (svg) await writeFileAtomic(svg, renderMemoryMapSvg(report));
        if (args.json) await write(io.stdout, toJson(report));
        else if (!args.quiet) await write(io.stdout, renderAnalyzeReport(report));
        setExit(0);
      } finally {
        bar.stop();
      }
    },
  };
}
