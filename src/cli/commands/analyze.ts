/** `dumpsieve analyze`: page classes, predicted savings per level and codec, the cost of reading. */
import type { Argv } from 'yargs';
import { checkOutputs } from '../../io/paths.js';
import { writeFileAtomic } from '../../io/sink.js';
import { parseCosts } from '../../pipeline/cost.js';
import { toJson } from '../../report/json.js';
import { write, type CliIO } from '../io.js';
import { outputOptions, parseProtect } from '../options.js';
import { progressBar } from '../progress.js';
import { buildOracle, oracleOptions } from './oracle-options.js';
import { INPUT_HELP, inputFrom, inputOptions, pathsOf } from './input-options.js';

export function analyzeCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'analyze <input..>',
    describe: 'Report page classes, the output size of every dump level and codec, and the cost of reading the dump',
    builder: (y: Argv) =>
      y.positional('input', { type: 'string', array: true, demandOption: true, describe: INPUT_HELP }).options({
        flags: { type: 'string', describe: 'Classify with a /proc/kpageflags-style table instead of mem_map' },
        d: { alias: 'dump-level', type: 'number', default: 31, describe: 'Dump level of the filter strategies in the cost table' },
        sample: { type: 'number', default: 16384, describe: 'Pages sampled for zero-page and compression estimates (0: all)' },
        seed: { type: 'number', default: 1, describe: 'Seed of the sample choice' },
        cost: { type: 'string', describe: 'Cost parameters, e.g. call=2us,read=1GiB/s,fabricate=10ms' },
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
      const bar = progressBar(io, args.quiet as boolean);
      try {
        const report = await analyzeDump({
          input: inputFrom(pathsOf(args.input), args, io),
          flagsTable: args.flags as string | undefined,
          oracle: await buildOracle(args.ramOracle as string[] | undefined, args.ramOracleApi),
          protect: parseProtect(args.protect as string[] | undefined),
          sample: args.sample as number,
          seed: args.seed as number,
          costLevel: args.d as number,
          costs: parseCosts(args.cost as string | undefined),
          onProgress: (e) => bar.update(e),
        });
        bar.stop();
        if (svg) await writeFileAtomic(svg, renderMemoryMapSvg(report));
        await write(io.stdout, args.json ? toJson(report) : renderAnalyzeReport(report));
        setExit(0);
      } finally {
        bar.stop();
      }
    },
  };
}
