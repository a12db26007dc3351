#!/usr/bin/env node
// Peak RSS and time of the self-contained bundle as a kdump collector
// (docs/kdump.md), beside makedumpfile when it is installed.
//
//   npm run bundle && node bench/kdump.mjs [--bundle bundle] [--sizes 1G,4G]
//       [--scenario xen-hvm-balloon] [--level 31] [--keep DIR]
//
// Each configuration is its own process under /usr/bin/time -v, through
// the bundle's launcher (its V8 flags), and once without them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arg, root, synth, timed } from './lib.mjs';

const bundle = resolve(arg('--bundle', join(root, 'bundle')));
const sizes = arg('--sizes', '1G,4G').split(',');
const scenario = arg('--scenario', 'xen-hvm-balloon');
const kernel = arg('--kernel', '5.10');
const level = arg('--level', '31');
const dir = arg('--keep') ?? mkdtempSync(join(tmpdir(), 'dumpsieve-bench-kdump-'));
const launcher = join(bundle, 'dumpsieve');
statSync(join(bundle, 'dumpsieve.mjs'));

const CONFIGS = [
  ['-l --num-threads 0', ['-l', '--num-threads', '0']],
  ['-p --num-threads 0', ['-p', '--num-threads', '0']],
  ['-c --num-threads 0', ['-c', '--num-threads', '0']],
  ['-c (2 threads)', ['-c', '--num-threads', '2']],
  ['-z --num-threads 0', ['-z', '--num-threads', '0']],
  ['-z (2 threads)', ['-z', '--num-threads', '2']],
  ['-E', ['-E']],
  ['none --num-threads 0', ['--num-threads', '0']],
];

try {
  const rows = [];
  const haveMdf = spawnSync('makedumpfile', ['-v']).status === 0;
  for (const size of sizes) {
    const image = join(dir, `guest-${size}.vmcore`);
    const { info } = synth(scenario, image, size, kernel);
    const st = statSync(image);
    console.log(`${scenario} ${size}: ${(st.size / 2 ** 30).toFixed(2)} GiB file, ${((st.blocks * 512) / 2 ** 30).toFixed(2)} GiB on disk, max pfn ${info.maxPfn}`);
    const out = join(dir, 'out');
    const run = (label, cmd, args, env) => {
      rmSync(out, { force: true });
      const r = timed(cmd, args, [0], env);
      rows.push({ size, label, ...r });
    };
    for (const [label, flags] of CONFIGS) run(label, launcher, ['filter', '-q', '-d', level, ...flags, image, out]);
    run('-l --num-threads 0, no V8 flags', launcher, ['filter', '-q', '-d', level, '-l', '--num-threads', '0', image, out], { DUMPSIEVE_NODE_OPTIONS: ' ' });
    if (haveMdf) {
      run('makedumpfile -l', 'makedumpfile', ['-l', '-d', level, image, out]);
      run('makedumpfile -c', 'makedumpfile', ['-c', '-d', level, image, out]);
    }
    rmSync(out, { force: true });
    if (!process.argv.includes('--keep')) rmSync(image, { force: true });
  }
  console.log('');
  console.log('guest  run                                  seconds  peak RSS');
  for (const r of rows) console.log(`${r.size.padEnd(6)} ${r.label.padEnd(36)} ${r.seconds.toFixed(2).padStart(7)}  ${r.rssMiB.toFixed(1).padStart(6)} MiB`);
} finally {
  if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}
