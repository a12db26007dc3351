/**
 * A real crash: a Debian kernel with `crashkernel=` panics (sysrq c) into
 * the same kernel loaded with `kexec -s -p`, whose initramfs holds node,
 * the self-contained bundle and makedumpfile; its init runs
 * `dumpsieve filter -l -d 31 --message-level 31 /proc/vmcore` through the
 * bundle's launcher, then makedumpfile with the same arguments, on the
 * capture kernel's own /proc/vmcore (ELF headers from kexec_file_load,
 * virtio-mem's pfn_is_ram callback) — see guest.mjs, capture.mjs and
 * capture-init.sh. QEMU dumped the guest (ELF) just before the panic.
 *
 * Here, on the host:
 * - the capture kernel's console shows dumpsieve's report, and both
 *   collectors finished;
 * - the crash is in the dump: libkdumpfile finds the crashed CPU's
 *   registers (PID 1, the shell that wrote to /proc/sysrq-trigger; RIP in
 *   the kernel's text), makedumpfile --dump-dmesg finds the panic;
 * - offline pages: the guest's own KPF_OFFLINE count (printed before the
 *   panic) is the balloon's size (QMP) plus virtio-mem's fake-offline
 *   sub-blocks, both collectors count exactly that many and keep none;
 *   the fake-offline ones lie inside /proc/vmcore's PT_LOADs (QEMU's dumps
 *   leave them out);
 * - while dumpsieve ran, the capture kernel's virtio_mem pfn_is_ram
 *   callback asked the device only about plugged blocks (QEMU's trace):
 *   dumpsieve read no page of the unplugged ones;
 * - dumpsieve keeps makedumpfile's pages (6.12: but for the page types
 *   makedumpfile 1.7.2 does not know), page for page;
 * - the kernel's text and read-only data, which nothing writes after boot,
 *   are page-identical to the reference dump (read by drgn and
 *   libkdumpfile, not by dumpsieve);
 * - the same filter run on the host over the reference dump keeps the
 *   same pfns within /proc/vmcore's PT_LOADs, but for pages whose
 *   struct page or contents changed between the reference and the panic:
 *   every one of them is shown to have changed, and they are few;
 * - dumpsieve's peak RSS in the capture kernel (VmHWM).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { filterDump } from '../../src/pipeline/filter.js';
import { readReasonsMap } from '../../src/pipeline/reasons-map.js';
import { REASON_NAMES, Reason } from '../../src/classify/reasons.js';
import { havePeers, readWithPeer } from '../interop/peers.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import {
  CRASH_GUESTS,
  PAGE,
  count,
  elfLoads,
  fakeOfflinePages,
  hexPfn,
  kernelMapping,
  kvRead,
  loadCrashGuest,
  loadMap,
  minus,
  nameDifferences,
  offlineMap,
  presentMap,
  runsOf,
  segmentsOf,
  vmcoreinfoLines,
  vmemStateRequests,
  type CrashGuest,
  type VmemStateRequest,
} from './real.js';

const ok = havePeers('real crashes read by drgn, libkdumpfile and makedumpfile', 'drgn', 'libkdumpfile', 'makedumpfile');

/**
 * At most this many pfns may be kept by one run and not the other (host on
 * the reference, capture on /proc/vmcore), each one shown to have changed:
 * between the reference dump and the panic the guest runs for well under a
 * second (QMP cont, one console line read, the write to sysrq-trigger,
 * panic), which frees and allocates a few slab, page-table and stack pages
 * and dirties a few free ones.
 */
const CHANGED_BOUND = 256;

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-real-crash-');
});
afterAll(() => dir?.remove());

/**
 * A number in an indented report row "  LABEL : N" (decimal with commas,
 * or makedumpfile's 0x hex); the last such row.
 */
function reportNumber(text: string, label: string): number {
  const all = [...text.matchAll(new RegExp(`^\\s+${label}\\s*:\\s*(0x[0-9a-f]+|[\\d,]+)`, 'gm'))];
  const m = all[all.length - 1];
  if (!m) throw new Error(`no "${label}" row in the report:\n${text}`);
  return m[1]!.startsWith('0x') ? parseInt(m[1]!, 16) : Number(m[1]!.replace(/,/g, ''));
}

/** The kernel's memmap base (struct page of pfn 0), through libkdumpfile: mem_section[0][0].section_mem_map (SPARSEMEM_EXTREME). */
function memmapBase(dump: string): bigint {
  const vi = vmcoreinfoLines(dump);
  const ms = BigInt(`0x${vi.get('SYMBOL(mem_section)')}`);
  const [root] = kvRead(dump, [[ms, 8]]);
  if (!root) throw new Error(`${dump}: mem_section unreadable`);
  const [sec] = kvRead(dump, [[root.readBigUInt64LE(0), 8]]);
  if (!sec) throw new Error(`${dump}: mem_section[0] unreadable`);
  // The low bits are SECTION_* flags; section 0 starts at pfn 0, so the rest is the memmap itself.
  return sec.readBigUInt64LE(0) & ~0xfffn;
}

interface Ctx {
  g: CrashGuest;
  n: number;
  report: string;
  /** Guest KPF_OFFLINE pfns. */
  offline: Uint8Array;
  /** Pfns inside /proc/vmcore's PT_LOADs, and inside QEMU's. */
  inVmcore: Uint8Array;
  inReference: Uint8Array;
  kept: Record<string, Uint8Array>;
}

describe.runIf(ok).each(CRASH_GUESTS.map((n) => [n]))('%s', (name) => {
  let c: Ctx;
  beforeAll(async () => {
    const g = loadCrashGuest(name);
    const offline = offlineMap(g.truth);
    const loads = elfLoads(readFileSync(g.vmcoreHead));
    const refSegs = await segmentsOf(g.elf);
    const top = Math.max(offline.length, ...loads.map((l) => Math.ceil((l.paddr + l.memSize) / PAGE)));
    const inVmcore = new Uint8Array(top);
    for (const l of loads) inVmcore.fill(1, Math.floor(l.paddr / PAGE), Math.ceil((l.paddr + l.memSize) / PAGE));
    const kept: Record<string, Uint8Array> = {};
    for (const [k, f] of Object.entries(g.outputs)) kept[k] = await presentMap(f, top);
    const off = new Uint8Array(top);
    off.set(offline);
    c = { g, n: top, report: (g.capture.logs.dumpsieve ?? []).join('\n'), offline: off, inVmcore, inReference: loadMap(refSegs, top), kept };
  });

  it("the capture kernel ran dumpsieve and makedumpfile on /proc/vmcore; its console shows dumpsieve's report", () => {
    const cap = c.g.capture;
    expect(cap.errors).toEqual([]);
    for (const coll of c.g.truth.description.crash!.collectors) {
      expect(cap.runs[coll]?.exit, `${coll}'s exit status`).toBe(0);
      expect(c.g.outputs[coll], `${coll}'s dump on the crash disk`).toBeDefined();
    }
    // What the capture kernel printed on its console is the report dumpsieve wrote to the disk.
    const onDisk = readFileSync(c.g.logs.dumpsieve!, 'latin1').replace(/\r/g, '').split('\n').filter(Boolean);
    expect(cap.logs.dumpsieve!.filter(Boolean)).toEqual(onDisk);
    expect(c.report).toMatch(/^\/proc\/vmcore \(elf, Linux /m);
    // Zero pages stay in the kdump bitmap (one shared zero page), as makedumpfile writes them.
    expect(reportNumber(c.report, 'Remaining pages') + reportNumber(c.report, 'Pages filled with zero')).toBe(count(c.kept.dumpsieve!));
    expect(readFileSync(c.g.console, 'latin1')).toContain(onDisk.find((l) => l.includes('Remaining pages')));
    // The capture kernel's memory is the reservation less what the kernel keeps for itself.
    expect(cap.meminfo.start!.MemTotal).toBeLessThan(c.g.truth.description.crash!.crashkernelMiB * 2 ** 20);
  });

  it('the crash is in the dump: the crashed CPU (libkdumpfile) and the panic in the kernel log (makedumpfile --dump-dmesg)', () => {
    const dump = c.g.outputs.dumpsieve!;
    const script = [
      'import json, sys, kdumpfile',
      'k = kdumpfile.kdumpfile(sys.argv[1])',
      'a = k.attr',
      'print(json.dumps({"cpus": a["cpu.number"], "pid": a["cpu.0.pid"], "rip": hex(a["cpu.0.reg.rip"]), "release": a["linux.uts.release"]}))',
    ].join('\n');
    const r = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, dump], { encoding: 'utf8' })) as { cpus: number; pid: number; rip: string; release: string };
    expect(r.release).toBe(c.g.truth.guest.release);
    expect(r.cpus).toBe(1);
    // PID 1 is the guest's init, the shell that wrote "c" to /proc/sysrq-trigger.
    expect(r.pid).toBe(1);
    const rip = BigInt(r.rip);
    const ks = c.g.truth.guest.ksyms;
    expect(rip >= BigInt(`0x${ks._text}`) && rip < BigInt(`0x${ks._etext}`), `RIP ${r.rip} in the kernel's text`).toBe(true);
    const log = dir.file(`${name}.dmesg`);
    execFileSync('makedumpfile', ['--dump-dmesg', dump, log], { stdio: 'ignore' });
    const text = readFileSync(log, 'latin1');
    expect(text).toContain('Kernel panic - not syncing: sysrq triggered crash');
    expect(text).toMatch(/sysrq_handle_crash/);
  });

  it("offline pages: the guest's KPF_OFFLINE count = the balloon (QMP) + virtio-mem's fake-offline sub-blocks; both collectors counted them and kept none", () => {
    const t = c.g.truth;
    const guestOffline = count(c.offline);
    expect(guestOffline).toBe(t.guest.kpf.bits['23']);
    expect(t.balloon.actualBytes, 'the balloon reached its target').toBe(t.balloon.targetBytes);
    const fake = fakeOfflinePages(t);
    expect(fake, 'sub-blocks unplugged inside online memory blocks').toBeGreaterThan(0);
    expect(guestOffline).toBe(t.balloon.inflatedPages + fake);
    // All of them lie inside /proc/vmcore's PT_LOADs; the fake-offline ones are not in QEMU's.
    expect(minus(c.offline, c.inVmcore).slice(0, 5).map(hexPfn)).toEqual([]);
    expect(count(c.offline.map((v, p) => v & (c.inReference[p] ? 0 : 1)))).toBe(fake);
    expect(reportNumber(c.report, 'Offline pages')).toBe(guestOffline);
    expect(reportNumber(readFileSync(c.g.logs.makedumpfile!, 'latin1'), 'Offline pages')).toBe(guestOffline);
    for (const [k, m] of Object.entries(c.kept)) {
      const keptOffline = runsOf(c.offline.map((v, p) => v & m[p]!));
      expect(keptOffline.slice(0, 3), `${k} kept offline pages`).toEqual([]);
    }
  });

  it("dumpsieve read no page of an unplugged virtio-mem block: the kernel's own pfn_is_ram requests, traced by QEMU", () => {
    const cap = c.g.capture;
    // virtio_mem came up in kdump mode (it registers the /proc/vmcore callback instead of plugging memory).
    expect((cap.dmesg ?? []).join('\n')).toMatch(/kdump/);
    const at = (what: string): number => {
      const m = cap.markTimes.find(([k]) => k === what);
      if (!m) throw new Error(`no "${what}" on the console`);
      return m[1];
    };
    const reqs = vmemStateRequests(join(c.g.dir, cap.files.trace!));
    const block = c.g.truth.vmem!.blockSize;
    const during = (name: string): VmemStateRequest[] => reqs.filter((r) => r.ms >= at(`capture start ${name}`) && r.ms <= at(`capture run ${name}`));
    const ds = during('dumpsieve');
    // Every read of /proc/vmcore inside the device asks for its block's state once per change of block
    // (virtio_mem_vmcore_pfn_is_ram caches the last one): dumpsieve read plugged memory there, and only that.
    expect(ds.length).toBeGreaterThan(0);
    for (const r of ds) expect(r.addr % block).toBe(0);
    const unplugged = ds.filter((r) => r.state !== 0);
    expect(unplugged.slice(0, 3).map((r) => `0x${r.addr.toString(16)} state ${r.state}`), `of ${ds.length} state requests`).toEqual([]);
    const mdf = during('makedumpfile');
    console.log(
      `${name}: virtio-mem state requests while dumpsieve ran: ${ds.length}, all plugged; while makedumpfile ran: ${mdf.length}, ` +
        `${mdf.filter((r) => r.state !== 0).length} not plugged (it mmaps /proc/vmcore, and the kernel asks about every page mapped)`,
    );
  });

  it("dumpsieve keeps makedumpfile's pages, page for page", () => {
    const ds = c.kept.dumpsieve!;
    const mdf = c.kept.makedumpfile!;
    const onlyMdf = minus(mdf, ds);
    const onlyDs = minus(ds, mdf);
    if (c.g.truth.kernel.release.startsWith('6.12')) {
      // makedumpfile 1.7.2 predates 6.12: it keeps THP tails and drops slab pages (makedumpfile.test.ts).
      const named = nameDifferences(c.g.outputs.makedumpfile!, onlyMdf, onlyDs);
      expect(named.unnamedMdf.slice(0, 5).map(hexPfn), 'kept by makedumpfile only, unexplained').toEqual([]);
      const m = kernelMapping(c.g.truth);
      expect(named.unnamedDs.filter((p) => p < m.start || p >= m.end).slice(0, 5).map(hexPfn), 'kept by dumpsieve only, unexplained').toEqual([]);
    } else {
      expect(onlyMdf.slice(0, 5).map(hexPfn), `kept by makedumpfile only (${onlyMdf.length})`).toEqual([]);
      expect(onlyDs.slice(0, 5).map(hexPfn), `kept by dumpsieve only (${onlyDs.length})`).toEqual([]);
    }
    // The pages both kept, as libkdumpfile reads them from each file.
    const both = ds.map((v, p) => v & mdf[p]!);
    const a = readWithPeer('libkdumpfile', c.g.outputs.dumpsieve!, runsOf(both));
    const b = readWithPeer('libkdumpfile', c.g.outputs.makedumpfile!, runsOf(both));
    const bad: string[] = [];
    for (const [p, v] of a.pages) {
      const w = b.pages.get(p);
      if (!v.ok || !w?.ok || v.sha1 !== w.sha1) bad.push(hexPfn(p));
    }
    expect(bad.slice(0, 5), `${bad.length} of ${a.pages.size} pages differ`).toEqual([]);
    expect(a.pages.size).toBe(count(both));
  });

  it("the kernel's text and read-only data equal the reference dump's, page for page (drgn and libkdumpfile)", () => {
    // "Kernel code" and "Kernel rodata" in the guest's /proc/iomem (_text
    // to _etext, __start_rodata to __end_rodata, ro_after_init included):
    // read-only once the kernel has booted (mark_rodata_ro), so the same
    // bytes in QEMU's dump and at the panic. Not the 2 MiB-alignment gaps
    // between them, which mark_rodata_ro gives back to the page allocator
    // (free_kernel_image_pages). The filled tmpfs is as stable, but -d 31
    // drops it (page cache).
    const ranges: Array<[number, number]> = ['Kernel code', 'Kernel rodata'].map((n) => {
      const r = c.g.truth.guest.iomem.find((x) => x.name === n);
      if (!r) throw new Error(`no "${n}" in the guest's /proc/iomem`);
      return [Math.floor(r.start / PAGE), Math.ceil(r.end / PAGE)];
    });
    const ref = readWithPeer('drgn', c.g.elf, ranges);
    const got = {
      libkdumpfile: readWithPeer('libkdumpfile', c.g.outputs.dumpsieve!, ranges),
      drgn: readWithPeer('drgn', c.g.outputs.dumpsieve!, ranges),
    };
    const total = ranges.reduce((a, [s, e]) => a + e - s, 0);
    for (const [reader, r] of Object.entries(got)) {
      const bad: string[] = [];
      let same = 0;
      for (const [start, end] of ranges) {
        for (let p = start; p < end; p++) {
          const want = ref.pages.get(p);
          const have = r.pages.get(p);
          if (!want?.ok) throw new Error(`the reference has no page ${hexPfn(p)}`);
          if (have?.ok && have.sha1 === want.sha1) same++;
          else bad.push(`${hexPfn(p)}: ${have?.ok ? 'differs' : have?.error}`);
        }
      }
      expect(bad.slice(0, 5), `${reader}: ${bad.length} of ${total} kernel pages`).toEqual([]);
      expect(same).toBe(total);
    }
    expect(total).toBeGreaterThan(4000);
  });

  it('the same filter on the host over the reference keeps the same pfns inside /proc/vmcore, but for pages that changed before the panic', async () => {
    const out = dir.file(`${name}.host.kdump`);
    const reasons = dir.file(`${name}.host.reasons`);
    await filterDump({ input: c.g.elf, output: out, dumpLevel: 31, codec: 'lzo', reasonsFile: reasons });
    const host = await presentMap(out, c.n);
    const hostReason = new Uint8Array(c.n);
    for await (const r of readReasonsMap(reasons)) hostReason.fill(r.reason, r.start, Math.min(r.end, c.n));
    const cap = c.kept.dumpsieve!;
    // The capture kernel cannot keep what /proc/vmcore does not hold (the
    // reservation itself, e820 areas other than System RAM).
    expect(minus(cap, c.inVmcore).slice(0, 5).map(hexPfn)).toEqual([]);
    const hostIn = host.map((v, p) => v & c.inVmcore[p]!);
    const onlyCapture = minus(cap, hostIn);
    const onlyHost = minus(hostIn, cap);
    const diff = [...onlyCapture, ...onlyHost];
    // Each differing pfn changed: its struct page (state: allocated, freed,
    // LRU, mapping) or its contents (zero at one moment, not at the other).
    // Read by libkdumpfile from the reference and from makedumpfile's dump
    // of /proc/vmcore.
    const mdfDump = c.g.outputs.makedumpfile!;
    const base = memmapBase(c.g.elf);
    expect(memmapBase(mdfDump)).toBe(base);
    const reads: Array<[bigint, number]> = diff.map((p) => [base + BigInt(p) * 64n, 64]);
    const before = kvRead(c.g.elf, reads);
    const after = kvRead(mdfDump, reads);
    const refPages = readWithPeer('drgn', c.g.elf, diff.map((p) => [p, p + 1]));
    const capPages = readWithPeer('libkdumpfile', c.g.outputs.dumpsieve!, onlyCapture.map((p) => [p, p + 1]));
    const unexplained: string[] = [];
    const why: Record<string, number> = {};
    diff.forEach((p, i) => {
      const a = before[i];
      const b = after[i];
      let changed: string | undefined;
      if (!a || !b) changed = undefined;
      else if (!a.equals(b)) changed = 'struct page';
      else {
        const r = refPages.pages.get(p);
        const k = capPages.pages.get(p);
        // Kept at the panic only, excluded as zero on the host: written since.
        if (cap[p] && hostReason[p] === Reason.ZERO && r?.ok && r.sha1 === ZERO_SHA1 && k?.ok && k.sha1 !== ZERO_SHA1) changed = 'zero, then written';
        // Kept on the host only, where the capture found zeros (-d 1 drops a zero page whatever its struct page says).
        else if (!cap[p] && hostReason[p] === Reason.KEPT && r?.ok && r.sha1 !== ZERO_SHA1) changed = 'contents (zero at the panic)';
      }
      if (changed) why[`${changed} (host: ${REASON_NAMES[hostReason[p]!]})`] = (why[`${changed} (host: ${REASON_NAMES[hostReason[p]!]})`] ?? 0) + 1;
      else unexplained.push(`${hexPfn(p)} (${cap[p] ? 'capture' : 'host'} only, host: ${REASON_NAMES[hostReason[p]!]})`);
    });
    // Of the pages both kept, how many changed contents between the two moments (stacks, slab, the
    // kernel log, per-CPU data...): a figure for the record, read by drgn and libkdumpfile.
    const both = cap.map((v, p) => v & hostIn[p]!);
    const refAll = readWithPeer('drgn', c.g.elf, runsOf(both));
    const capAll = readWithPeer('libkdumpfile', c.g.outputs.dumpsieve!, runsOf(both));
    let changedContents = 0;
    for (const [p, v] of capAll.pages) {
      const r = refAll.pages.get(p);
      expect(v.ok && r?.ok, hexPfn(p)).toBe(true);
      if (v.ok && r?.ok && v.sha1 !== r.sha1) changedContents++;
    }
    console.log(
      `${name}: kept ${count(cap)} at the panic, ${count(hostIn)} by the host in /proc/vmcore's range; ${onlyCapture.length} capture only, ` +
        `${onlyHost.length} host only: ${JSON.stringify(why)}; of the ${count(both)} kept by both, ${changedContents} changed contents`,
    );
    expect(diff.length).toBeLessThanOrEqual(CHANGED_BOUND);
    // Contents-only differences (zero at one moment, not the other) need no struct page change to explain;
    // whatever is left must have changed in some way the reads show.
    expect(unexplained.slice(0, 5), `${unexplained.length} differing pfns with the same struct page`).toEqual([]);
  });

  it('peak RSS in the capture kernel (VmHWM, measured there)', () => {
    const run = c.g.capture.runs.dumpsieve!;
    const self = run.self!;
    expect(self.VmHWM).toBeGreaterThan(0);
    // Two measurements of one figure: the process's own VmHWM in its exit
    // handler, and the init script's polling of /proc/PID/status every
    // 0.2 s (which also sees the last moments after the exit handler).
    expect(Math.abs(run.hwm - self.VmHWM!)).toBeLessThan(self.VmHWM! * 0.05);
    const peak = Math.max(run.hwm, self.VmHWM!);
    // The target for a capture kernel: at most 64 MiB at -l with no worker thread (nr_cpus=1).
    // Measured 61.0-63.0 MiB, about 21 MiB of it anonymous and 40 MiB node's own pages in the
    // initramfs (docs/kdump.md gives the figures and what they are made of).
    expect(peak).toBeLessThanOrEqual(64 * 1024);
    console.log(
      `${name}: dumpsieve in the capture kernel: ${run.seconds} s, VmHWM ${(peak / 1024).toFixed(1)} MiB ` +
        `(at exit: anon ${(self.RssAnon! / 1024).toFixed(1)} MiB, shmem ${(self.RssShmem! / 1024).toFixed(1)} MiB: node's own pages in the initramfs); ` +
        `makedumpfile ${c.g.capture.runs.makedumpfile?.seconds} s, VmHWM ${((c.g.capture.runs.makedumpfile?.hwm ?? 0) / 1024).toFixed(1)} MiB (polled)`,
    );
  });
});

const ZERO_SHA1 = '1ceaf73df40e531df3bfb26b4fb7cd95fb7bff1d';
