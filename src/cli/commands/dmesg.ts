/** `dumpsieve dmesg`: the kernel log of a dump, like makedumpfile --dump-dmesg. */
import type { Argv } from 'yargs';
import { toJson } from '../../report/json.js';
import { write, type CliIO } from '../io.js';
import { intOption, outputOptions } from '../options.js';

export function dmesgCommand(io: CliIO, setExit: (code: number) => void) {
  return {
    command: 'dmesg <input> [output]',
    describe: 'Print the kernel log (printk ring buffer) of a dump, from VMCOREINFO alone',
    builder: (y: Argv) =>
      y
        .positional('input', { type: 'string', demandOption: true, describe: 'vmcore or dump' })
        .positional('output', { type: 'string', describe: 'Write the log to this file instead of standard output' })
        .options({
          caller: { type: 'boolean', default: false, describe: 'Show the caller id ([T<pid>] or [C<cpu>]) after the time' },
          dict: { type: 'boolean', default: false, describe: 'Show dictionary / device properties ( SUBSYSTEM=, DEVICE=) under each record' },
          tail: intOption('tail', { min: 0, describe: 'Only the last N records' }),
          console: { type: 'boolean', default: false, describe: "Prefix every line of a multi-line record, as the kernel's console prints it" },
          ...outputOptions,
        }),
    handler: async (args: Record<string, unknown>) => {
      const tail = args.tail as number | undefined;
      const { readKernelLog } = await import('../../pipeline/dmesg.js');
      const { renderDmesg, dmesgJson, describeLog } = await import('../../report/dmesg-text.js');
      const log = await readKernelLog(args.input as string);
      const text = args.json ? toJson(dmesgJson(log, { tail })) : renderDmesg(log, { caller: args.caller as boolean, dict: args.dict as boolean, tail, style: args.console ? 'console' : 'makedumpfile' });
      const out = args.output as string | undefined;
      if (out) {
        const { AtomicFileSink } = await import('../../io/sink.js');
        const sink = await AtomicFileSink.create(out);
        try {
          const b = Buffer.from(text, 'latin1');
          await sink.write(b, 0);
          await sink.setLength(b.length);
          await sink.commit();
        } catch (err) {
          await sink.abort();
          throw err;
        }
      } else {
        await write(io.stdout, text);
      }
      for (const w of log.warnings) await write(io.stderr, `dumpsieve: warning: ${log.file}: ${w}\n`);
      // Which buffer was found, on standard error (the log itself may be piped).
      if (!args.quiet) await write(io.stderr, `${log.file}: ${describeLog(log)}${out ? `; saved to ${out}` : ''}\n`);
      setExit(0);
    },
  };
}
