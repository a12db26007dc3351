#!/usr/bin/env node
/**
 * Build the real guests that are missing from the cache (or all of them,
 * with --force): fetch the Debian kernels, boot each guest under QEMU TCG,
 * drive it, dump it. Two guests at a time at most.
 *
 *   node test/real-guest/build.mjs            the suite's guests (DUMPSIEVE_REAL_GUESTS: see guests.mjs)
 *   node test/real-guest/build.mjs NAME...    these guests (e.g. sample-6.1-256m)
 *   node test/real-guest/build.mjs --force    rebuild even if cached
 *
 * The cache is ${DUMPSIEVE_REAL_GUEST_CACHE:-~/.cache/dumpsieve/real-guest};
 * it is never part of the repository. Needs qemu-system-x86 (7.2 or later),
 * busybox-static, apt-get and dpkg-deb, xz; crash guests also kexec-tools,
 * makedumpfile, e2fsprogs and zstd, and build the bundle (esbuild).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { guestByName, suiteGuests } from './guests.mjs';
import { ensureKernel } from './kernels.mjs';
import { BUSYBOX, HARNESS_VERSION, buildGuest, guestDir } from './guest.mjs';
import { buildBundle, checkCaptureTools } from './capture.mjs';

export function cacheDir() {
  return process.env.DUMPSIEVE_REAL_GUEST_CACHE || join(homedir(), '.cache', 'dumpsieve', 'real-guest');
}

const log = (msg) => process.stderr.write(`[real-guest] ${msg}\n`);

/**
 * The guest's truth if its folder is current. A crash guest is current only
 * for the bundle (and capture scripts, node, makedumpfile) it ran: `crashKey`.
 */
function cached(cache, g, crashKey) {
  const p = join(guestDir(cache, g.name), 'truth.json');
  if (!existsSync(p)) return undefined;
  try {
    const t = JSON.parse(readFileSync(p, 'utf8'));
    if (t.harnessVersion !== HARNESS_VERSION || JSON.stringify(t.description) !== JSON.stringify(g)) return undefined;
    if (g.crash && t.capture?.key !== crashKey) return undefined;
    return t;
  } catch {
    return undefined;
  }
}

async function pool(items, width, fn) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

/** The guests' /init runs busybox with no libraries around it: it must be static (no PT_INTERP). */
function checkBusybox(path) {
  let b;
  try {
    b = readFileSync(path);
  } catch {
    throw new Error(`${path} is missing: install busybox-static`);
  }
  const phoff = Number(b.readBigUInt64LE(32));
  const phnum = b.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * 56) === 3) throw new Error(`${path} is dynamically linked: install busybox-static`);
}

async function main(argv) {
  const force = argv.includes('--force');
  const names = argv.filter((a) => !a.startsWith('--'));
  const guests = names.length ? names.map(guestByName) : suiteGuests();
  const cache = cacheDir();
  const t0 = Date.now();
  checkBusybox(BUSYBOX);
  const qemuVersion = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  // Crash guests run the current bundle in their capture kernel: build it (a few seconds) to know whether they are current.
  if (guests.some((g) => g.crash)) checkCaptureTools();
  const bundle = guests.some((g) => g.crash) ? buildBundle() : undefined;
  process.once('exit', () => bundle?.remove());
  const todo = guests.filter((g) => force || !cached(cache, g, bundle?.key));
  log(`cache ${cache}; ${guests.length - todo.length} of ${guests.length} guests cached${todo.length ? `, building ${todo.map((g) => g.name).join(', ')}` : ''}`);
  const kernels = {};
  for (const key of new Set(guests.map((g) => g.kernel))) kernels[key] = ensureKernel(cache, key, log);
  let failed = 0;
  await pool(todo, 2, async (g) => {
    try {
      const t = await buildGuest({ cache, guest: g, kernel: kernels[g.kernel], qemuVersion, log, bundle });
      log(`${g.name}: done in ${Math.round(t.seconds.total)} s`);
    } catch (err) {
      failed++;
      log(`${g.name}: FAILED: ${err.message}`);
    }
  });
  log(qemuVersion);
  for (const g of guests) {
    const k = kernels[g.kernel];
    const t = cached(cache, g, bundle?.key);
    const s = t ? Object.entries(t.seconds).map(([k2, v]) => `${k2} ${Math.round(v)} s`).join(', ') : 'missing';
    log(`${g.name.padEnd(26)} ${k.package} ${k.version} (${k.release}), -cpu ${g.cpu}: ${s}`);
  }
  log(`${todo.length} guests built in ${Math.round((Date.now() - t0) / 1000)} s`);
  if (failed) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err) => {
    log(`error: ${err.stack ?? err}`);
    process.exitCode = 1;
  });
}
