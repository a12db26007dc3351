/**
 * The real guests: what each boots and what is done to it before the dump.
 *
 *   name          the folder in the cache (guests/NAME)
 *   kernel        a key of KERNELS (kernels.mjs)
 *   cpu           QEMU -cpu: 'max' gives LA57 (5-level paging, which
 *                 Debian's 6.x kernels turn on); 'max,la57=off' 4-level.
 *                 Debian's 5.10 is built without CONFIG_X86_5LEVEL.
 *   memoryMiB     boot RAM
 *   balloonMiB    how much the virtio-balloon takes (target = RAM - this)
 *   vmem          a virtio-mem device: sizeMiB (its memory backend),
 *                 plugMiB (requested at boot), shrinkToMiB (requested after
 *                 the fill), online (memhp_default_state)
 *   fill          MiB of page cache (random, patterned, zero) and of
 *                 anonymous memory; processes to start
 *   earlyDump     also dump before qemu_fw_cfg is loaded (no VMCOREINFO)
 *   thp           transparent_hugepage/enabled to set (default 'always')
 *   init, files   the init script and extra initramfs files (default:
 *                 init.sh and kpageflags.awk); a guest with its own story
 *                 (e.g. a crash kernel loaded with kexec) brings its own
 *   append        extra kernel command line
 *   crash         a crash guest: instead of stopping for QEMU's dumps it
 *                 panics into a capture kernel loaded with kexec -p, which
 *                 runs the collectors on /proc/vmcore (capture.mjs,
 *                 capture-init.sh):
 *                   crashkernelMiB  the reservation (crashkernel=)
 *                   collectors      'dumpsieve' and/or 'makedumpfile', run in this order
 *                   args            their command line (before /proc/vmcore OUT)
 *                   append          the capture kernel's command line (after
 *                                   console=ttyS0 panic=-1 loglevel=4)
 *                   reference       take QEMU's ELF dump just before the panic (default true)
 *                   collectorsOnDisk  the collectors (node and the bundle, makedumpfile) on
 *                                   the crash disk instead of in the initramfs, as when
 *                                   kdump-tools runs them from the root file system
 *                   diskMiB         the crash disk (ext2; kernel, initramfs, dumps)
 *                   timeoutS        panic to "capture done", at most
 *   ci            built by the suite (false: only on request, e.g. the sample)
 */

/** The collectors' command line in a crash guest: makedumpfile's, as kdump-tools passes it. */
export const CRASH_ARGS = ['-l', '-d', '31', '--message-level', '31'];
/** Debian kdump-tools' KDUMP_CMDLINE_APPEND, less its systemd unit. */
export const CAPTURE_APPEND = ['nr_cpus=1', 'reset_devices', 'irqpoll', 'nousb'];

/** A crash guest (the two below differ only in kernel and paging). */
function crashGuest(name, kernel, cpu) {
  return {
    name,
    kernel,
    cpu,
    memoryMiB: 768,
    balloonMiB: 128,
    vmem: { sizeMiB: 512, plugMiB: 512, shrinkToMiB: 320, online: 'online_kernel' },
    fill: { randomMiB: 64, patternMiB: 64, zeroMiB: 8, anonMiB: 48, processes: 32 },
    append: 'nokaslr',
    crash: { crashkernelMiB: 448, collectors: ['dumpsieve', 'makedumpfile'], args: CRASH_ARGS, append: CAPTURE_APPEND, diskMiB: 512, timeoutS: 900 },
    ci: true,
  };
}

export const GUESTS = [
  {
    name: '5.10-balloon',
    kernel: '5.10',
    cpu: 'max',
    memoryMiB: 512,
    balloonMiB: 192,
    fill: { randomMiB: 48, patternMiB: 32, zeroMiB: 8, anonMiB: 32, processes: 16 },
    ci: true,
  },
  {
    name: '6.1-balloon-l5',
    kernel: '6.1',
    cpu: 'max',
    memoryMiB: 512,
    balloonMiB: 160,
    fill: { randomMiB: 48, patternMiB: 32, zeroMiB: 8, anonMiB: 32, processes: 16 },
    earlyDump: true,
    ci: true,
  },
  {
    name: '6.1-vmem-l4',
    kernel: '6.1',
    cpu: 'max,la57=off',
    memoryMiB: 512,
    balloonMiB: 128,
    vmem: { sizeMiB: 512, plugMiB: 512, shrinkToMiB: 256, online: 'online_movable' },
    fill: { randomMiB: 48, patternMiB: 32, zeroMiB: 8, anonMiB: 32, processes: 16 },
    ci: true,
  },
  {
    name: '6.12-balloon-l4',
    kernel: '6.12',
    cpu: 'max,la57=off',
    memoryMiB: 512,
    balloonMiB: 192,
    fill: { randomMiB: 48, patternMiB: 32, zeroMiB: 8, anonMiB: 48, processes: 16 },
    ci: true,
  },
  {
    // Memory onlined to the kernel zone and used before the shrink: blocks
    // cannot be offlined whole, so virtio-mem unplugs sub-blocks inside
    // online blocks and marks them PG_offline ("fake offline").
    name: '6.12-vmem-fake-offline-l5',
    kernel: '6.12',
    cpu: 'max',
    memoryMiB: 512,
    balloonMiB: 96,
    vmem: { sizeMiB: 512, plugMiB: 512, shrinkToMiB: 320, online: 'online_kernel' },
    fill: { randomMiB: 96, patternMiB: 96, zeroMiB: 8, anonMiB: 64, processes: 64 },
    ci: true,
  },
  {
    // A real crash: balloon and fake-offline virtio-mem sub-blocks (in the
    // kernel zone, filled first), whose pages lie inside /proc/vmcore's
    // PT_LOADs (QEMU's own dumps leave them out). dumpsieve, then
    // makedumpfile, on /proc/vmcore in the capture kernel. crashkernel=:
    // 64 MiB above the smallest that works with node in the initramfs
    // (384M on 6.1, 368M on 6.12: crash-bisect.mjs, docs/kdump.md).
    // nokaslr: with the kernel image at a random physical address, 768 MiB
    // of RAM may hold no free 448 MiB run ("cannot allocate crashkernel",
    // one boot of eight here); at its fixed 16 MiB it always does.
    ...crashGuest('6.1-crash-l5', '6.1', 'max'),
  },
  {
    // The same on 6.12 with 4-level paging (kexec_file_load and crash hotplug, CONFIG_CRASH_HOTPLUG), nokaslr too.
    ...crashGuest('6.12-crash-l4', '6.12', 'max,la57=off'),
  },
  {
    // The shipped sample (samples/): small enough that -d 31 -l is a few MiB.
    name: 'sample-6.1-256m',
    kernel: '6.1',
    cpu: 'max',
    memoryMiB: 256,
    balloonMiB: 64,
    fill: { randomMiB: 8, patternMiB: 16, zeroMiB: 4, anonMiB: 8, processes: 4 },
    ci: false,
  },
];

/**
 * Guests with `ci` that the suite leaves out unless asked for (see
 * suiteGuests): each costs minutes of TCG time, and one crash guest
 * already proves the capture path in CI.
 */
export const ON_REQUEST = [];

/**
 * The guests the suite builds (build.mjs without names) and tests (real.ts):
 * DUMPSIEVE_REAL_GUESTS unset, those with `ci` but ON_REQUEST; `all`, every
 * one with `ci`; else a comma-separated list of names (e.g. one crash guest,
 * with only kdump-crash.test.ts: the other test files need their guests).
 */
export function suiteGuests(selection = process.env.DUMPSIEVE_REAL_GUESTS) {
  const v = (selection ?? '').trim();
  if (v === 'all') return GUESTS.filter((g) => g.ci);
  if (v) return v.split(',').map((n) => guestByName(n.trim()));
  return GUESTS.filter((g) => g.ci && !ON_REQUEST.includes(g.name));
}

export function guestByName(name) {
  const g = GUESTS.find((x) => x.name === name);
  if (!g) throw new Error(`unknown guest ${name}; known: ${GUESTS.map((x) => x.name).join(', ')}`);
  return g;
}
