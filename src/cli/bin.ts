/**
 * The program entry: bin/dumpsieve.js runs it from the build, and it is the
 * entry of the single-file bundle (scripts/bundle.mjs). It is also the
 * module compression workers start (setWorkerEntry): started with a
 * worker's workerData it serves compression jobs instead of running the
 * CLI, so the bundle needs no second file.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { isCompressionWorker } from '../formats/kdump/codecs/worker.js';

const argv = process.argv.slice(2);
if (isMainThread && argv.length === 1 && argv[0] === '--version') {
  // Answered before the CLI and yargs load (most of the start-up time):
  // the same line yargs's .version() prints.
  const { VERSION } = await import('./version.js');
  process.stdout.write(`${VERSION}\n`);
} else if (!isMainThread && isCompressionWorker(workerData)) {
  const { serveCompression } = await import('../formats/kdump/codecs/worker.js');
  await serveCompression(workerData);
} else {
  // Loaded here, not at the top: a worker never evaluates the CLI.
  const { setWorkerEntry } = await import('../formats/kdump/codecs/pool.js');
  const { abortAllSinks } = await import('../io/sink.js');
  const { main } = await import('./main.js');
  setWorkerEntry(import.meta.url);
  // On a signal, remove whatever is unfinished (temporary outputs, spilled
  // or inflated inputs) and exit as a shell reports a signal: 128 + its number.
  for (const [signal, number] of [['SIGINT', 2], ['SIGHUP', 1], ['SIGTERM', 15]] as const) {
    process.on(signal, () => {
      void abortAllSinks().finally(() => process.exit(128 + number));
    });
  }
  process.exitCode = await main(argv);
}
