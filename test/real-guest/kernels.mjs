/**
 * Debian kernels for the real-guest suite: fetched with `apt-get download`
 * through a private apt configuration in the cache directory (its own
 * sources list, lists and archive folders), so the machine's own apt state
 * is neither read nor changed: nothing can be upgraded or installed by it.
 * The package is unpacked with `dpkg-deb -x` into a temporary folder; the
 * kernel image, its config and the few modules the guests load (with their
 * `depends=` closure, decompressed from .ko.xz) are kept, the rest removed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/**
 * The kernels, by the name guests use. `pattern` selects the package names
 * (the newest version is taken when the kernel is first fetched).
 * - 5.10: bullseye (its security suite carries the current ABI);
 * - 6.1 and 6.12: bookworm-security.
 */
export const KERNELS = {
  '5.10': { pattern: /^linux-image-5\.10\.0-\d+-amd64$/ },
  '6.1': { pattern: /^linux-image-6\.1\.0-\d+-amd64$/ },
  '6.12': { pattern: /^linux-image-6\.12\.\d+\+deb12-amd64$/ },
};

const SOURCES = [
  `deb [signed-by=${KEYRING}] http://deb.debian.org/debian-security bookworm-security main`,
  `deb [signed-by=${KEYRING}] http://deb.debian.org/debian-security bullseye-security main`,
];

/** Modules every guest loads (those built into a kernel are skipped). */
export const WANTED_MODULES = ['qemu_fw_cfg', 'virtio_pci', 'virtio_balloon', 'virtio_mem', 'virtio_blk'];
/**
 * Modules a crash guest adds (`fsModules`, those WANTED_MODULES did not
 * bring): ext4 mounts the ext2 disk that holds the capture kernel and
 * receives the dumps (CONFIG_EXT4_USE_FOR_EXT2); it asks the crypto API
 * for crc32c at every mount (ext4_fill_super), a soft dependency
 * (MODULE_SOFTDEP) that `depends=` does not name: crc32c_generic.
 */
export const FS_MODULES = ['crc32c_generic', 'ext4'];

function aptOptions(aptDir) {
  return [
    '-o', `Dir::Etc::SourceList=${join(aptDir, 'sources.list')}`,
    '-o', `Dir::Etc::SourceParts=${join(aptDir, 'sources.list.d')}`,
    '-o', `Dir::Etc::PreferencesParts=${join(aptDir, 'preferences.d')}`,
    '-o', `Dir::Etc::Preferences=${join(aptDir, 'preferences')}`,
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::State::status=${join(aptDir, 'status')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    '-o', 'APT::Architectures::=amd64',
    '-o', 'Acquire::Languages=none',
    '-o', 'APT::Sandbox::User=root',
  ];
}

let aptReady = false;

function aptSetup(aptDir) {
  for (const d of ['sources.list.d', 'preferences.d', 'lists/partial', 'cache/archives/partial']) mkdirSync(join(aptDir, d), { recursive: true });
  writeFileSync(join(aptDir, 'sources.list'), SOURCES.join('\n') + '\n');
  writeFileSync(join(aptDir, 'preferences'), '');
  writeFileSync(join(aptDir, 'status'), '');
  if (!aptReady) {
    execFileSync('apt-get', [...aptOptions(aptDir), '-qq', 'update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    aptReady = true;
  }
}

/** Newest package name and version matching the kernel's pattern. */
function newest(aptDir, pattern) {
  const names = execFileSync('apt-cache', [...aptOptions(aptDir), 'pkgnames', 'linux-image-'], { encoding: 'utf8' })
    .split('\n')
    .filter((n) => pattern.test(n));
  if (names.length === 0) throw new Error(`no package matches ${pattern} in ${SOURCES.join(' | ')}`);
  const withVersion = names.map((name) => {
    const v = execFileSync('apt-cache', [...aptOptions(aptDir), 'show', '--no-all-versions', name], { encoding: 'utf8' }).match(/^Version: (.+)$/m);
    return { name, version: v ? v[1] : '' };
  });
  withVersion.sort((a, b) => (dpkgCompare(a.version, b.version) || a.name.localeCompare(b.name)));
  return withVersion[withVersion.length - 1];
}

/** { name, version } if the archive offers exactly this version of the package. */
function available(aptDir, name, version) {
  try {
    const text = execFileSync('apt-cache', [...aptOptions(aptDir), 'show', `${name}=${version}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /^Version: /m.test(text) ? { name, version } : undefined;
  } catch {
    return undefined;
  }
}

function dpkgCompare(a, b) {
  if (a === b) return 0;
  try {
    execFileSync('dpkg', ['--compare-versions', a, 'lt', b]);
    return -1;
  } catch {
    return 1;
  }
}

/** The .modinfo strings of a module: `depends=`, `name=`. */
function modinfo(data) {
  const text = data.toString('latin1');
  const get = (key) => {
    const m = text.match(new RegExp(`\\0${key}=([^\\0]*)\\0`));
    return m ? m[1] : '';
  };
  return { depends: get('depends').split(',').filter(Boolean) };
}

function walk(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

function readModule(path) {
  if (path.endsWith('.ko.xz')) return execFileSync('xz', ['-dc', path], { maxBuffer: 256 << 20 });
  if (path.endsWith('.ko.zst')) return execFileSync('zstd', ['-dc', path], { maxBuffer: 256 << 20 });
  return readFileSync(path);
}

const modName = (path) => basename(path).replace(/\.ko(\.xz|\.zst)?$/, '').replace(/-/g, '_');

/**
 * Make sure kernel `key` is in the cache; returns its description:
 * { key, package, version, release, dir, vmlinuz, modules: [names in load
 * order], fsModules: [crash guests' additions, in load order] }.
 */
export function ensureKernel(cache, key, log) {
  const spec = KERNELS[key];
  if (!spec) throw new Error(`unknown kernel ${key}`);
  const kernelsDir = join(cache, 'kernels');
  mkdirSync(kernelsDir, { recursive: true });
  const marker = join(kernelsDir, `${key}.json`);
  let old;
  if (existsSync(marker)) {
    const k = JSON.parse(readFileSync(marker, 'utf8'));
    if (existsSync(k.vmlinuz) && k.fsWanted === FS_MODULES.join(',')) return k;
    // Fetched before crash guests needed these file-system modules: fetch the same version again if the archive still has it.
    if (existsSync(k.vmlinuz)) old = k;
  }
  const aptDir = join(cache, 'apt');
  aptSetup(aptDir);
  const pkg = (old && available(aptDir, old.package, old.version)) || newest(aptDir, spec.pattern);
  const dir = join(kernelsDir, `${pkg.name}_${pkg.version}`);
  const tmp = mkdtempSync(join(kernelsDir, 'unpack-'));
  try {
    log(`fetching ${pkg.name} ${pkg.version}`);
    execFileSync('apt-get', [...aptOptions(aptDir), '-qq', 'download', `${pkg.name}=${pkg.version}`], { cwd: tmp, stdio: ['ignore', 'ignore', 'inherit'] });
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg.name} produced no .deb`);
    const root = join(tmp, 'root');
    execFileSync('dpkg-deb', ['-x', join(tmp, deb), root]);
    const vmlinuz = readdirSync(join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${deb} holds no /boot/vmlinuz-*`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    const modRoot = join(root, 'lib', 'modules', release);
    const builtin = new Set(
      readFileSync(join(modRoot, 'modules.builtin'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(modName),
    );
    const files = new Map(walk(join(modRoot, 'kernel')).filter((p) => /\.ko(\.xz|\.zst)?$/.test(p)).map((p) => [modName(p), p]));
    // Dependency closure, dependencies first.
    const seen = new Set();
    const visit = (name, from, order) => {
      if (seen.has(name) || builtin.has(name)) return;
      seen.add(name);
      const path = files.get(name);
      if (!path) throw new Error(`${release}: module ${name}${from ? ` (needed by ${from})` : ''} is neither built in nor in the package`);
      const data = readModule(path);
      for (const d of modinfo(data).depends) visit(d, name, order);
      order.push({ name, data });
    };
    const order = [];
    for (const m of WANTED_MODULES) visit(m, undefined, order);
    const fsOrder = [];
    for (const m of FS_MODULES) visit(m, undefined, fsOrder);
    // An older marker of the same package (without fsModules): add the files, keep the folder
    // (guests being built from it may be reading it).
    if (!old || old.dir !== dir) rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'modules'), { recursive: true });
    copyFileSync(join(root, 'boot', vmlinuz), join(dir, 'vmlinuz'));
    copyFileSync(join(root, 'boot', `config-${release}`), join(dir, 'config'));
    for (const m of [...order, ...fsOrder]) writeFileSync(join(dir, 'modules', `${m.name}.ko`), m.data);
    const k = {
      key,
      package: pkg.name,
      version: pkg.version,
      release,
      dir,
      vmlinuz: join(dir, 'vmlinuz'),
      modules: order.map((m) => m.name),
      fsModules: fsOrder.map((m) => m.name),
      fsWanted: FS_MODULES.join(','),
      builtin: [...WANTED_MODULES, ...FS_MODULES].filter((m) => builtin.has(m)),
      debBytes: statSync(join(tmp, deb)).size,
    };
    writeFileSync(marker, JSON.stringify(k, null, 2) + '\n');
    return k;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
