#!/usr/bin/env node
// Throughput and memory of `dumpsieve filter` on a big synthetic image,
// beside makedumpfile on the same image when it is installed.
//
//   npm run build && node bench/filter.mjs [--size 8G] [--scenario xen-hvm-balloon] [--keep DIR]
//
// Writes the image sparse into a temp folder (or DIR), runs each
// configuration as its own process under /usr/bin/time -v (peak RSS,
// wall and CPU time), prints a table and deletes everything.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, cli, synth, timed } from './lib.mjs';

const size = arg('--size', '8G');
const scenario = arg('--scenario', 'xen-hvm-balloon');
const kernel = arg('--kernel', '5.10');
const levels = arg('--levels', '31').split(',');
const dir = arg('--keep') ?? mkdtempSync(join(tmpdir(), 'dumpsieve-bench-'));

try {
  const image = join(dir, 'guest.vmcore');
  console.log(`synth ${scenario} ${size} (kernel ${kernel}) -> ${image}`);
  const { info, run: s } = synth(scenario, image, size, kernel);
  const dataBytes = info.dataPages * 4096;
  console.log(`  ${(info.imageBytes / 2 ** 30).toFixed(2)} GiB file, ${(dataBytes / 2 ** 30).toFixed(2)} GiB non-zero data, ${s.seconds.toFixed(1)} s, peak RSS ${s.rssMiB.toFixed(0)} MiB`);
  const rows = [];
  const haveMdf = spawnSync('makedumpfile', ['-v']).status === 0;
  for (const level of levels) {
    for (const [label, flags] of [['kdump', []], ['kdump -c', ['-c']], ['kdump -l', ['-l']], ['kdump -z', ['-z']], ['ELF -E', ['-E']]]) {
      const out = join(dir, `out-${level}-${label.replace(/\W/g, '')}`);
      const r = timed(process.execPath, [cli, 'filter', '-q', '--json', '-d', level, ...flags, image, out]);
      const rep = JSON.parse(r.stdout);
      rows.push({ tool: 'dumpsieve', level, label, ...r, bytes: statSync(out).size, read: rep.bytesRead, kept: rep.pages.kept });
      rmSync(out, { force: true });
      if (haveMdf && !flags.includes('-z')) {
        const mout = join(dir, `mdf-${level}-${label.replace(/\W/g, '')}`);
        const m = timed('makedumpfile', ['-d', level, ...flags, image, mout]);
        rows.push({ tool: 'makedumpfile', level, label, ...m, bytes: statSync(mout).size });
        rmSync(mout, { force: true });
      }
    }
  }
  const input = statSync(image).size;
  console.log('');
  console.log('tool           level  output     seconds  user+sys  MB/s(input)  peak RSS  output size');
  for (const r of rows) {
    console.log(
      `${r.tool.padEnd(14)} ${String(r.level).padStart(5)}  ${r.label.padEnd(9)} ${r.seconds.toFixed(2).padStart(7)}  ${r.cpu.toFixed(2).padStart(8)}  ${(input / 2 ** 20 / r.seconds).toFixed(0).padStart(11)}  ${r.rssMiB.toFixed(0).padStart(5)} MiB  ${(r.bytes / 2 ** 20).toFixed(1)} MiB`,
    );
  }
  const worst = Math.max(...rows.filter((r) => r.tool === 'dumpsieve').map((r) => r.rssMiB));
  console.log(`\ndumpsieve peak RSS over all runs: ${worst.toFixed(0)} MiB`);
} finally {
  if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}
