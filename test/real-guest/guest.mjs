/**
 * Boot one real guest under QEMU TCG, drive it, dump it, and write its
 * folder in the cache:
 *
 *   vmcore.elf          QEMU dump-guest-memory, ELF (paging off)
 *   vmcore.kdump-zlib   QEMU dump-guest-memory, kdump-zlib (makedumpfile's flattened format)
 *   early.elf           (earlyDump) ELF taken before the guest handed over its VMCOREINFO
 *   guest.kpageflags    the guest's own /proc/kpageflags, saved by the guest to its disk
 *   console.log         the serial console
 *   truth.json          what was booted and the guest's own truth (written last)
 *
 * A crash guest (description with `crash`) instead ends by panicking into
 * its capture kernel; its folder holds:
 *
 *   vmcore.elf          the reference: QEMU dump-guest-memory (ELF) just before the panic
 *   dumpsieve.kdump     what dumpsieve wrote from /proc/vmcore in the capture kernel
 *   makedumpfile.kdump  what makedumpfile wrote there (if it was a collector)
 *   NAME.log            each collector's standard output and error
 *   vmcore.head         the first 16 KiB of /proc/vmcore (ELF header, program headers)
 *   qemu-trace.log      (virtio-mem) QEMU's trace of the device's state requests
 *   guest.kpageflags, console.log (both kernels), truth.json (with `capture`)
 */
import { spawn } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Qmp } from './qmp.mjs';
import { guestInitramfs } from './initramfs.mjs';
import { KEXEC, captureInitramfs, makeDisk, readFromDisk, withLibraries } from './capture.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const PAGE = 4096;
export const BUSYBOX = '/bin/busybox';
/** Everything a guest does, boot to dump, must finish within this. */
const GUEST_TIMEOUT_MS = 20 * 60_000;

/** Bumped when the harness changes what a guest holds, so cached guests are rebuilt. */
export const HARNESS_VERSION = 6;

export function guestDir(cache, name) {
  return join(cache, 'guests', name);
}

function qemuArgs(g, kernel, files, qmpPath) {
  // Every level on the console, with timestamps: the kernel log the dump holds, line for line.
  const append = ['console=ttyS0', 'panic=-1', 'loglevel=8', 'printk.time=1'];
  if (g.vmem) append.push(`memhp_default_state=${g.vmem.online}`);
  if (g.crash) append.push(`crashkernel=${g.crash.crashkernelMiB}M`);
  if (g.append) append.push(g.append);
  const mem = g.vmem ? `${g.memoryMiB}M,maxmem=${g.memoryMiB + g.vmem.sizeMiB}M` : `${g.memoryMiB}M`;
  const args = [
    '-accel', 'tcg', '-machine', 'q35', '-cpu', g.cpu, '-smp', '1', '-m', mem,
    '-nodefaults', '-vga', 'std', '-display', 'none', '-no-reboot',
    '-kernel', kernel.vmlinuz, '-initrd', files.initramfs, '-append', append.join(' '),
    '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
    '-qmp', `unix:${qmpPath},server=on,wait=off`,
    '-device', 'vmcoreinfo',
    '-device', 'virtio-balloon-pci,id=balloon0',
    '-drive', `file=${files.disk},if=none,format=raw,id=kpf`, '-device', 'virtio-blk-pci,drive=kpf',
  ];
  if (g.crash) args.push('-drive', `file=${files.crashDisk},if=none,format=raw,id=crash`, '-device', 'virtio-blk-pci,drive=crash');
  // A crash guest's virtio-mem device logs the state requests of the capture kernel's pfn_is_ram
  // callback, with the host's time (trace backend "log", -msg timestamp=on: "PID@SEC.USEC:event ...").
  if (g.crash && g.vmem) args.push('-trace', 'virtio_mem_state_request', '-trace', 'virtio_mem_state_response', '-D', files.trace, '-msg', 'timestamp=on');
  if (g.vmem) {
    args.push('-object', `memory-backend-ram,id=vmem0,size=${g.vmem.sizeMiB}M`);
    args.push('-device', `virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=${g.vmem.plugMiB}M`);
  }
  return args;
}

/** Parse the guest's "@@DS" console lines into its truth. */
export function parseConsoleTruth(lines) {
  const t = { meminfo: {}, iomem: [], ksyms: {}, memblocks: [], kpf: { entries: 0, bits: {}, offline: [], words: {} } };
  for (const line of lines) {
    const f = line.split(/\s+/);
    if (f[0] === 'boot') t.release = f[1].replace(/^release=/, '');
    else if (f[0] === 'cmdline') t.cmdline = line.slice('cmdline '.length);
    else if (f[0] === 'thp') t.thp = line.slice(4);
    else if (f[0] === 'meminfo') t.meminfo[f[1].replace(/:$/, '')] = Number(f[2]) * (f[3] === 'kB' ? 1024 : 1);
    else if (f[0] === 'iomem') {
      // "  00100000-1ffdffff : System RAM" (nesting by indentation)
      const m = line.match(/^iomem( *)([0-9a-f]+)-([0-9a-f]+) : (.*)$/);
      if (m) t.iomem.push({ depth: (m[1].length - 1) / 2, start: parseInt(m[2], 16), end: parseInt(m[3], 16) + 1, name: m[4] });
    } else if (f[0] === 'ksym') t.ksyms[f[3]] = f[1];
    else if (f[0] === 'memblock' && f[1] === 'size') t.memblockBytes = Number(f[2]);
    else if (f[0] === 'memblock') t.memblocks.push({ id: Number(f[1]), state: f[2], zones: f[3] ?? '' });
    else if (f[0] === 'kpageflags') t.kpageflagsBytes = Number(f[1].replace(/^bytes=/, ''));
    else if (f[0] === 'kpf' && f[1] === 'entries') t.kpf.entries = Number(f[2]);
    else if (f[0] === 'kpf' && f[1] === 'bit') t.kpf.bits[f[2]] = Number(f[3]);
    else if (f[0] === 'kpf' && f[1] === 'offline') t.kpf.offline.push([Number(f[2]), Number(f[3])]);
    else if (f[0] === 'kpf' && f[1] === 'word') t.kpf.words[f[2]] = Number(f[3]);
    else if (f[0] === 'crash' && f[1] === 'loaded') t.crashLoadedBytes = Number(f[2].replace(/^size=/, ''));
  }
  return t;
}

/** key=value fields of a mark, as numbers where they are numbers. */
function fields(words) {
  const o = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) continue;
    const v = w.slice(eq + 1);
    o[w.slice(0, eq)] = v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return o;
}

/**
 * Parse the capture kernel's console: its "@@DS capture" lines
 * (capture-init.sh, hwm.mjs) and, between "log NAME begin" and "end", the
 * collector's output as printed.
 */
export function parseCaptureTruth(consoleLines) {
  const t = { meminfo: {}, runs: {}, logs: {}, errors: [] };
  let log;
  for (const raw of consoleLines) {
    const at = raw.indexOf('@@DS capture ');
    if (log && !/^@@DS capture log \S+ end$/.test(raw.slice(Math.max(at, 0)))) t.logs[log].push(raw);
    if (at < 0) continue;
    const line = raw.slice(at + 5);
    const f = line.split(/\s+/);
    if (f[1] === 'log') {
      if (f[3] === 'begin') {
        log = f[2];
        t.logs[log] = [];
      } else log = undefined;
      continue;
    }
    if (f[1] === 'boot') t.bootUptime = fields(f.slice(2)).uptime;
    else if (f[1] === 'end') t.endUptime = fields(f.slice(2)).uptime;
    else if (f[1] === 'cmdline') t.cmdline = line.slice('capture cmdline '.length);
    else if (f[1] === 'vmcore') t.vmcoreBytes = fields(f.slice(2)).bytes;
    else if (f[1] === 'meminfo') (t.meminfo[f[2]] ??= {})[f[3].replace(/:$/, '')] = Number(f[4]) * 1024;
    else if (f[1] === 'run') t.runs[f[2]] = { ...t.runs[f[2]], ...fields(f.slice(3)) };
    else if (f[1] === 'hwm') t.runs.dumpsieve = { ...t.runs.dumpsieve, self: fields(f.slice(2)) };
    else if (f[1] === 'error') t.errors.push(line.slice('capture error '.length));
    else if (f[1] === 'dmesg') (t.dmesg ??= []).push(line.slice('capture dmesg '.length));
  }
  return t;
}

/**
 * Build the guest's folder (replacing any old one). Returns its truth.
 * `log(msg)` reports progress.
 */
export async function buildGuest({ cache, guest: g, kernel, qemuVersion, log, bundle }) {
  const t0 = Date.now();
  const final = guestDir(cache, g.name);
  mkdirSync(dirname(final), { recursive: true });
  const dir = `${final}.partial`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const sock = mkdtempSync(join(tmpdir(), 'dumpsieve-qmp-'));
  const files = {
    initramfs: join(dir, 'initramfs.cpio'),
    disk: join(dir, 'kpageflags.disk'),
    crashDisk: join(dir, 'crash.disk'),
    trace: join(dir, 'qemu-trace.log'),
    console: join(dir, 'console.log'),
  };
  const init = readFileSync(g.init ?? join(HERE, 'init.sh'));
  const extra = { 'kpageflags.awk': readFileSync(join(HERE, 'kpageflags.awk')), ...(g.files ?? {}) };
  const env = {
    FILL_RANDOM_MB: g.fill.randomMiB,
    FILL_PATTERN_MB: g.fill.patternMiB,
    FILL_ZERO_MB: g.fill.zeroMiB,
    ANON_MB: g.fill.anonMiB,
    PROCESSES: g.fill.processes ?? 0,
    EARLY_DUMP: g.earlyDump ? 1 : 0,
    THP: g.thp ?? 'always',
  };
  let modules = kernel.modules;
  const entries = [];
  let capture;
  if (g.crash) {
    if (!bundle) throw new Error(`guest ${g.name}: a crash guest needs the bundle`);
    // The guest mounts the crash disk to load the capture kernel; the capture kernel writes its dumps there.
    modules = [...kernel.modules, ...kernel.fsModules];
    entries.push(...withLibraries(KEXEC, '/usr/sbin/kexec'));
    env.CRASH = 1;
    env.CRASH_APPEND = ['console=ttyS0', 'panic=-1', 'loglevel=4', ...g.crash.append].join(' ');
    // No qemu_fw_cfg (VMCOREINFO for QEMU's dumps) and no virtio_balloon (it would inflate inside the
    // reservation); virtio_mem stays: in a kdump kernel it only answers /proc/vmcore's pfn_is_ram.
    const captureModules = [...kernel.modules.filter((m) => m !== 'qemu_fw_cfg' && m !== 'virtio_balloon'), ...kernel.fsModules];
    const t = Date.now();
    const initrd = captureInitramfs({
      busybox: BUSYBOX,
      kernel,
      modules: captureModules,
      collectors: g.crash.collectors,
      args: g.crash.args,
      bundleDir: bundle.dir,
      onDisk: g.crash.collectorsOnDisk === true,
    });
    makeDisk(files.crashDisk, g.crash.diskMiB, { vmlinuz: readFileSync(kernel.vmlinuz), 'capture.cpio.zst': initrd.data, ...initrd.disk });
    capture = { key: bundle.key, initrdBytes: initrd.data.length, initrdRawBytes: initrd.raw, modules: captureModules, buildSeconds: (Date.now() - t) / 1000 };
  }
  writeFileSync(files.initramfs, guestInitramfs({ busybox: BUSYBOX, init, env, kernel, modules, extra, entries }));
  // The disk holds the kpageflags copy: 8 bytes per pfn up to the top of memory, with room to spare.
  const topBytes = (g.memoryMiB + (g.vmem ? 4096 + g.vmem.sizeMiB : 4096)) * MiB;
  const diskBytes = Math.ceil(((topBytes / PAGE) * 8) / MiB + 4) * MiB;
  const fd = openSync(files.disk, 'w');
  ftruncateSync(fd, diskBytes);
  closeSync(fd);

  const qmpPath = join(sock, 'qmp');
  const args = qemuArgs(g, kernel, files, qmpPath);
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const consoleOut = createWriteStream(files.console);
  let stderr = '';
  qemu.stderr.on('data', (d) => (stderr += d));
  const marks = [];
  const consoleLines = [];
  /** Host times (ms) of the capture's "start NAME" and "run NAME" marks, to place trace lines. */
  const markTimes = [];
  let waiters = [];
  let partial = '';
  let exited = null;
  // 'close', not 'exit': the console's last lines (a capture kernel's panic) may still be in the pipe at 'exit'.
  qemu.on('close', (code, signal) => {
    exited = { code, signal };
    for (const w of waiters) w.reject(new Error(`QEMU exited (${signal ?? code}) while waiting for "${w.what}": ${stderr.trim().split('\n').pop() ?? ''}`));
    waiters = [];
  });
  qemu.stdout.on('data', (d) => {
    consoleOut.write(d);
    partial += d.toString('latin1');
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl).replace(/\r$/, '');
      partial = partial.slice(nl + 1);
      if (g.crash) consoleLines.push(line);
      const at = line.indexOf('@@DS ');
      if (at < 0) continue;
      const mark = line.slice(at + 5);
      marks.push(mark);
      if (/^capture (start|run) /.test(mark)) markTimes.push([mark.split(' ').slice(0, 3).join(' '), Date.now()]);
      if (mark.startsWith('error')) {
        for (const w of waiters) w.reject(new Error(`guest ${g.name}: ${mark}`));
        waiters = [];
      }
      waiters = waiters.filter((w) => {
        if (mark !== w.what) return true;
        w.resolve();
        return false;
      });
    }
  });
  const waitMark = (what, timeoutMs) => {
    if (marks.includes(what)) return Promise.resolve();
    if (exited) return Promise.reject(new Error(`QEMU has exited; "${what}" never came`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`guest ${g.name}: no "${what}" within ${timeoutMs / 1000} s (see ${files.console})`)), timeoutMs);
      waiters.push({
        what,
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  };
  qemu.stdin.on('error', () => undefined);
  const go = (step) => qemu.stdin.write(`go ${step}\n`);
  const times = {};
  const lap = (() => {
    let last = Date.now();
    return (name) => {
      const now = Date.now();
      times[name] = (now - last) / 1000;
      last = now;
    };
  })();

  let qmp;
  const deadline = setTimeout(() => qemu.kill('SIGKILL'), GUEST_TIMEOUT_MS);
  try {
    qmp = await Qmp.connect(qmpPath);
    if (g.earlyDump) {
      await waitMark('wait early', 300_000);
      await qmp.execute('stop');
      await qmp.dump(join(dir, 'early.elf'));
      await qmp.execute('cont');
      go('early');
      lap('earlyDump');
    }
    await waitMark('filled', 600_000);
    lap('bootAndFill');
    log(`${g.name}: booted and filled in ${Math.round((Date.now() - t0) / 1000)} s`);

    // Balloon, then virtio-mem; wait until the guest has done both.
    const ramBytes = g.memoryMiB * MiB;
    const target = ramBytes - g.balloonMiB * MiB;
    await qmp.execute('balloon', { value: target });
    await qmp.until('the balloon to reach its target', async () => ((await qmp.execute('query-balloon')).actual === target ? true : undefined), 300_000, 500);
    if (g.vmem) {
      await qmp.execute('qom-set', { path: '/machine/peripheral/vm0', property: 'requested-size', value: g.vmem.shrinkToMiB * MiB });
      await qmp.until(
        'virtio-mem to reach its requested size',
        async () => ((await qmp.execute('qom-get', { path: '/machine/peripheral/vm0', property: 'size' })) === g.vmem.shrinkToMiB * MiB ? true : undefined),
        300_000,
        500,
      );
    }
    lap('balloon');
    await waitMark('wait filled', 60_000);
    go('filled');
    await waitMark('ready', 900_000);
    lap('guestTruth');

    const balloon = await qmp.execute('query-balloon');
    const memdevs = await qmp.execute('query-memory-devices');
    const vmemInfo = memdevs.find((d) => d.type === 'virtio-mem')?.data;
    await qmp.execute('stop');
    if (!g.crash || g.crash.reference !== false) {
      await qmp.dump(join(dir, 'vmcore.elf'));
      lap('dumpElf');
    }
    if (g.crash) {
      // Panic: the capture kernel boots, runs the collectors on /proc/vmcore and powers off.
      await qmp.execute('cont');
      await waitMark('wait crash', 60_000);
      go('crash');
      const tPanic = Date.now();
      await waitMark('capture done', g.crash.timeoutS * 1000).catch((err) => {
        throw new Error(`${err.message}; capture: ${JSON.stringify(parseCaptureTruth(consoleLines))}`);
      });
      capture.hostSeconds = (Date.now() - tPanic) / 1000;
      lap('capture');
      await new Promise((resolve) => (exited ? resolve() : qemu.once('close', resolve)));
    } else {
      await qmp.dump(join(dir, 'vmcore.kdump-zlib'), 'kdump-zlib');
      lap('dumpKdump');
      await qmp.execute('quit').catch(() => undefined);
      await new Promise((resolve) => (exited ? resolve() : qemu.once('close', resolve)));
    }

    const consoleTruth = parseConsoleTruth(marks);
    // The guest's own kpageflags: the first `kpageflagsBytes` of its disk.
    const n = consoleTruth.kpageflagsBytes;
    if (!(n > 0)) throw new Error(`guest ${g.name}: no kpageflags size on the console`);
    const kpf = Buffer.alloc(n);
    const dfd = openSync(files.disk, 'r');
    readSync(dfd, kpf, 0, n, 0);
    closeSync(dfd);
    writeFileSync(join(dir, 'guest.kpageflags'), kpf);
    rmSync(files.disk);
    rmSync(files.initramfs);
    if (g.crash) {
      Object.assign(capture, parseCaptureTruth(consoleLines));
      capture.markTimes = markTimes;
      capture.files = {};
      if (g.vmem) capture.files.trace = 'qemu-trace.log';
      for (const c of g.crash.collectors) {
        for (const [what, name] of [[c, `${c}.kdump`], [`${c}Log`, `${c}.log`]]) {
          if (readFromDisk(files.crashDisk, name, join(dir, name))) capture.files[what] = name;
        }
      }
      if (readFromDisk(files.crashDisk, 'vmcore.head', join(dir, 'vmcore.head'))) capture.files.vmcoreHead = 'vmcore.head';
      rmSync(files.crashDisk);
    }

    const truth = {
      name: g.name,
      harnessVersion: HARNESS_VERSION,
      description: g,
      kernel: { package: kernel.package, version: kernel.version, release: kernel.release, modules: kernel.modules, builtin: kernel.builtin },
      qemu: { version: qemuVersion, args: args.map((a) => a.replace(dir, '$GUEST')) },
      pageSize: PAGE,
      balloon: {
        targetBytes: target,
        actualBytes: balloon.actual,
        inflatedBytes: ramBytes - balloon.actual,
        inflatedPages: (ramBytes - balloon.actual) / PAGE,
      },
      vmem: vmemInfo
        ? {
            address: vmemInfo.memaddr,
            maxSize: vmemInfo['max-size'],
            blockSize: vmemInfo['block-size'],
            requestedSize: vmemInfo['requested-size'],
            pluggedSize: vmemInfo.size,
          }
        : undefined,
      guest: consoleTruth,
      capture,
      files: {
        elf: !g.crash || g.crash.reference !== false ? 'vmcore.elf' : undefined,
        kdumpZlib: g.crash ? undefined : 'vmcore.kdump-zlib',
        kpageflags: 'guest.kpageflags',
        console: 'console.log',
        early: g.earlyDump ? 'early.elf' : undefined,
      },
      seconds: { ...times, total: (Date.now() - t0) / 1000 },
    };
    writeFileSync(join(dir, 'truth.json'), JSON.stringify(truth, null, 1) + '\n');
    rmSync(final, { recursive: true, force: true });
    renameSync(dir, final);
    return truth;
  } catch (err) {
    qemu.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(deadline);
    qmp?.close();
    consoleOut.end();
    rmSync(sock, { recursive: true, force: true });
  }
}
