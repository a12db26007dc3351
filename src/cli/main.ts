/**
 * The command line: yargs parses, the library works. A fresh parser per
 * call (tests run many in one process). Errors become one line on stderr
 * and an exit code; stack traces only with --debug.
 */
import yargs from 'yargs';
import { DumpError, EXIT, exitCodeFor, UsageError } from '../core/errors.js';
import { abortAllSinks } from '../io/sink.js';
import { processIO, write, type CliIO } from './io.js';
import { filterCommand } from './commands/filter.js';
import { infoCommand } from './commands/info.js';
import { analyzeCommand } from './commands/analyze.js';
import { validateCommand } from './commands/validate.js';
import { synthCommand } from './commands/synth.js';
import { dmesgCommand } from './commands/dmesg.js';
import { reassembleCommand } from './commands/reassemble.js';
import { protectStdinArgs } from './commands/input-options.js';
import { refuseUnsupported } from './unsupported.js';
import { VERSION } from './version.js';

export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  let exit: number = EXIT.OK;
  const setExit = (code: number): void => {
    exit = code;
  };
  const debug = argv.includes('--debug');
  const parser = () =>
    yargs(protectStdinArgs(argv))
      .scriptName('dumpsieve')
      // Values stay text: intOption checks numbers (yargs would add repeated ones up).
      .parserConfiguration({ 'parse-numbers': false, 'parse-positional-numbers': false })
      .usage('$0 <command> [options]\n\nFilter and analyze crash dumps of virtual machines; logically offline (ballooned) pages are never read.')
      .command(filterCommand(io, setExit))
      .command(analyzeCommand(io, setExit))
      .command(validateCommand(io, setExit))
      .command(infoCommand(io, setExit))
      .command(dmesgCommand(io, setExit))
      .command(reassembleCommand(io, setExit))
      .command(synthCommand(io, setExit))
      .demandCommand(1, 'name a command (see --help)')
      .epilog(
        "makedumpfile's options that dumpsieve does not have (-x, -i, -g, --split, --reassemble, -R, --eppic, --config, -e, --mem-usage, --dump-dmesg, -X) are listed, with what to use instead, in 'dumpsieve filter --help'.",
      )
      .strict()
      .exitProcess(false)
      .showHelpOnFail(false)
      .version(VERSION)
      .help()
      .wrap(Math.min(110, process.stdout.columns ?? 100))
      .fail((msg, err) => {
        // yargs's own errors (YError: validation, a coerce that threw) are usage errors; anything else is a bug.
        if (err && err.name !== 'YError') throw err;
        throw new UsageError(msg ?? err?.message ?? 'bad arguments');
      });
  try {
    refuseUnsupported(argv);
    await parser().parseAsync();
    return exit;
  } catch (err) {
    await abortAllSinks();
    const code = exitCodeFor(err);
    if (err instanceof DumpError) {
      await write(io.stderr, `dumpsieve: ${err.message}\n`);
      if (debug && err.stack) await write(io.stderr, `${err.stack}\n`);
    } else {
      const e = err as Error;
      await write(io.stderr, `dumpsieve: internal error: ${e?.message ?? String(err)}${debug ? '' : ' (run with --debug for details)'}\n`);
      if (debug && e?.stack) await write(io.stderr, `${e.stack}\n`);
    }
    return code;
  }
}
