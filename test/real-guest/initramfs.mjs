/**
 * A guest's initramfs: an uncompressed cpio archive ("newc", the format the
 * kernel unpacks; Documentation/driver-api/early-userspace/buffer-format.rst)
 * holding busybox-static as /bin/busybox, /init, /dev/console (the kernel
 * opens it for init's standard streams before /dev is mounted), the guest's
 * settings, its modules and any extra files the guest description brings.
 * Uncompressed: decompressing under TCG costs more than reading it.
 */
import { readFileSync } from 'node:fs';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

/** Build the archive. entries: [{ path, mode, data?, dir?, dev?: [major, minor] }] */
export function cpio(entries) {
  const parts = [];
  let ino = 1;
  const push = (name, mode, data, rdev) => {
    const nameBytes = Buffer.from(name + '\0', 'latin1');
    const fields = [ino++, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    const head = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'latin1');
    parts.push(head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)), data, Buffer.alloc(pad4(data.length)));
  };
  const dirs = new Set();
  const ensureDir = (path) => {
    const segs = path.split('/').slice(0, -1);
    for (let i = 1; i <= segs.length; i++) {
      const d = segs.slice(0, i).join('/');
      if (d && !dirs.has(d)) {
        dirs.add(d);
        push(d, S_IFDIR | 0o755, Buffer.alloc(0), [0, 0]);
      }
    }
  };
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    ensureDir(path);
    if (e.dir) {
      if (!dirs.has(path)) {
        dirs.add(path);
        push(path, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), [0, 0]);
      }
    } else if (e.dev) {
      push(path, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), e.dev);
    } else {
      push(path, S_IFREG | (e.mode ?? 0o644), Buffer.from(e.data), [0, 0]);
    }
  }
  push('TRAILER!!!', 0, Buffer.alloc(0), [0, 0]);
  return Buffer.concat(parts);
}

/**
 * The initramfs of one guest: busybox, the init script, /guest.env
 * (shell assignments), the kernel's modules in load order (MODULES in
 * guest.env; `modules` replaces kernel.modules), extra files
 * { path: Buffer|string } and extra cpio entries.
 */
export function guestInitramfs({ busybox, init, env, kernel, modules = kernel.modules, extra = {}, entries: more = [] }) {
  const entries = [
    { path: 'bin/busybox', mode: 0o755, data: readFileSync(busybox) },
    { path: 'init', mode: 0o755, data: Buffer.from(init) },
    { path: 'dev/console', dev: [5, 1] },
    { path: 'proc', dir: true },
    { path: 'sys', dir: true },
    { path: 'tmp', dir: true },
    { path: 'mnt', dir: true },
  ];
  const envText = Object.entries({ ...env, MODULES: modules.join(' ') })
    .map(([k, v]) => `${k}='${String(v).replace(/'/g, `'\\''`)}'`)
    .join('\n');
  entries.push({ path: 'guest.env', data: Buffer.from(envText + '\n') });
  for (const m of modules) entries.push({ path: `lib/modules/${m}.ko`, data: readFileSync(`${kernel.dir}/modules/${m}.ko`) });
  for (const [path, data] of Object.entries(extra)) entries.push({ path, mode: 0o755, data: Buffer.from(data) });
  entries.push(...more);
  return cpio(entries);
}
