#!/usr/bin/env node
// How well `dumpsieve analyze` predicts the output of `dumpsieve filter`,
// and what it costs, on a synthetic guest (default 1 GiB).
//
//   npm run build && node bench/analyze.mjs [--size 1G] [--scenario xen-hvm-balloon] [--sample 4096]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, cli, synth, timed } from './lib.mjs';

const size = arg('--size', '1G');
const scenario = arg('--scenario', 'xen-hvm-balloon');
const kernel = arg('--kernel', '6.1');
const sample = arg('--sample', '16384');
const dir = mkdtempSync(join(tmpdir(), 'dumpsieve-bench-analyze-'));
try {
  const image = join(dir, 'guest.vmcore');
  synth(scenario, image, size, kernel);
  const oracle = scenario === 'xen-hvm-balloon' ? ['--ram-oracle', `xen-hvm:${image}.memtypes`] : [];
  const a = timed(process.execPath, [cli, 'analyze', '--json', '--sample', sample, ...oracle, image]);
  const rep = JSON.parse(a.stdout);
  console.log(`analyze ${scenario} ${size}: ${a.seconds.toFixed(2)} s, peak RSS ${a.rssMiB.toFixed(0)} MiB, ${rep.sample.pages} pages sampled`);
  console.log('level  codec    predicted        real      error   stated ±95%');
  let worst = 0;
  for (const level of [0, 1, 31]) {
    for (const [codec, flag] of [['none', []], ['zlib', ['-c']], ['lzo', ['-l']], ['snappy', ['-p']], ['zstd', ['-z']], ['elf', ['-E']]]) {
      const out = join(dir, `out-${level}-${codec}`);
      timed(process.execPath, [cli, 'filter', '-q', '-d', String(level), ...flag, ...oracle, image, out]);
      const real = statSync(out).size;
      rmSync(out);
      const p = codec === 'elf' ? rep.predictions[level].elf : rep.predictions[level].kdump[codec];
      const err = (p.bytes - real) / real;
      worst = Math.max(worst, Math.abs(err));
      console.log(`${String(level).padStart(5)}  ${codec.padEnd(6)} ${(p.bytes / 2 ** 20).toFixed(1).padStart(9)} MiB ${(real / 2 ** 20).toFixed(1).padStart(8)} MiB ${(100 * err).toFixed(2).padStart(7)} %  ${(100 * p.error / p.bytes).toFixed(2).padStart(6)} %`);
    }
  }
  console.log(`worst error: ${(100 * worst).toFixed(2)} %`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
