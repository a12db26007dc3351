#!/usr/bin/env node
// Memory and time of `dumpsieve validate` on a big synthetic guest
// (default 16 GiB, every check enabled: oracle, kpageflags, kexec segments).
//
//   npm run build && node bench/validate.mjs [--size 16G]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, cli, synth, timed } from './lib.mjs';

const size = arg('--size', '16G');
const kernel = arg('--kernel', '6.1');
const dir = mkdtempSync(join(tmpdir(), 'dumpsieve-bench-validate-'));
try {
  const image = join(dir, 'guest.vmcore');
  const s = synth('xen-hvm-balloon', image, size, kernel, ['--fault', 'unflagged-balloon']);
  console.log(`synth ${size}: ${(s.info.imageBytes / 2 ** 30).toFixed(2)} GiB file in ${s.run.seconds.toFixed(1)} s, peak RSS ${s.run.rssMiB.toFixed(0)} MiB`);
  const v = timed(
    process.execPath,
    [cli, 'validate', '--json', image, '--ram-oracle', `xen-hvm:${image}.memtypes`, '--flags', `${image}.kpageflags`, '--kexec-segments', `${image}.kexec`],
    [0, 3],
  );
  const rep = JSON.parse(v.stdout);
  console.log(`validate: ${v.seconds.toFixed(1)} s (${(s.info.imageBytes / 2 ** 20 / v.seconds).toFixed(0)} MiB/s of image), peak RSS ${v.rssMiB.toFixed(0)} MiB, exit ${v.status}`);
  for (const f of rep.findings) console.log(`  ${f.severity} ${f.id}: ${f.count} pages`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
