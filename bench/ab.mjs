#!/usr/bin/env node
// Two dumpsieve builds against each other on one cached bench image, in
// alternation (A B A B ...), with the outputs compared byte for byte: the
// before/after figure of a change. Build the "before" tree elsewhere
// (git archive REV | tar -x -C DIR; npm run build there).
//
//   node bench/ab.mjs --a DIR/bin/dumpsieve.js --b bin/dumpsieve.js --image FILE.vmcore
//       [--modes none,lzo,zlib,elf,snappy,zstd] [--pairs 3] [--level 31]
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arg, timed } from './lib.mjs';

const a = resolve(arg('--a'));
const b = resolve(arg('--b'));
const img = resolve(arg('--image'));
const pairs = Number(arg('--pairs', '3'));
const level = arg('--level', '31');
const modes = arg('--modes', 'none,lzo,zlib,elf,snappy,zstd').split(',').filter(Boolean);
const FLAGS = { none: [], lzo: ['-l'], zlib: ['-c'], elf: ['-E'], snappy: ['-p'], zstd: ['-z'] };
const median = (xs) => [...xs].sort((x, y) => x - y)[(xs.length - 1) >> 1];
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
const out = join(tmpdir(), `dumpsieve-ab-${process.pid}.out`);

console.log(`A ${a}\nB ${b}\nimage ${img}, -d ${level}, ${pairs} pairs, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| mode | A s | B s | B/A | A RSS MiB | B RSS MiB | A bytes read | B bytes read | same bytes | load |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
try {
  for (const mode of modes) {
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    const runs = { a: [], b: [] };
    const sums = {};
    const read = {};
    for (let i = 0; i < pairs; i++) {
      for (const [k, cli] of [['a', a], ['b', b]]) {
        const args = ['filter', '-q', '-f', '--json', '-d', level, ...FLAGS[mode], img, out];
        // .js/.mjs run under this node; anything else (the bundle's launcher) is executed.
        const r = /\.m?js$/.test(cli) ? timed(process.execPath, [cli, ...args]) : timed(cli, args);
        runs[k].push(r);
        if (i === 0) {
          sums[k] = sha(out);
          read[k] = JSON.parse(r.stdout).bytesRead;
        }
        rmSync(out, { force: true });
      }
    }
    const sa = median(runs.a.map((r) => r.seconds));
    const sb = median(runs.b.map((r) => r.seconds));
    const rss = (k) => Math.max(...runs[k].map((r) => r.rssMiB)).toFixed(0);
    console.log(`| ${mode} | ${sa.toFixed(2)} | ${sb.toFixed(2)} | ${(sb / sa).toFixed(2)} | ${rss('a')} | ${rss('b')} | ${(read.a / 1e6).toFixed(1)} MB | ${(read.b / 1e6).toFixed(1)} MB | ${sums.a === sums.b ? 'yes' : 'NO'} | ${load} |`);
  }
} finally {
  rmSync(out, { force: true });
}
