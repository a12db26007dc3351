/**
 * The program entry: bin/dumpsieve.js runs it from the build, and it is the
 * entry of the bundle (scripts/bundle.mjs). It imports nothing at its top
 * level, so `--version` evaluates this file and version.js alone; the CLI
 * loads on demand. Compression workers start from their own entry
 * (codecs/worker-main.ts), not from this one.
 */
const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  // Answered before the CLI and yargs load (most of the start-up time):
  // the same line yargs's .version() prints.
  const { VERSION } = await import('./version.js');
  process.stdout.write(`${VERSION}\n`);
} else {
  const { abortAllSinks } = await import('../io/sink.js');
  const { main } = await import('./main.js');
  // On a signal, remove whatever is unfinished (temporary outputs, spilled
  // or inflated inputs) and exit as a shell reports a signal: 128 + its number.
  // Set when a handler below owns the exit (after its clean-up).
  let exiting = false;
  for (const [signal, number] of [['SIGINT', 2], ['SIGHUP', 1], ['SIGTERM', 15]] as const) {
    process.on(signal, () => {
      exiting = true;
      void abortAllSinks().finally(() => process.exit(128 + number));
    });
  }
  // A bug that escapes main() (an exception in a callback, a rejection no
  // one awaited) still ends in one line and leaves no temporary output.
  process.on('uncaughtException', (err: Error) => {
    const debug = argv.includes('--debug');
    exiting = true;
    process.stderr.write(`dumpsieve: internal error: ${err?.message ?? String(err)}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug && err?.stack) process.stderr.write(`${err.stack}\n`);
    void abortAllSinks().finally(() => process.exit(1));
  });
  const code = await main(argv);
  // Exit at once: everything is written (standard output and error are
  // synchronous for files, pipes and terminals on Linux), and letting the
  // event loop drain first costs the isolate's teardown (7 ms of a 32 MiB
  // guest's 116 ms filter). A signal's handler exits by itself, with its
  // own status, once its clean-up is done.
  if (exiting) process.exitCode = code;
  else process.exit(code);
}
