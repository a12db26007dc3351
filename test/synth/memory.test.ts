/**
 * Memory stays bounded whatever the guest size: a child process writes a
 * 256 MiB and a 4 GiB guest; peak RSS stays under 100 MiB and barely
 * moves with a 16x bigger guest. Runs the built code (dist/), which
 * `npm test` builds first; a missing or stale build skips with a notice.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = join(root, 'dist/synth/index.js');

function buildIsFresh(): boolean {
  if (!existsSync(dist)) return false;
  const built = statSync(dist).mtimeMs;
  const src = join(root, 'src/synth');
  return readdirSync(src).every((f) => statSync(join(src, f)).mtimeMs <= built);
}

const fresh = buildIsFresh();
if (!fresh) process.stderr.write('\n*** SKIPPED: synth memory test needs a current build (npm run build)\n');

function peakRss(dir: string, size: number): number {
  const script = `
    import { synthesize } from ${JSON.stringify(dist)};
    await synthesize({ scenario: 'xen-hvm-balloon', kernel: '6.1', size: ${size}, out: ${JSON.stringify(join(dir, `g${size}.vmcore`))} });
    process.stdout.write(String(process.resourceUsage().maxRSS));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return Number(r.stdout) / 1024;
}

describe.skipIf(!fresh)('synthesize keeps memory bounded', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('synth-mem'));
  });
  afterAll(async () => cleanup());

  it('a 4 GiB guest peaks under 100 MiB RSS, within 24 MiB of a 256 MiB guest', () => {
    const small = peakRss(dir, 256 * 2 ** 20);
    const big = peakRss(dir, 4 * 2 ** 30);
    expect(big).toBeLessThan(100);
    expect(big - small).toBeLessThan(24);
  }, 120_000);
});
