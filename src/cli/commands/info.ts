/** `dumpsieve info`: the crash summary, headers, VMCOREINFO, segments, memory model, page-type era. */
import type { Argv } from 'yargs';
import { toJson } from '../../report/json.js';
import { write, type CliIO } from '../io.js';
import { outputOptions } from '../options.js';
import { INPUT_HELP, inputFrom, inputOptions, pathsOf } from './input-options.js';

export function infoCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'info <input..>',
    describe: 'Show what a dump holds and how dumpsieve reads it',
    builder: (y: Argv) =>
      y.positional('input', { type: 'string', array: true, demandOption: true, describe: INPUT_HELP }).options({
        triage: { type: 'boolean', default: true, describe: 'Include the crash summary (reads the kernel log and every struct page); --no-triage skips it' },
        ...inputOptions,
        ...outputOptions,
      }),
    handler: async (args: Record<string, unknown>) => {
      const { inspectDump } = await import('../../pipeline/info.js');
      const { renderInfo } = await import('../../report/info-text.js');
      const report = await inspectDump(inputFrom(pathsOf(args.input), args, io), { triage: args.triage as boolean });
      if (args.json) await write(io.stdout, toJson(report));
      else if (!args.quiet) await write(io.stdout, renderInfo(report));
      setExit(0);
    },
  };
}
