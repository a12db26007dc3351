// Runs the built CLI (dist/) in this process and records its exit code and
// peak RSS in the file named by DUMPSIEVE_MEASURE_OUT (tests of bounded
// memory and of standard input run the CLI as a child through this).
import { writeFileSync } from 'node:fs';
import { main } from '../../dist/cli/main.js';
import { abortAllSinks } from '../../dist/io/sink.js';

process.on('SIGINT', () => {
  abortAllSinks().finally(() => process.exit(130));
});
const t0 = performance.now();
const code = await main(process.argv.slice(2));
const out = process.env.DUMPSIEVE_MEASURE_OUT;
if (out) writeFileSync(out, JSON.stringify({ code, maxRssKiB: process.resourceUsage().maxRSS, ms: performance.now() - t0 }));
process.exitCode = code;
