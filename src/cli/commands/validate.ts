/** `dumpsieve validate`: audit offline-page flagging; exit 3 when an error-severity check fails. */
import type { Argv } from 'yargs';
import { EXIT } from '../../core/errors.js';
import { parseSize } from '../../core/units.js';
import { readKexecSegments } from '../../formats/kexec-segments.js';
import { toJson } from '../../report/json.js';
import { write, type CliIO } from '../io.js';
import { outputOptions, parseProtect } from '../options.js';
import { progressBar } from '../progress.js';
import { buildOracle, oracleOptions } from './oracle-options.js';
import { INPUT_HELP, inputFrom, inputOptions, pathsOf } from './input-options.js';

export function validateCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'validate <input..>',
    describe: 'Check offline-page flagging against the hypervisor view, kpageflags, kexec segments and protected ranges (exit 3 on an error-severity finding)',
    builder: (y: Argv) =>
      y.positional('input', { type: 'string', array: true, demandOption: true, describe: INPUT_HELP }).options({
        flags: { type: 'string', describe: 'A /proc/kpageflags snapshot of the same boot, compared with mem_map' },
        'kexec-segments': { type: 'string', describe: 'File of kexec segments (mem, memsz) to check against ballooned pfns' },
        protect: { type: 'string', array: true, nargs: 1, describe: 'Physical ranges that must never be excluded (the kernel image always is)' },
        'balloon-size': { type: 'string', describe: 'Expected balloon size (bytes, e.g. 4G), compared with the offline page count' },
        'read-unbacked': {
          type: 'boolean',
          default: false,
          describe: 'Also run content-not-ram: read the pages the RAM oracle calls not RAM (for copies of /proc/vmcore; every other check reads no such page)',
        },
        ...oracleOptions,
        ...inputOptions,
        ...outputOptions,
      }),
    handler: async (args: Record<string, unknown>) => {
      const { validateDump } = await import('../../pipeline/validate.js');
      const { renderValidateReport } = await import('../../report/validate-text.js');
      const bar = progressBar(io, args.quiet as boolean, ['validate']);
      try {
        const balloon = args.balloonSize as string | undefined;
        const report = await validateDump({
          input: inputFrom(pathsOf(args.input), args, io),
          oracle: await buildOracle(args.ramOracle as string[] | undefined, args.ramOracleApi),
          flagsTable: args.flags as string | undefined,
          kexecSegments: args.kexecSegments ? await readKexecSegments(args.kexecSegments as string) : undefined,
          protect: parseProtect(args.protect as string[] | undefined),
          readUnbacked: args.readUnbacked as boolean,
          balloonPages: balloon === undefined ? undefined : Math.round(parseSize(balloon, '--balloon-size') / 4096),
          onProgress: (e) => bar.update(e),
        });
        bar.stop();
        if (args.json) await write(io.stdout, toJson(report));
        else if (!args.quiet) await write(io.stdout, renderValidateReport(report));
        setExit(report.failed ? EXIT.FINDINGS : EXIT.OK);
      } finally {
        bar.stop();
      }
    },
  };
}
