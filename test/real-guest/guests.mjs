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
 *   ci            built by the suite (false: only on request, e.g. the sample)
 */
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

export function guestByName(name) {
  const g = GUESTS.find((x) => x.name === name);
  if (!g) throw new Error(`unknown guest ${name}; known: ${GUESTS.map((x) => x.name).join(', ')}`);
  return g;
}
