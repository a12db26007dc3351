// Peak RSS of reading a flattened stream from a pipe: a synthetic guest
// (sparse image) is written as a flattened kdump stream by
// `dumpsieve filter -F` and read from standard input by
// `dumpsieve filter - OUT` (spilled to --work-dir, then filtered).
//
//   node bench/stream.mjs [--size 4G] [--scenario plain] [--level 31] [--consumer filter|info]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, cli, synth } from './lib.mjs';

const size = arg('--size', '4G');
const scenario = arg('--scenario', 'plain');
const consumerCmd = arg('--consumer', 'filter');
const level = arg('--level', '31');
const dir = mkdtempSync(join(tmpdir(), 'dumpsieve-bench-stream-'));
try {
  const image = join(dir, 'guest.vmcore');
  synth(scenario, image, size, '6.1');
  const out = join(dir, 'out.kdump');
  const work = join(dir, 'work');
  spawnSync('mkdir', [work]);
  // The producer writes every RAM page (-d 0, no compression): a stream as large as the guest's RAM.
  const q = (s) => `'${s}'`;
  const producer = `${q(process.execPath)} ${q(cli)} filter -q -F -d 0 ${q(image)}`;
  const consumer =
    consumerCmd === 'info'
      ? `/usr/bin/time -v ${q(process.execPath)} ${q(cli)} info --work-dir ${q(work)} - > ${q(out)}`
      : `/usr/bin/time -v ${q(process.execPath)} ${q(cli)} filter -q -c -d ${level} --work-dir ${q(work)} - ${q(out)}`;
  const t0 = performance.now();
  const r = spawnSync('/bin/bash', ['-c', `${producer} | tee >(wc -c > ${q(join(dir, 'bytes'))}) | ${consumer}`], { encoding: 'utf8', shell: false });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`pipeline failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]) / 1024;
  const bytes = Number(spawnSync('cat', [join(dir, 'bytes')], { encoding: 'utf8' }).stdout.trim());
  console.log(
    JSON.stringify(
      {
        scenario,
        guest: size,
        consumer: consumerCmd,
        streamBytes: bytes,
        streamGiB: Number((bytes / 2 ** 30).toFixed(2)),
        readerPeakRssMiB: Number(rss.toFixed(1)),
        seconds: Number(seconds.toFixed(1)),
        output: statSync(out).size,
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
