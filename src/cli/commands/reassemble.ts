/** `dumpsieve reassemble OUT PART...`: one kdump-compressed file from a split set (makedumpfile --reassemble). */
import type { Argv } from 'yargs';
import { UsageError } from '../../core/errors.js';
import { formatBytes, formatCount } from '../../core/units.js';
import { toJson } from '../../report/json.js';
import { exists, write, type CliIO } from '../io.js';
import { outputOptions } from '../options.js';
import { progressBar } from '../progress.js';
import { pathsOf } from './input-options.js';

export function reassembleCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'reassemble <output> <parts..>',
    describe: 'Join the parts of a split dump (makedumpfile --split) into one kdump-compressed file, pages unchanged',
    builder: (y: Argv) =>
      y
        .positional('output', { type: 'string', demandOption: true, describe: 'kdump-compressed file to write' })
        .positional('parts', { type: 'string', array: true, demandOption: true, describe: 'Every part of the split set, in any order' })
        .options({
          f: { alias: 'force', type: 'boolean', default: false, describe: 'Overwrite an existing output file' },
          ...outputOptions,
        }),
    handler: async (args: Record<string, unknown>) => {
      const output = String(args.output);
      const parts = pathsOf(args.parts);
      if (parts.includes('-')) throw new UsageError('the parts of a split set are files: standard input (-) cannot be one');
      if (!args.f && (await exists(output))) throw new UsageError(`${output} exists (use -f to overwrite)`);
      const { reassembleDump } = await import('../../pipeline/reassemble.js');
      const bar = progressBar(io, args.quiet as boolean, ['copy']);
      try {
        const report = await reassembleDump({ parts, output, onProgress: (e) => bar.update(e) });
        bar.stop();
        if (args.json) await write(io.stdout, toJson(report));
        else if (!args.quiet) {
          await write(
            io.stderr,
            `${output}: ${formatCount(report.pages)} pages (${formatCount(report.zeroPages)} zero) from ${report.parts.length} parts, ${formatBytes(report.output.bytes)}\n`,
          );
        }
        setExit(0);
      } finally {
        bar.stop();
      }
    },
  };
}
