/**
 * Global setup of the real-guest suite: build the guests the cache lacks
 * (`node test/real-guest/build.mjs`, which prints what it booted and how
 * long each guest took). A failed build fails the suite.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export default function setup(): void {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'build.mjs');
  const r = spawnSync(process.execPath, [script], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`building the real guests failed (${script} exited with ${r.status ?? r.signal})`);
}
