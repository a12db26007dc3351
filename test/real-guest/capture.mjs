/**
 * What a crash guest brings besides an ordinary guest's initramfs:
 *
 * - the capture (kdump) kernel's initramfs: busybox, capture-init.sh as
 *   /init, the virtio and ext4 modules, and per collector the node binary
 *   with the shared objects it links plus the self-contained bundle
 *   (`scripts/bundle.mjs`), or Debian's makedumpfile with its shared
 *   objects; compressed with zstd -9 as Debian's mkinitramfs does;
 * - the crash disk: an ext2 image holding the capture kernel (the same
 *   vmlinuz) and that initramfs, from which the crashed guest loads them
 *   with `kexec -s -p` (kexec_file_load) and to which the capture kernel
 *   writes its dumps; read back on the host with debugfs (e2fsprogs), no
 *   mount needed;
 * - kexec and its shared objects for the guest's own initramfs.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpio } from './initramfs.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

/** The first of these that exists (kexec-tools, makedumpfile: Debian puts them in /usr/sbin and /usr/bin). */
function firstOf(...paths) {
  return paths.find((p) => existsSync(p)) ?? paths[0];
}
export const KEXEC = firstOf('/usr/sbin/kexec', '/sbin/kexec', '/usr/bin/kexec');
export const MAKEDUMPFILE = firstOf('/usr/bin/makedumpfile', '/usr/sbin/makedumpfile', '/sbin/makedumpfile');
/** The collectors a capture initramfs can hold. */
export const COLLECTORS = ['dumpsieve', 'makedumpfile'];

/** Fail early, naming the package, when a tool a crash guest needs is missing. */
export function checkCaptureTools() {
  const need = [
    [KEXEC, 'kexec-tools'],
    [MAKEDUMPFILE, 'makedumpfile'],
    ['mke2fs', 'e2fsprogs'],
    ['debugfs', 'e2fsprogs'],
    ['zstd', 'zstd'],
    ['ldd', 'libc-bin'],
  ];
  for (const [tool, pkg] of need) {
    try {
      execFileSync(tool.startsWith('/') ? 'test' : 'sh', tool.startsWith('/') ? ['-x', tool] : ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: install ${pkg} (crash guests need it)`);
    }
  }
}

/** PT_INTERP of an ELF executable, or undefined (static). */
function interpreter(path) {
  const b = readFileSync(path);
  const phoff = Number(b.readBigUInt64LE(32));
  const phnum = b.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56;
    if (b.readUInt32LE(o) !== 3) continue;
    const off = Number(b.readBigUInt64LE(o + 8));
    const size = Number(b.readBigUInt64LE(o + 32));
    return b.subarray(off, off + size).toString('latin1').replace(/\0.*$/, '');
  }
  return undefined;
}

/**
 * An executable and the shared objects it needs (ldd), as initramfs
 * entries at the paths the dynamic loader looks in: each library under the
 * path ldd names (its soname link, read through), the loader at its
 * PT_INTERP path.
 */
export function withLibraries(binary, as) {
  const entries = [{ path: as, mode: 0o755, data: readFileSync(binary) }];
  const interp = interpreter(binary);
  if (!interp) return entries;
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = line.match(/=>\s*(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (!m) continue;
    entries.push({ path: m[1], mode: 0o755, data: readFileSync(m[1]) });
  }
  if (!entries.some((e) => e.path === interp)) entries.push({ path: interp, mode: 0o755, data: readFileSync(interp) });
  return entries;
}

/** The node binary the bundle runs on in the capture kernel: the one running this harness. */
export function nodeBinary() {
  return realpathSync(process.execPath);
}

/** What of a bundle the capture kernel runs: the launcher, the entry and the modules it loads (lib/). */
function bundleFiles(dir) {
  return ['dumpsieve', 'dumpsieve.mjs', ...readdirSync(join(dir, 'lib')).sort().map((f) => `lib/${f}`)];
}

/**
 * Build the self-contained bundle into a temporary folder; returns
 * { dir, key, remove } where key hashes what the capture kernel runs (the
 * bundle, the node binary's version, makedumpfile's version, the capture
 * scripts), so a crash guest is rebuilt when any of them changes.
 */
export function buildBundle() {
  const dir = mkdtempSync(join(tmpdir(), 'dumpsieve-crash-bundle-'));
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--out', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const h = createHash('sha256');
  for (const f of bundleFiles(dir)) h.update(f).update(readFileSync(join(dir, f)));
  for (const f of ['capture-init.sh', 'hwm.mjs', 'init.sh']) h.update(readFileSync(join(HERE, f)));
  h.update(process.version);
  h.update(execFileSync(MAKEDUMPFILE, ['-v'], { encoding: 'utf8' }).split('\n')[0] ?? '');
  return { dir, key: h.digest('hex').slice(0, 16), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The capture kernel's initramfs (zstd-compressed cpio). `modules`: module
 * names in load order (files in kernel.dir/modules); `collectors`: a
 * subset of COLLECTORS; `args`: the collectors' command line. With
 * `onDisk`, the collectors' files are returned as `disk` entries instead
 * (for the crash disk's root/ tree, linked into / by capture-init.sh), as
 * when kdump-tools runs the collector from the root file system.
 */
export function captureInitramfs({ busybox, kernel, modules, collectors, args, bundleDir, onDisk = false }) {
  const entries = [
    { path: 'bin/busybox', mode: 0o755, data: readFileSync(busybox) },
    { path: 'init', mode: 0o755, data: readFileSync(join(HERE, 'capture-init.sh')) },
    { path: 'dev/console', dev: [5, 1] },
    { path: 'proc', dir: true },
    { path: 'sys', dir: true },
    { path: 'tmp', dir: true },
  ];
  const env = { MODULES: modules.join(' '), COLLECTORS: collectors.join(' '), ARGS: args.join(' ') };
  entries.push({ path: 'capture.env', data: Buffer.from(Object.entries(env).map(([k, v]) => `${k}='${v}'`).join('\n') + '\n') });
  for (const m of modules) entries.push({ path: `lib/modules/${m}.ko`, data: readFileSync(join(kernel.dir, 'modules', `${m}.ko`)) });
  const seen = new Set();
  const disk = [];
  const add = (list) => {
    for (const e of list) {
      if (seen.has(e.path)) continue;
      seen.add(e.path);
      (onDisk ? disk : entries).push(e);
    }
  };
  for (const c of collectors) {
    if (c === 'dumpsieve') {
      add(withLibraries(nodeBinary(), '/usr/bin/node'));
      for (const f of [...bundleFiles(bundleDir), 'VERSION']) add([{ path: `/usr/lib/dumpsieve/${f}`, mode: 0o755, data: readFileSync(join(bundleDir, f)) }]);
      add([{ path: '/capture/hwm.mjs', data: readFileSync(join(HERE, 'hwm.mjs')) }]);
    } else if (c === 'makedumpfile') {
      add(withLibraries(MAKEDUMPFILE, '/usr/sbin/makedumpfile'));
    } else {
      throw new Error(`unknown collector ${c}`);
    }
  }
  const raw = cpio(entries);
  return {
    raw: raw.length,
    data: execFileSync('zstd', ['-q', '-9', '-T0', '-c'], { input: raw, maxBuffer: 1 << 30 }),
    disk: Object.fromEntries(disk.map((e) => [`root/${e.path.replace(/^\/+/, '')}`, { data: e.data, mode: e.mode ?? 0o644 }])),
  };
}

/** An ext2 image of `sizeMiB` (sparse) holding `files` { name: Buffer | { data, mode } }, made by mke2fs -d. */
export function makeDisk(path, sizeMiB, files) {
  const staging = mkdtempSync(join(tmpdir(), 'dumpsieve-crash-disk-'));
  try {
    for (const [name, f] of Object.entries(files)) {
      mkdirSync(dirname(join(staging, name)), { recursive: true });
      const { data, mode } = Buffer.isBuffer(f) ? { data: f, mode: 0o644 } : f;
      writeFileSync(join(staging, name), data, { mode });
    }
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-b', '4096', '-m', '0', '-d', staging, path, `${sizeMiB}M`], { stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Copy file `name` out of the ext2 image to `to`; false if the image has no such file. */
export function readFromDisk(image, name, to) {
  const ls = execFileSync('debugfs', ['-R', `stat /${name}`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (!/Inode:/.test(ls)) return false;
  execFileSync('debugfs', ['-R', `dump /${name} ${to}`, image], { stdio: ['ignore', 'ignore', 'pipe'] });
  return true;
}
