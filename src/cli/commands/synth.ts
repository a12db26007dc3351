/** `dumpsieve synth`: synthetic guest images with a truth manifest. */
import type { Argv } from 'yargs';
import { formatBytes, formatCount, parseSize } from '../../core/units.js';
// The lists for the help only: the synth library (most of the CLI's modules) loads in the handler.
import { DEFAULT_ERA as DEFAULT_KERNEL, ERAS } from '../../synth/eras.js';
import { FAULT_DEFS as FAULTS } from '../../synth/faults.js';
import { SCENARIO_DEFS as SCENARIOS } from '../../synth/scenarios.js';
import { toJson } from '../../report/json.js';
import { write, type CliIO } from '../io.js';
import { intOption, outputOptions } from '../options.js';
import { progressBar } from '../progress.js';

export function synthCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'synth <scenario> <output>',
    describe: 'Write a synthetic guest vmcore (ELF) with OUT.truth, OUT.kpageflags and the hypervisor-side files',
    builder: (y: Argv) =>
      y
        .positional('scenario', { type: 'string', demandOption: true, describe: `One of: ${SCENARIOS.map((s) => s.name).join(', ')}` })
        .positional('output', { type: 'string', demandOption: true, describe: 'Image to write; side files get suffixes' })
        .options({
          size: { type: 'string', default: '4G', describe: 'Guest RAM (a whole number of 4 KiB pages)' },
          seed: intOption('seed', { min: 0, max: 0xffff_ffff, default: 1, describe: 'Seed of every random choice (same arguments, same bytes)' }),
          kernel: { type: 'string', default: DEFAULT_KERNEL, describe: `Kernel era: ${ERAS.map((e) => e.name).join(', ')}` },
          fault: { type: 'string', array: true, nargs: 1, describe: `Plant a problem: ${FAULTS.map((f) => f.name).join(', ')}` },
          'memory-model': { type: 'string', default: 'sparsemem', choices: ['sparsemem', 'flatmem'], describe: 'How mem_map is found' },
          'phys-base': { type: 'string', default: '0', describe: 'Physical offset of the kernel image (e.g. 0x200000)' },
          f: { alias: 'force', type: 'boolean', default: false, describe: 'Overwrite existing files' },
          ...outputOptions,
        })
        .epilog(
          ['Scenarios:', ...SCENARIOS.map((s) => `  ${s.name.padEnd(18)} ${s.description}`), '', 'Faults:', ...FAULTS.map((f) => `  ${f.name.padEnd(20)} ${f.description} (${f.hosts.join(', ')})`)].join('\n'),
        ),
    handler: async (args: Record<string, unknown>) => {
      const { synthesize } = await import('../../synth/index.js');
      const size = parseSize(args.size as string, '--size');
      const physBase = parseSize(args.physBase as string, '--phys-base');
      const bar = progressBar(io, args.quiet as boolean, ['synth']);
      try {
        const result = await synthesize({
          scenario: args.scenario as string,
          out: args.output as string,
          force: args.f as boolean,
          size,
          seed: args.seed as number,
          kernel: args.kernel as string,
          faults: (args.fault as string[] | undefined) ?? [],
          memoryModel: args.memoryModel as 'sparsemem' | 'flatmem',
          physBase,
          onProgress: (done, total) => bar.update({ phase: 'synth', done, total }),
        });
        bar.stop();
        if (args.json) await write(io.stdout, toJson(result));
        else if (!args.quiet) {
          const lines = [
            `${result.files.image}: ${result.scenario}, Linux ${result.kernel} era, ${formatBytes(result.size)} guest, seed ${result.seed}, ${result.ptLoads} PT_LOADs, ${formatBytes(result.imageBytes)} file`,
            ...Object.entries(result.files)
              .filter(([k]) => k !== 'image')
              .map(([k, v]) => `  ${k.padEnd(16)} ${v}`),
            `  pages: ${Object.entries(result.pages)
              .filter(([, n]) => (n as number) > 0)
              .map(([k, n]) => `${k} ${formatCount(n as number)}`)
              .join(', ')}`,
          ];
          await write(io.stderr, `${lines.join('\n')}\n`);
        }
        setExit(0);
      } finally {
        bar.stop();
      }
    },
  };
}
