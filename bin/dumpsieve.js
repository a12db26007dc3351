#!/usr/bin/env node
// dumpsieve command-line entry: a thin launcher for the built library.
import { main } from '../dist/cli/main.js';
import { abortAllSinks } from '../dist/io/sink.js';

// On a signal, remove whatever is unfinished (temporary outputs, inflated
// inputs) and exit as a shell reports a signal: 128 + its number.
for (const [signal, number] of [['SIGINT', 2], ['SIGHUP', 1], ['SIGTERM', 15]]) {
  process.on(signal, () => {
    abortAllSinks().finally(() => process.exit(128 + number));
  });
}
process.exitCode = await main(process.argv.slice(2));
