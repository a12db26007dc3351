#!/usr/bin/env node
// `npm run bench`: dumpsieve against makedumpfile on the same synthetic
// guests, in alternation, with the pages each keeps checked equal before
// anything is reported. See bench/README.md.
//
//   npm run build && npm run bench -- [--sizes 2G,8G] [--pairs 3] [--level 31]
//       [--modes none,lzo,zlib,elf,snappy,zstd] [--scenario xen-hvm-balloon] [--kernel 5.10]
//       [--cli PATH] [--cache DIR] [--flat 32G] [--startup 15] [--no-mdf] [--json FILE]
//       [--ds-args '...'] [--keep-outputs]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { arg, cli as defaultCli, root, timed } from './lib.mjs';

const sizes = arg('--sizes', '2G,8G').split(',').filter(Boolean);
const pairs = Number(arg('--pairs', '3'));
const level = arg('--level', '31');
const modes = arg('--modes', 'none,lzo,zlib,elf,snappy,zstd').split(',').filter(Boolean);
const scenario = arg('--scenario', 'xen-hvm-balloon');
const kernel = arg('--kernel', '5.10');
const entry = resolve(arg('--cli', defaultCli));
const cacheDir = resolve(arg('--cache', process.env.DUMPSIEVE_BENCH_CACHE ?? join(tmpdir(), 'dumpsieve-bench-cache')));
const flat = arg('--flat');
const startupRuns = Number(arg('--startup', '15'));
const withMdf = !process.argv.includes('--no-mdf') && spawnSync('makedumpfile', ['-v']).status === 0;
const extra = (arg('--ds-args', '') ?? '').split(' ').filter(Boolean);
const jsonOut = arg('--json');

/** What each mode passes: dumpsieve's flags, makedumpfile's (undefined: dumpsieve alone), whether the output is kdump-compressed. */
const MODES = {
  none: { ds: [], mdf: [], kdump: true },
  lzo: { ds: ['-l'], mdf: ['-l'], kdump: true },
  zlib: { ds: ['-c'], mdf: ['-c'], kdump: true },
  elf: { ds: ['-E'], mdf: ['-E'], kdump: false },
  snappy: { ds: ['-p'], mdf: undefined, kdump: true },
  zstd: { ds: ['-z'], mdf: undefined, kdump: true },
};
for (const m of modes) if (!MODES[m]) throw new Error(`unknown mode ${m} (${Object.keys(MODES).join(', ')})`);

/** An entry as a command line: .js/.mjs run under this node, anything else (the bundle's launcher) is executed. */
const dsCommand = (args) => (/\.m?js$/.test(entry) ? [process.execPath, [entry, ...args]] : [entry, args]);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

// ---------------------------------------------------------------------------
// Images: synthesized once into the cache folder (sparse: zero pages are
// holes), reused while the synth code and its arguments are the same.

function synthStamp(size) {
  const h = createHash('sha256');
  const dir = join(root, 'dist', 'synth');
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.js')) h.update(f).update(readFileSync(join(dir, f)));
  h.update(JSON.stringify({ scenario, kernel, size, seed: 1 }));
  return h.digest('hex');
}

function image(size) {
  mkdirSync(cacheDir, { recursive: true });
  const path = join(cacheDir, `${scenario}-${kernel}-${size}.vmcore`);
  const stampFile = `${path}.stamp`;
  const stamp = synthStamp(size);
  if (existsSync(path) && existsSync(stampFile)) {
    const saved = JSON.parse(readFileSync(stampFile, 'utf8'));
    if (saved.stamp === stamp) return { path, info: saved.info, reused: true };
  }
  rmSync(stampFile, { force: true });
  log(`synth ${scenario} ${size} (kernel ${kernel}) -> ${path}`);
  const r = timed(process.execPath, [defaultCli, 'synth', '-q', '-f', '--json', scenario, path, '--size', size, '--kernel', kernel]);
  const info = JSON.parse(r.stdout);
  writeFileSync(stampFile, JSON.stringify({ stamp, info }));
  return { path, info, reused: false };
}

// ---------------------------------------------------------------------------
// Outputs: the 2nd bitmap of a kdump-compressed file and the pfns of an ELF
// dump, read with offsets from the formats' definitions (makedumpfile's
// diskdump_mod.h, elf.h), not with dumpsieve's readers.

function readAt(fd, pos, len) {
  const b = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const n = readSync(fd, b, done, len - done, pos + done);
    if (n <= 0) throw new Error(`short read at ${pos + done}`);
    done += n;
  }
  return b;
}

/** The 2nd (dumpable) bitmap of a kdump-compressed file, and max_mapnr. */
function kdumpBitmap2(path) {
  const fd = openSync(path, 'r');
  try {
    const h = readAt(fd, 0, 464);
    if (h.toString('latin1', 0, 8) !== 'KDUMP   ') throw new Error(`${path}: not kdump-compressed`);
    // struct disk_dump_header: block_size at 428, sub_hdr_size 432, bitmap_blocks 436, max_mapnr 440.
    const bs = h.readInt32LE(428);
    const sub = h.readInt32LE(432);
    const blocks = h.readUInt32LE(436);
    const half = (blocks / 2) * bs;
    return { maxMapnr: h.readUInt32LE(440), bits: readAt(fd, (1 + sub) * bs + half, half) };
  } finally {
    closeSync(fd);
  }
}

/**
 * A bitmap (bit per pfn, LSB first) of the pages an ELF dump holds data
 * for, and a reader of one such page.
 */
function elfPages(path, nbytes, pageSize = 4096) {
  const fd = openSync(path, 'r');
  try {
    const e = readAt(fd, 0, 64);
    const phoff = Number(e.readBigUInt64LE(32));
    let phnum = e.readUInt16LE(56);
    if (phnum === 0xffff) phnum = readAt(fd, Number(e.readBigUInt64LE(40)) + 44, 4).readUInt32LE(0); // PN_XNUM: sh_info of section 0
    const ph = readAt(fd, phoff, phnum * 56);
    const bits = Buffer.alloc(nbytes);
    const loads = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * 56;
      if (ph.readUInt32LE(o) !== 1) continue; // PT_LOAD
      const offset = Number(ph.readBigUInt64LE(o + 8));
      const paddr = Number(ph.readBigUInt64LE(o + 24));
      const filesz = Number(ph.readBigUInt64LE(o + 32));
      loads.push([paddr, filesz, offset]);
      if (nbytes > 0) for (let p = Math.ceil(paddr / pageSize); p < Math.floor((paddr + filesz) / pageSize); p++) {
        if (p >> 3 >= nbytes) throw new Error(`${path}: PT_LOAD past the bitmap (pfn ${p})`);
        bits[p >> 3] |= 1 << (p & 7);
      }
    }
    loads.sort((x, y) => x[0] - y[0]);
    /** Page pfn's bytes (fd: the file, open). */
    const page = (f, pfn) => {
      const a = pfn * pageSize;
      let lo = 0;
      let hi = loads.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (loads[mid][0] <= a) lo = mid;
        else hi = mid - 1;
      }
      const l = loads[lo];
      if (!l || a < l[0] || a + pageSize > l[0] + l[1]) throw new Error(`${path}: pfn 0x${pfn.toString(16)} has no data`);
      return readAt(f, l[2] + (a - l[0]), pageSize);
    };
    return { bits, page };
  } finally {
    closeSync(fd);
  }
}

/** Pfns set in a but not in b. */
function* minus(a, b) {
  for (let i = 0; i < a.length; i++) {
    const d = a[i] & ~(b[i] ?? 0);
    for (let k = 0; k < 8; k++) if (d & (1 << k)) yield i * 8 + k;
  }
}

const popcount = (b) => {
  let n = 0;
  for (const x of b) for (let v = x; v; v &= v - 1) n++;
  return n;
};

/** The first pfn whose bits differ, or -1; bitmaps may differ in length past the last set bit. */
function firstDiff(a, b) {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return i * 8 + (31 - Math.clz32((x ^ y) & -(x ^ y)));
  }
  return -1;
}

// ---------------------------------------------------------------------------

const lines = [];
function log(s = '') {
  console.log(s);
  lines.push(s);
}

/**
 * Check that dumpsieve's output keeps the pages makedumpfile's kdump
 * output keeps at this level (its 2nd bitmap, where zero pages are kept:
 * their descriptors share one zero block); returns how many. An ELF dump
 * leaves zero pages out (except those of protected ranges): it must be a
 * subset of that bitmap, and every page it leaves out must be a zero page
 * of the input image.
 */
function samePages(mode, out, mdf, input) {
  if (MODES[mode].kdump) {
    const mine = kdumpBitmap2(out);
    if (mine.maxMapnr !== mdf.maxMapnr) throw new Error(`${mode}: max_mapnr ${mine.maxMapnr}, makedumpfile ${mdf.maxMapnr}`);
    const at = firstDiff(mine.bits, mdf.bits);
    if (at >= 0) throw new Error(`${mode}: dumpsieve and makedumpfile keep different pages (first at pfn 0x${at.toString(16)}); not reporting`);
    return { pages: popcount(mine.bits) };
  }
  const elf = elfPages(out, mdf.bits.length);
  const extra = minus(elf.bits, mdf.bits).next();
  if (!extra.done) throw new Error(`${mode}: pfn 0x${extra.value.toString(16)} is in dumpsieve's ELF dump, not in makedumpfile's; not reporting`);
  const image = elfPages(input, 0);
  const fd = openSync(input, 'r');
  let zeros = 0;
  try {
    for (const p of minus(mdf.bits, elf.bits)) {
      if (image.page(fd, p).some((x) => x !== 0)) throw new Error(`${mode}: pfn 0x${p.toString(16)} is in makedumpfile's dump, not in dumpsieve's ELF dump, and is not a zero page; not reporting`);
      zeros++;
    }
  } finally {
    closeSync(fd);
  }
  return { pages: popcount(elf.bits), zeros };
}

function runDs(img, out, mode) {
  const [cmd, pre] = dsCommand(['filter', '-q', '--json', '-d', level, ...MODES[mode].ds, ...extra, img, out]);
  const r = timed(cmd, pre);
  const rep = JSON.parse(r.stdout);
  return { ...r, bytes: statSync(out).size, rep };
}

function runMdf(img, out, mode) {
  const r = timed('makedumpfile', [...MODES[mode].mdf, '-d', level, img, out]);
  return { ...r, bytes: statSync(out).size };
}

/**
 * Delete a run's output and flush the page cache's dirty pages (untimed):
 * otherwise the next run, whichever tool, pays for writing back the last
 * one's gigabyte (measured: system time of one 8 GiB none run 0.6-2.4 s).
 */
function drop(path) {
  rmSync(path, { force: true });
  spawnSync('sync');
}

function sha(path) {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(1 << 22);
  try {
    for (let pos = 0, n; (n = readSync(fd, b, 0, b.length, pos)) > 0; pos += n) h.update(b.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function benchImage(size) {
  const img = image(size);
  const st = statSync(img.path);
  log(`\n## ${scenario} ${size} guest (kernel ${kernel}), -d ${level}: ${(st.size / 2 ** 30).toFixed(2)} GiB file, ${((st.blocks * 512) / 2 ** 30).toFixed(2)} GiB on disk${img.reused ? ' (cached)' : ''}`);
  const outDir = join(cacheDir, `out-${process.pid}`);
  mkdirSync(outDir, { recursive: true });
  const ds = join(outDir, 'dumpsieve.out');
  const md = join(outDir, 'makedumpfile.out');
  const rows = [];
  let readFigures;
  let mdfBitmap;
  try {
    // Warm the page cache with the pages either tool reads (untimed).
    runDs(img.path, ds, 'none');
    rmSync(ds, { force: true });
    if (withMdf) {
      runMdf(img.path, md, 'none');
      mdfBitmap = kdumpBitmap2(md);
      rmSync(md, { force: true });
    }
    spawnSync('sync');
    for (const mode of modes) {
      const m = MODES[mode];
      const both = withMdf && m.mdf !== undefined;
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      const dsRuns = [];
      const mdRuns = [];
      for (let i = 0; i < pairs; i++) {
        const d = runDs(img.path, ds, mode);
        dsRuns.push(d);
        if (i === 0) {
          // Same pages kept: the 2nd bitmaps (the ELF dump's pfns) against makedumpfile's.
          if (mdfBitmap) d.samePages = samePages(mode, ds, mdfBitmap, img.path);
          if (both) d.sha = sha(ds);
          if (mode === 'none') readFigures = d.rep;
        }
        drop(ds);
        if (both) {
          const r = runMdf(img.path, md, mode);
          if (i === 0) r.sha = sha(md);
          mdRuns.push(r);
          drop(md);
        }
      }
      rows.push({ mode, load, ds: dsRuns, mdf: mdRuns, identical: both ? dsRuns[0].sha === mdRuns[0].sha : undefined, samePages: dsRuns[0].samePages });
    }
  } finally {
    if (!process.argv.includes('--keep-outputs')) rmSync(outDir, { recursive: true, force: true });
  }
  report(size, st.size, rows, readFigures);
  return { size, imageBytes: st.size, rows, readFigures };
}

function summary(runs) {
  return {
    seconds: median(runs.map((r) => r.seconds)),
    cpu: median(runs.map((r) => r.cpu)),
    user: median(runs.map((r) => r.user)),
    system: median(runs.map((r) => r.system)),
    rssMiB: Math.max(...runs.map((r) => r.rssMiB)),
    bytes: runs[0]?.bytes,
  };
}

function report(size, imageBytes, rows, rep) {
  const mb = (s) => (imageBytes / 1e6 / s).toFixed(0);
  log('');
  log('| mode | dumpsieve s | makedumpfile s | ratio | dumpsieve MB/s | makedumpfile MB/s | CPU s (ds / mdf) | user + system s (ds / mdf) | peak RSS MiB (ds / mdf) | output MiB (ds / mdf) | ds read MB | pages checked | load |');
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
  for (const r of rows) {
    const d = summary(r.ds);
    const m = r.mdf.length ? summary(r.mdf) : undefined;
    const cell = (x, f) => (x === undefined ? '–' : f(x));
    const split = (x) => `${x.user.toFixed(2)} + ${x.system.toFixed(2)}`;
    const check = r.samePages ? `${r.samePages.pages} same${r.samePages.zeros ? ` (ELF: ${r.samePages.zeros} zero pages left out)` : ''}${r.identical ? ', identical file' : ''}` : '–';
    log(
      `| ${r.mode} | ${d.seconds.toFixed(2)} | ${cell(m, (x) => x.seconds.toFixed(2))} | ${cell(m, (x) => (d.seconds / x.seconds).toFixed(2))} | ${mb(d.seconds)} | ${cell(m, (x) => mb(x.seconds))} | ${d.cpu.toFixed(2)} / ${cell(m, (x) => x.cpu.toFixed(2))} | ${split(d)} / ${cell(m, split)} | ${d.rssMiB.toFixed(0)} / ${cell(m, (x) => x.rssMiB.toFixed(0))} | ${(d.bytes / 2 ** 20).toFixed(1)} / ${cell(m, (x) => (x.bytes / 2 ** 20).toFixed(1))} | ${cell(r.ds[0]?.rep?.bytesRead, (x) => (x / 1e6).toFixed(1))} | ${check} | ${r.load} |`,
    );
  }
  if (rep) {
    const ps = rep.input.pageSize;
    const kept = rep.pages.kept * ps;
    const zero = (rep.pages.excluded.zero ?? 0) * ps;
    const d = rep.classification.description;
    const sec = /(\d+) of \d+ sections present, (\d+) pages per section/.exec(d?.layout ?? '');
    const spp = d?.decoder?.structPageSize ?? 0;
    const meta = sec ? Number(sec[1]) * Number(sec[2]) * spp : rep.pages.total * spp;
    const other = rep.bytesRead - kept - zero - meta;
    log('');
    log(
      `bytes read (none): ${(rep.bytesRead / 1e6).toFixed(1)} MB = kept pages ${(kept / 1e6).toFixed(1)} + zero pages checked ${(zero / 1e6).toFixed(1)} + struct page ${(meta / 1e6).toFixed(1)} (${(rep.pages.total / 1e6).toFixed(2)} M pfns × ${spp}) + other ${(other / 1e6).toFixed(1)} MB (headers, notes, page tables)`,
    );
  }
}

function startup() {
  const one = (cmd, args) => {
    const runs = [];
    for (let i = 0; i < startupRuns; i++) runs.push(timed(cmd, args));
    return summary(runs);
  };
  const [cmd, pre] = dsCommand(['--version']);
  // The floor is node as the launcher starts it: without NODE_EXTRA_CA_CERTS (which node parses before anything runs).
  const node = one('env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, '-e', '0']);
  const certs = process.env.NODE_EXTRA_CA_CERTS ? one(process.execPath, ['-e', '0']) : undefined;
  const ds = one(cmd, pre);
  const mdf = withMdf ? one('makedumpfile', ['-v']) : undefined;
  log(`\n## start-up, median of ${startupRuns}`);
  log('');
  log('| command | wall s | CPU s | peak RSS MiB |');
  log('| --- | ---: | ---: | ---: |');
  log(`| \`node -e 0\` (the floor) | ${node.seconds.toFixed(3)} | ${node.cpu.toFixed(3)} | ${node.rssMiB.toFixed(0)} |`);
  if (certs) log(`| \`node -e 0\` with this shell's NODE_EXTRA_CA_CERTS (the launcher drops it) | ${certs.seconds.toFixed(3)} | ${certs.cpu.toFixed(3)} | ${certs.rssMiB.toFixed(0)} |`);
  log(`| \`dumpsieve --version\` | ${ds.seconds.toFixed(3)} | ${ds.cpu.toFixed(3)} | ${ds.rssMiB.toFixed(0)} |`);
  if (mdf) log(`| \`makedumpfile -v\` | ${mdf.seconds.toFixed(3)} | ${mdf.cpu.toFixed(3)} | ${mdf.rssMiB.toFixed(0)} |`);
  return { node, certs, ds, mdf };
}

/** Peak RSS of one dumpsieve run per mode on a big image, beside the first image's. */
function flatness(size, baseline) {
  const img = image(size);
  const out = join(cacheDir, `flat-${process.pid}.out`);
  log(`\n## peak RSS at ${size} (one run per mode) against ${baseline.size}`);
  log('');
  log(`| mode | ${baseline.size} MiB | ${size} MiB | change |`);
  log('| --- | ---: | ---: | ---: |');
  const rows = [];
  try {
    for (const mode of modes) {
      const r = runDs(img.path, out, mode);
      rmSync(out, { force: true });
      const b = summary(baseline.rows.find((x) => x.mode === mode).ds).rssMiB;
      rows.push({ mode, base: b, big: r.rssMiB });
      log(`| ${mode} | ${b.toFixed(0)} | ${r.rssMiB.toFixed(0)} | ${(((r.rssMiB - b) / b) * 100).toFixed(1)} % |`);
    }
  } finally {
    rmSync(out, { force: true });
    // The image and everything synth wrote beside it (.truth, .kpageflags, ...; 70 MB at 32 GiB).
    if (!process.argv.includes('--keep-images')) {
      for (const f of readdirSync(cacheDir)) if (f === basename(img.path) || f.startsWith(`${basename(img.path)}.`)) rmSync(join(cacheDir, f), { force: true });
    }
  }
  return rows;
}

if (!existsSync(join(root, 'dist', 'cli', 'bin.js'))) throw new Error('run npm run build first');
log(`# dumpsieve ${entry === defaultCli ? '' : `(${entry}) `}vs ${withMdf ? 'makedumpfile 1.7.2' : '(makedumpfile not installed)'}: ${pairs} alternating pairs per mode, medians; node ${process.version}`);
log(`load average at start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
const results = { startup: startup(), images: [] };
for (const size of sizes) results.images.push(benchImage(size));
if (flat) results.flat = flatness(flat, results.images[0]);
log(`\nload average at end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, (k, v) => (k === 'stdout' || k === 'rep' ? undefined : v), 2));
