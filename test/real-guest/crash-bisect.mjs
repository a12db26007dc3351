#!/usr/bin/env node
/**
 * The smallest crashkernel= that works, per kernel and collector: crash a
 * guest (the suite's crash guest for that kernel, without its reference
 * dump) whose capture initramfs holds one collector only — dumpsieve (node
 * and the bundle) or makedumpfile — at sizes chosen by bisection, and
 * report which sizes worked. Not part of the suite (each boot is about a
 * minute or two under TCG); docs/kdump.md records its figures.
 *
 *   node test/real-guest/crash-bisect.mjs [--kernels 6.1,6.12]
 *       [--collectors dumpsieve,makedumpfile] [--lo MiB] [--hi MiB] [--step MiB]
 *       [--append 'PARAM ...'] [--on-disk] [--keep DIR] [--json FILE]
 *
 * --append adds parameters to the capture kernel's command line (e.g.
 * rootfstype=ramfs); --on-disk keeps the collector on the crash disk, not
 * in the initramfs (kdump-tools' way); --keep copies each try's console
 * log to DIR.
 *
 * `lo` is assumed to fail and `hi` to work (both are tried first); the
 * search stops when they are `step` apart. "Works" means: kexec -p loaded
 * the capture kernel, it booted, and the collector exited 0. Guests are
 * built in a temporary cache folder and deleted; kernels come from the
 * suite's cache.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUESTS } from './guests.mjs';
import { ensureKernel } from './kernels.mjs';
import { buildGuest, guestDir } from './guest.mjs';
import { buildBundle } from './capture.mjs';
import { cacheDir } from './build.mjs';

const log = (msg) => process.stderr.write(`[crash-bisect] ${msg}\n`);

function option(argv, name, dflt) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
}

/** Why a capture failed, from the console of both kernels. */
function classify(consoleText, fallback) {
  const kexecLines = [...consoleText.matchAll(/@@DS kexec (.*)/g)].map((m) => m[1].trim());
  if (/@@DS error kexec -p did not load/.test(consoleText)) return `kexec -p could not load the capture kernel (${kexecLines.join('; ') || 'no message'})`;
  const after = consoleText.split('sysrq triggered crash').slice(1).join('');
  let m;
  if ((m = after.match(/Out of memory: Killed process \d+ \((\S+)\)/))) return `the OOM killer took ${m[1]}`;
  if (/Initramfs unpacking failed/.test(after)) return 'the capture kernel could not unpack its initramfs';
  if ((m = after.match(/Kernel panic - not syncing: (.*)/))) return `capture kernel panic: ${m[1].trim()}`;
  if ((m = after.match(/@@DS capture run \S+ exit=([1-9]\d*)/))) return `the collector exited ${m[1]}`;
  return fallback;
}

async function tryOnce({ base, kernel, collector, sizeMiB, scratch, qemuVersion, bundle, append, keep, onDisk }) {
  const g = {
    ...base,
    name: `bisect-${base.kernel}-${collector}-${sizeMiB}`,
    crash: { ...base.crash, crashkernelMiB: sizeMiB, collectors: [collector], reference: false, append: [...base.crash.append, ...append], collectorsOnDisk: onDisk },
    ci: false,
  };
  const t0 = Date.now();
  try {
    const t = await buildGuest({ cache: scratch, guest: g, kernel, qemuVersion, log: () => undefined, bundle });
    const run = t.capture.runs[collector];
    const ok = run?.exit === 0;
    const consoleText = readFileSync(join(guestDir(scratch, g.name), 'console.log'), 'latin1');
    return {
      sizeMiB,
      ok,
      why: ok ? undefined : classify(consoleText, `the collector exited ${run?.exit}`),
      memTotalKiB: Math.round((t.capture.meminfo.start?.MemTotal ?? 0) / 1024),
      memFreeKiB: Math.round((t.capture.meminfo.start?.MemFree ?? 0) / 1024),
      captureSeconds: t.capture.hostSeconds,
      collectorSeconds: run?.seconds,
      hwmKiB: Math.max(run?.hwm ?? 0, run?.self?.VmHWM ?? 0),
      seconds: (Date.now() - t0) / 1000,
    };
  } catch (err) {
    const partial = `${guestDir(scratch, g.name)}.partial`;
    const consoleText = existsSync(join(partial, 'console.log')) ? readFileSync(join(partial, 'console.log'), 'latin1') : '';
    return { sizeMiB, ok: false, why: classify(consoleText, err.message.split('\n')[0].slice(0, 200)), seconds: (Date.now() - t0) / 1000 };
  } finally {
    if (keep) {
      for (const d of [guestDir(scratch, g.name), `${guestDir(scratch, g.name)}.partial`]) {
        if (existsSync(join(d, 'console.log'))) copyFileSync(join(d, 'console.log'), join(keep, `${g.name}.console.log`));
      }
    }
    rmSync(`${guestDir(scratch, g.name)}.partial`, { recursive: true, force: true });
    rmSync(guestDir(scratch, g.name), { recursive: true, force: true });
  }
}

async function search(ctx, lo, hi, step) {
  const tried = [];
  const run = async (sizeMiB) => {
    const r = await tryOnce({ ...ctx, sizeMiB });
    tried.push(r);
    log(`${ctx.base.kernel} ${ctx.collector} crashkernel=${sizeMiB}M: ${r.ok ? `works (MemTotal ${r.memTotalKiB >> 10} MiB, collector ${r.collectorSeconds} s, VmHWM ${(r.hwmKiB / 1024).toFixed(1)} MiB)` : `fails: ${r.why}`} [${Math.round(r.seconds)} s]`);
    return r.ok;
  };
  if (!(await run(hi))) return { tried, smallest: undefined };
  if (await run(lo)) return { tried, smallest: lo };
  while (hi - lo > step) {
    const mid = Math.round((lo + hi) / 2 / step) * step;
    if (mid <= lo || mid >= hi) break;
    if (await run(mid)) hi = mid;
    else lo = mid;
  }
  return { tried, smallest: hi };
}

async function main(argv) {
  const kernels = option(argv, 'kernels', '6.1,6.12').split(',');
  const collectors = option(argv, 'collectors', 'dumpsieve,makedumpfile').split(',');
  const lo = Number(option(argv, 'lo', '96'));
  const hi = Number(option(argv, 'hi', '384'));
  const step = Number(option(argv, 'step', '16'));
  const jsonOut = option(argv, 'json', undefined);
  const append = option(argv, 'append', '').split(/\s+/).filter(Boolean);
  const keep = option(argv, 'keep', undefined);
  const onDisk = argv.includes('--on-disk');
  if (keep) mkdirSync(keep, { recursive: true });
  const cache = cacheDir();
  const scratch = mkdtempSync(join(tmpdir(), 'dumpsieve-crash-bisect-'));
  const bundle = buildBundle();
  const qemuVersion = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const jobs = [];
  for (const k of kernels) {
    const base = GUESTS.find((g) => g.crash && g.kernel === k);
    if (!base) throw new Error(`no crash guest for kernel ${k}`);
    const kernel = ensureKernel(cache, k, log);
    for (const collector of collectors) jobs.push({ base, kernel, collector, scratch, qemuVersion, bundle, append, keep, onDisk });
  }
  const results = [];
  try {
    // Two guests at a time, like build.mjs.
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const j = jobs[next++];
        const r = await search(j, lo, hi, step);
        results.push({ kernel: j.base.kernel, release: j.kernel.release, collector: j.collector, append: append.join(' '), onDisk, ...r });
      }
    };
    await Promise.all([worker(), worker()]);
  } finally {
    bundle.remove();
    rmSync(scratch, { recursive: true, force: true });
  }
  for (const r of results) {
    const sizes = [...r.tried].sort((a, b) => a.sizeMiB - b.sizeMiB).map((t) => `${t.sizeMiB}M ${t.ok ? 'works' : `fails (${t.why})`}`);
    log(`${r.kernel} ${r.collector}: smallest crashkernel=${r.smallest ?? '?'}M; ${sizes.join('; ')}`);
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 1) + '\n');
}

main(process.argv.slice(2)).catch((err) => {
  log(`error: ${err.stack ?? err}`);
  process.exitCode = 1;
});
