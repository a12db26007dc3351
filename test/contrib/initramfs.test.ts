/**
 * What the initramfs integration puts into a kdump initrd is enough to run:
 *
 * - the initramfs-tools hook (run with initramfs-tools' own
 *   hook-functions) copies node with its libraries, the bundle and the
 *   collector into the kdump initrd only; in a chroot of that tree (plus
 *   busybox for /bin/sh, as initramfs-tools adds it) dumpsieve and
 *   dumpsieve-collector filter a sample to the pinned bytes;
 * - the dracut module asks for the bundle and node in check() and installs
 *   them in install() (dracut's functions are stand-ins that record calls).
 *
 * The bundle is DUMPSIEVE_BIN's directory, or one built for the test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { PINNED } from '../formats/kdump/pinned-output.js';
import { BIN } from '../cli/run.js';
import { havePeers } from '../interop/peers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const HOOK = join(root, 'contrib/kdump/debian/initramfs-tools/hooks/dumpsieve');
const DRACUT = join(root, 'contrib/kdump/dracut/99dumpsieve/module-setup.sh');
const pinned = (codec: string): string => PINNED.find(([s, l, c]) => s === 'xen-hvm-balloon' && l === 31 && c === codec)![3];
const ok = havePeers('kdump initrd contents (initramfs-tools hook in a chroot)', 'initramfs');

let dir: TempDir;
let bundle: string;

beforeAll(async () => {
  dir = await tempDir('dumpsieve-initramfs-');
  if (BIN && existsSync(join(dirname(BIN), 'dumpsieve.mjs'))) bundle = dirname(BIN);
  else {
    bundle = dir.file('bundle');
    execFileSync(process.execPath, [join(root, 'scripts/bundle.mjs'), '--out', bundle], { stdio: 'pipe' });
  }
}, 120_000);
afterAll(() => dir?.remove());

function runHook(destdir: string, confdir: string): void {
  execFileSync('sh', [HOOK], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DESTDIR: destdir, CONFDIR: confdir, DUMPSIEVE_DIR: bundle, verbose: 'n' }, stdio: 'pipe' });
}

describe.runIf(ok)('initramfs-tools hook', () => {
  it('leaves regular initrds alone', async () => {
    const d = dir.file('regular');
    await mkdir(d);
    runHook(d, '/etc/initramfs-tools');
    expect(existsSync(join(d, 'usr/bin/node'))).toBe(false);
  });

  it('fills the kdump initrd with everything dumpsieve needs to run', async () => {
    const d = dir.file('kdump-initrd');
    await mkdir(d);
    runHook(d, '/var/lib/kdump/initramfs-tools');
    for (const f of ['usr/bin/node', 'usr/bin/dumpsieve', 'usr/bin/dumpsieve-collector', `${bundle}/dumpsieve.mjs`.slice(1)]) expect(existsSync(join(d, f)), f).toBe(true);
    // What mkinitramfs and busybox add around the hooks' files: merged /usr, /bin/sh, /dev/null, /tmp.
    for (const l of ['bin', 'lib', 'lib64']) if (!existsSync(join(d, l))) await symlink(`usr/${l}`, join(d, l));
    await mkdir(join(d, 'usr/lib64'), { recursive: true });
    await mkdir(join(d, 'tmp'), { recursive: true });
    await mkdir(join(d, 'dev'), { recursive: true });
    execFileSync('mknod', [join(d, 'dev/null'), 'c', '1', '3']);
    await copyFile(execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim(), join(d, 'usr/bin/busybox'));
    for (const a of ['sh', 'readlink', 'dirname']) await symlink('busybox', join(d, 'usr/bin', a));
    await copyFile(join(root, 'samples/xen-hvm-balloon.vmcore.br'), join(d, 'guest.vmcore.br'));
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    const a = spawnSync('chroot', [d, '/usr/bin/dumpsieve', 'filter', '-q', '-l', '-d', '31', '/guest.vmcore.br', '/a.kdump'], { env, encoding: 'utf8' });
    expect(a.stderr).toBe('');
    expect(a.status).toBe(0);
    expect(createHash('sha256').update(await readFile(join(d, 'a.kdump'))).digest('hex')).toBe(pinned('lzo'));
    const b = spawnSync('chroot', [d, '/usr/bin/dumpsieve-collector', '-z', '--message-level', '7', '-d', '31', '/guest.vmcore.br', '/b.kdump'], { env, encoding: 'utf8' });
    expect(b.stderr).toBe('');
    expect(b.status).toBe(0);
    expect(createHash('sha256').update(await readFile(join(d, 'b.kdump'))).digest('hex')).toBe(pinned('zstd'));
  }, 120_000);
});

describe('dracut module', () => {
  /** Run a function of module-setup.sh with dracut's helpers recording their calls. */
  function dracut(fn: 'check' | 'install', env: Record<string, string>): { status: number | null; calls: string[] } {
    const stubs = ['inst_binary', 'inst_simple', 'inst_multiple', 'ln_r', 'derror'].map((f) => `${f}() { echo "${f} $*"; }`).join('\n');
    const r = spawnSync('bash', ['-c', `${stubs}\n. "${DRACUT}"\n${fn}`], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' });
    return { status: r.status, calls: r.stdout.split('\n').filter(Boolean) };
  }

  it('is optional (255) when bundle and node are there, refuses (1) when not', () => {
    expect(dracut('check', { DUMPSIEVE_DIR: bundle, DUMPSIEVE_NODE: process.execPath }).status).toBe(255);
    const missing = dracut('check', { DUMPSIEVE_DIR: dir.file('nowhere'), DUMPSIEVE_NODE: process.execPath });
    expect(missing.status).toBe(1);
    expect(missing.calls[0]).toMatch(/^derror dumpsieve: no bundle in/);
  });

  it('installs node, the bundle, the collector and the commands', () => {
    const r = dracut('install', { DUMPSIEVE_DIR: bundle, DUMPSIEVE_NODE: process.execPath });
    // The bundle's lazily loaded modules, as the shell's glob lists them (C locale order).
    const chunks = readdirSync(join(bundle, 'lib'))
      .filter((f) => f.endsWith('.mjs'))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map((f) => `${bundle}/lib/${f}`);
    expect(chunks.length).toBeGreaterThan(1);
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([
      `inst_binary ${process.execPath} /usr/bin/node`,
      `inst_simple ${bundle}/dumpsieve.mjs ${bundle}/dumpsieve.mjs`,
      ...chunks.map((f) => `inst_simple ${f} ${f}`),
      `inst_simple ${bundle}/dumpsieve ${bundle}/dumpsieve`,
      `inst_simple ${bundle}/VERSION ${bundle}/VERSION`,
      `ln_r ${bundle}/dumpsieve /usr/bin/dumpsieve`,
      'inst_multiple readlink dirname',
      `inst_simple ${bundle}/dumpsieve-collector ${bundle}/dumpsieve-collector`,
      `ln_r ${bundle}/dumpsieve-collector /usr/bin/dumpsieve-collector`,
    ]);
  });
});
