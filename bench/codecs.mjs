#!/usr/bin/env node
// Codec throughput and peak RSS of `dumpsieve filter`, and the byte
// identity of its output against another build of dumpsieve (for example
// one with the former native codec add-ons) on the same synthetic image.
//
//   npm run build && node bench/codecs.mjs [--size 1G] [--scenario plain] [--level 1]
//       [--threads 0,2] [--codecs none,zlib,lzo,snappy,zstd] [--runs 2]
//       [--cli PATH] [--ref PATH] [--keep DIR]
//
// --cli and --ref name an entry (a dumpsieve.js, a bundle's dumpsieve.mjs,
// or the bundle's launcher script); --cli defaults to this checkout's
// bin/dumpsieve.js. Each configuration runs as its own process under
// /usr/bin/time -v, best of --runs; MB/s counts the kept pages' bytes
// (what the codec compresses) per wall-clock second.
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, cli as defaultCli, synth, timed } from './lib.mjs';

const size = arg('--size', '1G');
const scenario = arg('--scenario', 'plain');
const kernel = arg('--kernel', '5.10');
const level = arg('--level', '1');
const threads = arg('--threads', '0,2').split(',');
const codecs = arg('--codecs', 'none,zlib,lzo,snappy,zstd').split(',');
const runs = Number(arg('--runs', '2'));
const entries = [['dumpsieve', arg('--cli', defaultCli)]];
if (arg('--ref')) entries.push(['reference', arg('--ref')]);
const dir = arg('--keep') ?? mkdtempSync(join(tmpdir(), 'dumpsieve-bench-codecs-'));
const LETTER = { none: [], zlib: ['-c'], lzo: ['-l'], snappy: ['-p'], zstd: ['-z'] };

/** An entry as a command line: scripts ending in .js/.mjs run under this node, anything else is executed. */
const command = (entry) => (/\.m?js$/.test(entry) ? [process.execPath, [entry]] : [entry, []]);

async function sha256(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest('hex');
}

try {
  const image = join(dir, 'guest.vmcore');
  console.log(`synth ${scenario} ${size} (kernel ${kernel}) -> ${image}`);
  const { info } = synth(scenario, image, size, kernel);
  console.log(`  ${(info.size / 2 ** 30).toFixed(2)} GiB guest, ${(statSync(image).size / 2 ** 30).toFixed(2)} GiB file`);
  const rows = [];
  for (const codec of codecs) {
    for (const t of threads) {
      for (const [name, entry] of entries) {
        const out = join(dir, `out-${name}-${codec}-${t}`);
        const [cmd, pre] = command(entry);
        let best;
        for (let i = 0; i < runs; i++) {
          const r = timed(cmd, [...pre, 'filter', '-q', '-f', '--json', '-d', level, ...LETTER[codec], '--num-threads', t, image, out]);
          if (!best || r.seconds < best.seconds) best = r;
        }
        const rep = JSON.parse(best.stdout);
        const kept = rep.pages.kept * rep.input.pageSize;
        rows.push({ name, codec, t, ...best, kept, bytes: statSync(out).size, sha: await sha256(out) });
        rmSync(out, { force: true });
      }
    }
  }
  console.log('');
  console.log('build        codec   threads  seconds  user+sys  MB/s(kept)  peak RSS  output MiB  sha256');
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(12)} ${r.codec.padEnd(7)} ${String(r.t).padStart(7)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.cpu.toFixed(2).padStart(8)}  ${(r.kept / 1e6 / r.seconds).toFixed(0).padStart(10)}  ${r.rssMiB.toFixed(0).padStart(4)} MiB  ${(r.bytes / 2 ** 20).toFixed(1).padStart(10)}  ${r.sha.slice(0, 16)}`,
    );
  }
  if (entries.length > 1) {
    const differ = rows.filter((r) => r.name === 'dumpsieve' && rows.some((q) => q.name !== r.name && q.codec === r.codec && q.t === r.t && q.sha !== r.sha));
    console.log(differ.length ? `\nOUTPUT DIFFERS from the reference: ${differ.map((r) => `${r.codec}/${r.t}`).join(', ')}` : '\nEvery output is byte-identical to the reference.');
    if (differ.length) process.exitCode = 1;
  }
} finally {
  if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
}
