/**
 * The real guests as tests see them: each guest's folder in the cache
 * (dumps written by QEMU, the guest's own kpageflags, truth.json), and
 * helpers that derive expectations from the guest's truth or from the peer
 * tools — never from dumpsieve itself.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, openSync, readFileSync, readSync, writeSync, closeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDump } from '../../src/formats/registry.js';
import { PfnState, type SegmentInfo } from '../../src/formats/types.js';
import type { CountingSource } from '../../src/io/source.js';
import { suiteGuests, type GuestDescription } from './guests.mjs';
import { PYTHON } from '../interop/peers.js';
import { parseVmcoreinfo } from '../synth/helpers.js';

export const PAGE = 4096;

export function cacheDir(): string {
  return process.env.DUMPSIEVE_REAL_GUEST_CACHE || join(homedir(), '.cache', 'dumpsieve', 'real-guest');
}

export interface IomemRange {
  depth: number;
  start: number;
  end: number;
  name: string;
}

export interface Truth {
  name: string;
  description: GuestDescription;
  kernel: { package: string; version: string; release: string; modules: string[] };
  qemu: { version: string; args: string[] };
  balloon: { targetBytes: number; actualBytes: number; inflatedBytes: number; inflatedPages: number };
  vmem?: { address: number; maxSize: number; blockSize: number; requestedSize: number; pluggedSize: number };
  guest: {
    release: string;
    cmdline: string;
    thp: string;
    meminfo: Record<string, number>;
    iomem: IomemRange[];
    /** Virtual addresses (hex) of _text, _etext, _sdata, _edata, __init_begin, __init_end, __bss_start, __bss_stop, _end. */
    ksyms: Record<string, string>;
    memblockBytes: number;
    memblocks: Array<{ id: number; state: string; zones: string }>;
    kpageflagsBytes: number;
    kpf: { entries: number; bits: Record<string, number>; offline: Array<[number, number]>; words: Record<string, number> };
  };
  /** A crash guest has no kdumpZlib (and no elf when it was built without its reference dump). */
  files: { elf: string; kdumpZlib?: string; kpageflags: string; console: string; early?: string };
  seconds: Record<string, number>;
}

export interface Guest {
  name: string;
  dir: string;
  truth: Truth;
  elf: string;
  kdumpZlib: string;
  kpageflags: string;
  early?: string | undefined;
}

/** The suite's guests dumped by QEMU (suiteGuests: those built for CI, or DUMPSIEVE_REAL_GUESTS), crash guests aside. */
export const CI_GUESTS: readonly string[] = suiteGuests().filter((g) => !g.crash).map((g) => g.name);
/** The suite's crash guests (kdump-crash.test.ts). */
export const CRASH_GUESTS: readonly string[] = suiteGuests().filter((g) => g.crash).map((g) => g.name);

export function loadGuest(name: string): Guest {
  const dir = join(cacheDir(), 'guests', name);
  const p = join(dir, 'truth.json');
  if (!existsSync(p)) throw new Error(`real guest ${name} is not in the cache (${dir}); run node test/real-guest/build.mjs ${name}`);
  const truth = JSON.parse(readFileSync(p, 'utf8')) as Truth;
  return {
    name,
    dir,
    truth,
    elf: join(dir, truth.files.elf),
    kdumpZlib: truth.files.kdumpZlib ? join(dir, truth.files.kdumpZlib) : '',
    kpageflags: join(dir, truth.files.kpageflags),
    early: truth.files.early ? join(dir, truth.files.early) : undefined,
  };
}

/** KPF_* bit numbers (include/uapi/linux/kernel-page-flags.h). */
export const KPF = { LRU: 5, SLAB: 7, BUDDY: 10, ANON: 12, COMPOUND_HEAD: 15, COMPOUND_TAIL: 16, NOPAGE: 20, THP: 22, OFFLINE: 23 } as const;

/** The guest's KPF_OFFLINE pfns, one byte per pfn of its kpageflags table. */
export function offlineMap(t: Truth): Uint8Array {
  const m = new Uint8Array(t.guest.kpf.entries);
  for (const [s, n] of t.guest.kpf.offline) m.fill(1, s, s + n);
  return m;
}

/** The guest's own kpageflags words (from its disk copy), low 32 bits. */
export function kpfWords(g: Guest): Uint32Array {
  const b = readFileSync(g.kpageflags);
  const out = new Uint32Array(b.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(i * 8);
  return out;
}

/**
 * Physical pfns [start, end) of the kernel-text mapping, from the guest's
 * own view: "Kernel code" in /proc/iomem is the physical _text; _end (from
 * /proc/kallsyms) is the end of the image (bss and brk included); the
 * kernel maps [_text, roundup(_end, 2 MiB)) with 2 MiB pages
 * (arch/x86/mm/init_64.c cleanup_highmap).
 */
export function kernelMapping(t: Truth): { start: number; end: number } {
  const code = t.guest.iomem.find((r) => r.name === 'Kernel code');
  const text = t.guest.ksyms._text;
  const end = t.guest.ksyms._end;
  if (!code || !text || !end) throw new Error(`${t.name}: no Kernel code in /proc/iomem or no _text/_end in /proc/kallsyms`);
  const endPhys = code.start + Number(BigInt(`0x${end}`) - BigInt(`0x${text}`));
  const PMD = 2 << 20;
  return { start: Math.floor(code.start / PAGE), end: Math.ceil(endPhys / PMD) * (PMD / PAGE) };
}

/** Pages the virtio-mem driver unplugged inside online memory blocks ("fake offline"). */
export function fakeOfflinePages(t: Truth): number {
  if (!t.vmem) return 0;
  const first = t.vmem.address / t.guest.memblockBytes;
  const last = (t.vmem.address + t.vmem.maxSize) / t.guest.memblockBytes;
  const online = t.guest.memblocks.filter((b) => b.id >= first && b.id < last && b.state === 'online').length;
  return (online * t.guest.memblockBytes - t.vmem.pluggedSize) / PAGE;
}

/** PT_LOAD segments of a dump (by dumpsieve's reader; QEMU's ELF header is plain). */
export async function segmentsOf(path: string): Promise<SegmentInfo[]> {
  const r = await openDump(path);
  try {
    return [...(r.info.segments ?? [])];
  } finally {
    await r.close();
  }
}

/** One byte per pfn: 1 where a PT_LOAD covers the page. */
export function loadMap(segs: readonly SegmentInfo[], maxPfn: number): Uint8Array {
  const m = new Uint8Array(maxPfn);
  for (const s of segs) m.fill(1, Math.floor(s.paddr / PAGE), Math.min(maxPfn, Math.ceil((s.paddr + s.fileSize) / PAGE)));
  return m;
}

/**
 * Pfns whose bytes a counting source saw read: every recorded read is
 * mapped through the ELF segments to the pages it touched.
 */
export function touchedPfns(counter: CountingSource, segs: readonly SegmentInfo[], maxPfn: number): Uint8Array {
  const m = new Uint8Array(maxPfn);
  for (const [s, e] of counter.ranges) {
    for (const seg of segs) {
      const a = Math.max(s, seg.fileOffset);
      const b = Math.min(e, seg.fileOffset + seg.fileSize);
      if (a >= b) continue;
      const p0 = Math.floor((seg.paddr + (a - seg.fileOffset)) / PAGE);
      const p1 = Math.ceil((seg.paddr + (b - seg.fileOffset)) / PAGE);
      m.fill(1, p0, Math.min(p1, maxPfn));
    }
  }
  return m;
}

/** Pfns with data in a dump (one byte per pfn), by dumpsieve's readers. */
export async function presentMap(path: string, maxPfn?: number): Promise<Uint8Array> {
  const r = await openDump(path);
  try {
    const n = maxPfn ?? r.info.maxPfn;
    const out = new Uint8Array(n);
    const st = new Uint8Array(32768);
    for (let w = 0; w < Math.min(n, r.info.maxPfn); w += st.length) {
      const k = Math.min(st.length, r.info.maxPfn - w, n - w);
      await r.pfnStates(w, k, st);
      for (let i = 0; i < k; i++) out[w + i] = st[i] === PfnState.PRESENT ? 1 : 0;
    }
    return out;
  } finally {
    await r.close();
  }
}

/**
 * A copy of QEMU's ELF dump that makedumpfile 1.7.2 can open: it reads
 * program headers right after the ELF header whatever e_phoff says
 * (get_elf64_phdr), while QEMU puts its two section headers first. The
 * program headers are moved to offset 64 (over the section headers, which
 * are dropped); the data stays where it is.
 */
export function normalizedCopy(elf: string, to: string): string {
  copyFileSync(elf, to);
  const fd = openSync(to, 'r+');
  try {
    const eh = Buffer.alloc(64);
    readSync(fd, eh, 0, 64, 0);
    const phoff = Number(eh.readBigUInt64LE(32));
    const phnum = eh.readUInt16LE(56);
    const ph = Buffer.alloc(phnum * 56);
    readSync(fd, ph, 0, ph.length, phoff);
    let firstData = Infinity;
    for (let i = 0; i < phnum; i++) firstData = Math.min(firstData, Number(ph.readBigUInt64LE(i * 56 + 8)));
    if (64 + ph.length > firstData) throw new Error(`${elf}: no room for the program headers after the ELF header`);
    eh.writeBigUInt64LE(64n, 32); // e_phoff
    eh.writeBigUInt64LE(0n, 40); // e_shoff
    eh.writeUInt16LE(64, 52); // e_ehsize
    eh.writeUInt16LE(64, 58); // e_shentsize
    eh.writeUInt16LE(0, 60); // e_shnum
    eh.writeUInt16LE(0, 62); // e_shstrndx
    writeSync(fd, eh, 0, 64, 0);
    writeSync(fd, ph, 0, ph.length, 64);
  } finally {
    closeSync(fd);
  }
  return to;
}

export interface MakedumpfileReport {
  zero: number;
  cache: number;
  cachePrivate: number;
  user: number;
  free: number;
  hwpoison: number;
  offline: number;
  excluded: number;
  remaining: number;
  original: number;
  stderr: string;
}

/** Run makedumpfile with its report (--message-level 22: common, error, report) and parse the report. */
export function makedumpfile(args: string[]): MakedumpfileReport {
  const r = spawnSync('makedumpfile', ['-f', '--message-level', '22', ...args], { encoding: 'utf8' });
  const text = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0) throw new Error(`makedumpfile ${args.join(' ')} failed (${r.status}): ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const num = (label: string): number => {
    const m = text.match(new RegExp(`${label.replace(/[()]/g, '\\$&')}\\s*:\\s*0x([0-9a-f]+)`));
    if (!m) throw new Error(`makedumpfile report has no "${label}": ${text}`);
    return parseInt(m[1]!, 16);
  };
  return {
    zero: num('Pages filled with zero'),
    cache: num('Non-private cache pages'),
    cachePrivate: num('Private cache pages'),
    user: num('User process data pages'),
    free: num('Free pages'),
    hwpoison: num('Hwpoison pages'),
    offline: num('Offline pages'),
    excluded: num('Excluded pages'),
    remaining: num('Remaining pages'),
    original: num('Original pages'),
    stderr: text,
  };
}

/** Pfns set in `a` and not in `b`. */
export function minus(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < a.length; p++) if (a[p] && !b[p]) out.push(p);
  return out;
}

export function count(m: Uint8Array): number {
  let n = 0;
  for (const v of m) n += v;
  return n;
}

/** Runs [start, end) of set bytes. */
export function runsOf(m: Uint8Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let p = 0; p < m.length; ) {
    if (!m[p]) {
      p++;
      continue;
    }
    let q = p + 1;
    while (q < m.length && m[q]) q++;
    out.push([p, q]);
    p = q;
  }
  return out;
}

export const hexPfn = (p: number): string => `0x${p.toString(16)}`;

const KVREAD_PY = join(dirname(fileURLToPath(import.meta.url)), 'kvread.py');

/** Read kernel virtual memory with libkdumpfile (its own page-table walk). Unreadable reads come back undefined. */
export function kvRead(dump: string, reads: Array<[bigint, number]>): Array<Buffer | undefined> {
  const input = JSON.stringify({ dump, reads: reads.map(([v, n]) => [v.toString(16), n]) });
  const r = spawnSync(PYTHON, [KVREAD_PY], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`kvread.py failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { data: Array<string | null> }).data.map((h) => (h === null ? undefined : Buffer.from(h, 'hex')));
}

/** A VMCOREINFO value from the dump's note, by libkdumpfile (linux.vmcoreinfo.lines). */
export function vmcoreinfoLines(dump: string): Map<string, string> {
  const script = [
    'import json, sys, kdumpfile',
    'k = kdumpfile.kdumpfile(sys.argv[1])',
    'print(json.dumps(bytes(k.attr["linux.vmcoreinfo.raw"]).decode("latin1")))',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', script, dump], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`reading VMCOREINFO with libkdumpfile failed: ${r.stderr}`);
  return parseVmcoreinfo(JSON.parse(r.stdout) as string);
}

/** What the capture kernel of a crash guest reported (guest.mjs parseCaptureTruth, plus the build's own figures). */
export interface Capture {
  key: string;
  initrdBytes: number;
  initrdRawBytes: number;
  modules: string[];
  hostSeconds: number;
  bootUptime: number;
  endUptime: number;
  cmdline: string;
  vmcoreBytes: number;
  meminfo: Record<string, Record<string, number>>;
  runs: Record<string, { exit: number; seconds: number; hwm: number; samples: number; self?: Record<string, number> }>;
  logs: Record<string, string[]>;
  errors: string[];
  files: Record<string, string>;
  /** The virtio_mem driver's kernel messages in the capture kernel. */
  dmesg?: string[];
  /** Host times (ms since the epoch) of the capture's "capture start NAME" and "capture run NAME" lines. */
  markTimes: Array<[string, number]>;
}

export interface VmemStateRequest {
  /** Host time, ms since the epoch. */
  ms: number;
  addr: number;
  blocks: number;
  /** VIRTIO_MEM_STATE_PLUGGED 0, UNPLUGGED 1, MIXED 2 (include/uapi/linux/virtio_mem.h). */
  state: number;
}

/**
 * The virtio-mem device's state requests and their answers from QEMU's
 * trace log (-trace virtio_mem_state_request/_response, -msg
 * timestamp=on; QEMU 7.2 hw/virtio/trace-events): "PID@SEC.USEC:event args".
 */
export function vmemStateRequests(trace: string): VmemStateRequest[] {
  const out: VmemStateRequest[] = [];
  let pending: Omit<VmemStateRequest, 'state'> | undefined;
  for (const line of readFileSync(trace, 'latin1').split('\n')) {
    const m = /^\d+@(\d+)\.(\d+):(virtio_mem_state_request|virtio_mem_state_response) (.*)$/.exec(line);
    if (!m) continue;
    const ms = Number(m[1]) * 1000 + Number(m[2]) / 1000;
    if (m[3] === 'virtio_mem_state_request') {
      const a = /addr=0x([0-9a-f]+) nb_blocks=(\d+)/.exec(m[4]!);
      if (!a) throw new Error(`${trace}: unexpected request line: ${line}`);
      pending = { ms, addr: parseInt(a[1]!, 16), blocks: Number(a[2]) };
    } else {
      const st = /state=(\d+)/.exec(m[4]!);
      if (!pending || !st) throw new Error(`${trace}: a response without its request: ${line}`);
      out.push({ ...pending, state: Number(st[1]) });
      pending = undefined;
    }
  }
  return out;
}

export interface CrashGuest extends Guest {
  capture: Capture;
  /** The capture kernel's outputs, by collector. */
  outputs: Record<string, string>;
  logs: Record<string, string>;
  vmcoreHead: string;
  console: string;
}

export function loadCrashGuest(name: string): CrashGuest {
  const g = loadGuest(name);
  const capture = (g.truth as Truth & { capture?: Capture }).capture;
  if (!capture) throw new Error(`${name} is not a crash guest`);
  const outputs: Record<string, string> = {};
  const logs: Record<string, string> = {};
  for (const c of g.truth.description.crash!.collectors) {
    if (capture.files[c]) outputs[c] = join(g.dir, capture.files[c]!);
    if (capture.files[`${c}Log`]) logs[c] = join(g.dir, capture.files[`${c}Log`]!);
  }
  return { ...g, capture, outputs, logs, vmcoreHead: join(g.dir, capture.files.vmcoreHead ?? 'vmcore.head'), console: join(g.dir, g.truth.files.console) };
}

export interface ElfLoad {
  paddr: number;
  vaddr: bigint;
  fileSize: number;
  memSize: number;
}

/**
 * PT_LOADs of an ELF core file from its first bytes (the capture kernel
 * saves the head of /proc/vmcore): ELF64 little-endian, program headers
 * at e_phoff (elf(5)).
 */
export function elfLoads(head: Buffer): ElfLoad[] {
  if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) throw new Error('not an ELF64 little-endian header');
  const phoff = Number(head.readBigUInt64LE(32));
  const phentsize = head.readUInt16LE(54);
  const phnum = head.readUInt16LE(56);
  if (phoff + phnum * phentsize > head.length) throw new Error(`program headers end at ${phoff + phnum * phentsize}, past the ${head.length} bytes saved`);
  const out: ElfLoad[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (head.readUInt32LE(o) !== 1) continue;
    out.push({ vaddr: head.readBigUInt64LE(o + 16), paddr: Number(head.readBigUInt64LE(o + 24)), fileSize: Number(head.readBigUInt64LE(o + 32)), memSize: Number(head.readBigUInt64LE(o + 40)) });
  }
  return out;
}

/**
 * Name each pfn kept by makedumpfile 1.7.2 only or by dumpsieve only on a
 * 6.12 guest from its struct page in `dump`, read through libkdumpfile's
 * page-table walk at SYMBOL(vmemmap) (which 6.12's VMCOREINFO exports and
 * 6.1's does not).
 */
export function nameDifferences(
  dump: string,
  onlyMdf: number[],
  onlyDs: number[],
): { thpTails: number; slabAnon: number; unnamedMdf: number[]; unnamedDs: number[] } {
  const vi = vmcoreinfoLines(dump);
  const vmemmapHex = vi.get('SYMBOL(vmemmap)');
  if (!vmemmapHex) throw new Error(`${dump}: no SYMBOL(vmemmap) in VMCOREINFO`);
  const vmemmap = BigInt(`0x${vmemmapHex}`);
  const size = Number(vi.get('SIZE(page)'));
  const slabValue = Number(vi.get('NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)')) >>> 0;
  const all = [...onlyMdf, ...onlyDs];
  const pages = kvRead(
    dump,
    all.map((p) => [vmemmap + BigInt(p * size), size]),
  );
  const page = new Map<number, Buffer | undefined>(all.map((p, i) => [p, pages[i]]));
  // Heads of the tails, in one more batch.
  const heads = new Map<number, bigint>();
  for (const p of onlyMdf) {
    const b = page.get(p);
    if (b && b.readBigUInt64LE(8) & 1n) heads.set(p, b.readBigUInt64LE(8) - 1n);
  }
  const headBytes = kvRead(dump, [...heads.values()].map((v) => [v, size]));
  const headOf = new Map<number, Buffer | undefined>([...heads.keys()].map((p, i) => [p, headBytes[i]]));
  let thpTails = 0;
  let slabAnon = 0;
  const unnamedMdf: number[] = [];
  const unnamedDs: number[] = [];
  for (const p of onlyMdf) {
    // A compound tail whose head is an anonymous page: makedumpfile 1.7.2
    // excludes 1 << compound_order pages from the head, but 6.12 exports
    // no OFFSET(page.compound_order) (the order moved to folio._flags_1),
    // so it excludes the head alone.
    const h = headOf.get(p);
    if (h && (h.readBigUInt64LE(24) & 1n) === 1n) thpTails++;
    else unnamedMdf.push(p);
  }
  for (const p of onlyDs) {
    // A slab page (page_type PGTY_slab) whose struct slab word at the
    // mapping offset has the PAGE_MAPPING_ANON bit: makedumpfile 1.7.2
    // tests slab by NUMBER(PG_slab), gone since 6.10, and calls it user data.
    const b = page.get(p);
    if (b && b.readUInt32LE(48) === slabValue && (b.readBigUInt64LE(24) & 1n) === 1n) slabAnon++;
    else unnamedDs.push(p);
  }
  return { thpTails, slabAnon, unnamedMdf, unnamedDs };
}
