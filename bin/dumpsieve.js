#!/usr/bin/env node
// dumpsieve command-line entry: a thin launcher for the built library.
import { main } from '../dist/cli/main.js';
import { abortAllSinks } from '../dist/io/sink.js';

process.on('SIGINT', () => {
  abortAllSinks().finally(() => process.exit(130));
});
process.exitCode = await main(process.argv.slice(2));
