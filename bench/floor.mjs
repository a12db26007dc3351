#!/usr/bin/env node
// node's floor for one filter run: the pread64/pwrite64 calls of a
// dumpsieve run (recorded once with strace), replayed by a node process
// that does nothing else but what any filter must do with the bytes
// (compare each page read against a zero page, copy it towards the write
// buffer), timed in alternation with makedumpfile and dumpsieve.
//
//   node bench/floor.mjs --image IMG [--cli bundle/dumpsieve] [--pairs 5] [--level 31] [--ds-args '-E']
//
// What the gap between dumpsieve and this floor is: everything but the
// system calls (start-up, module loading, struct page decoding, decisions,
// bookkeeping). What the gap between the floor and makedumpfile is: the
// cost of reading through pread (node has no mmap) and of node's start.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arg, timed } from './lib.mjs';

const image = arg('--image');
if (!image) {
  console.error('usage: node bench/floor.mjs --image IMG [--cli bundle/dumpsieve] [--pairs 5] [--level 31] [--ds-args ARGS]');
  process.exit(2);
}
const cli = resolve(arg('--cli', 'bundle/dumpsieve'));
const pairs = Number(arg('--pairs', '5'));
const level = arg('--level', '31');
const dsArgs = (arg('--ds-args', '') ?? '').split(' ').filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'dumpsieve-floor-'));
const out = join(dir, 'out');
const [cmd, pre] = /\.m?js$/.test(cli) ? [process.execPath, [cli]] : [cli, []];
const dsArgv = [...pre, 'filter', '-q', '-f', '-d', level, ...dsArgs, image, out];

try {
  // 1. The system calls of one run.
  const log = join(dir, 'strace.log');
  const st = spawnSync('strace', ['-f', '-qq', '-e', 'trace=pread64,pwrite64', '-e', 'signal=none', '-o', log, cmd, ...dsArgv], { stdio: 'inherit' });
  if (st.status !== 0) throw new Error(`strace of dumpsieve failed (${st.status}); is strace installed?`);
  const ops = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    const m = /(pread64|pwrite64)\(\d+, .*, (\d+), (\d+)\) = (\d+)/.exec(line);
    if (m) ops.push(m[1] === 'pread64' ? 0 : 1, Number(m[2]), Number(m[3]));
  }
  const opsFile = join(dir, 'ops.bin');
  writeFileSync(opsFile, new Float64Array(ops));
  const reads = ops.filter((_, i) => i % 3 === 0 && ops[i] === 0).length;
  const writes = ops.length / 3 - reads;

  // 2. The replay: the same calls, in order, with a zero-page compare of each page read and a copy of it.
  const replay = join(dir, 'replay.mjs');
  writeFileSync(
    replay,
    `import fs from 'node:fs';
const [opsFile, img, out] = process.argv.slice(2);
const ops = new Float64Array(fs.readFileSync(opsFile).buffer.slice(0));
const fi = fs.openSync(img, 'r');
const fo = fs.openSync(out, 'w');
let max = 4096;
for (let i = 0; i < ops.length; i += 3) max = Math.max(max, ops[i + 1]);
const rb = Buffer.alloc(max);
const wb = Buffer.alloc(max);
const zero = Buffer.alloc(4096);
let fill = 0;
for (let i = 0; i < ops.length; i += 3) {
  const len = ops[i + 1];
  const off = ops[i + 2];
  if (ops[i]) {
    fs.writeSync(fo, wb, 0, len, off);
    fill = 0;
  } else {
    const n = fs.readSync(fi, rb, 0, len, off);
    for (let k = 0; k + 4096 <= n; k += 4096) if (rb.compare(zero, 0, 4096, k, k + 4096) === 0) zero[0] = 0;
    const m = Math.min(n, wb.length - fill);
    rb.copy(wb, fill, 0, m);
    fill += m;
  }
}
fs.closeSync(fo);
`,
  );

  // 3. Alternation: floor, makedumpfile, dumpsieve; outputs deleted and flushed between runs.
  const runs = { floor: [], makedumpfile: [], dumpsieve: [] };
  const flush = () => {
    rmSync(out, { force: true });
    spawnSync('sync');
  };
  for (let i = 0; i < pairs; i++) {
    runs.floor.push(timed('env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, replay, opsFile, image, out]));
    flush();
    runs.makedumpfile.push(timed('makedumpfile', ['-f', '-d', level, ...dsArgs.filter((a) => a === '-E' || a === '-l' || a === '-c'), image, out]));
    flush();
    runs.dumpsieve.push(timed(cmd, dsArgv));
    flush();
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`\n${image}, -d ${level} ${dsArgs.join(' ')}: ${reads} preads and ${writes} pwrites replayed, ${pairs} runs each, medians\n`);
  console.log('| run | wall s | user s | system s | peak RSS MiB |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [name, rs] of Object.entries(runs)) {
    console.log(`| ${name} | ${median(rs.map((r) => r.seconds)).toFixed(2)} | ${median(rs.map((r) => r.user)).toFixed(2)} | ${median(rs.map((r) => r.system)).toFixed(2)} | ${median(rs.map((r) => r.rssMiB)).toFixed(0)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
