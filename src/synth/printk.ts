/**
 * The kernel log of a synthetic guest: a boot log, scenario messages,
 * filler and a crash, written into the printk ring buffer of the era by a
 * simulation of the kernel's own writer, so the ring wraps and overwrites
 * records exactly as the kernel would. The truth (which records a reader
 * must show, which were lost, the crashing CPU's registers) comes from the
 * simulation's own bookkeeping, never from parsing the bytes it wrote.
 *
 * Layouts (docs/formats/printk.md):
 * - 4.19: the variable-length log_buf (log_store(), msg_used_size(),
 *   logbuf_has_space() of kernel/printk/printk.c), struct printk_log of 16
 *   bytes (no caller_id: CONFIG_PRINTK_CALLER came in 5.1), LOG_ALIGN 4.
 * - 5.10 and later: the lockless ring (kernel/printk/printk_ringbuffer.c:
 *   desc_reserve(), desc_push_tail(), data_alloc(), data_push_tail(),
 *   get_next_lpos()), with printk_info in its own array and dev_printk_info
 *   instead of a dictionary (commits 896fbe20b4e2 and 74caba7f2a06, both
 *   v5.10). 6.x eras add prb_desc_ring.last_finalized_id (commit
 *   f244b4dc53e5 "printk: ringbuffer: Improve prb_next_seq() performance",
 *   2022; later renamed last_finalized_seq, same size), which moves
 *   text_data_ring from offset 40 to 48, and export clear_seq as a struct
 *   latched_seq (v5.13, commit 7d7a23a91c91 "printk: use seqcount_latch for
 *   clear_seq").
 *
 * Seed bits choose the shape, so tests can pick what they need:
 *   seed & 1          buffers in the kernel image (0, static __log_buf /
 *                     _printk_rb_static) or memblock-allocated in the direct
 *                     map (1, as with log_buf_len= or many CPUs)
 *   (seed >> 1) % 3   how much is written: 0 part of the ring, 1 the text
 *                     ring wraps about 2.5 times, 2 about 7 times (the
 *                     descriptor ring wraps as well)
 *   (seed >> 3) & 3   ring size: text ring of 2^13, 2^15, 2^14 or 2^17 bytes
 *   (seed >> 5) & 1   the crash: a sysrq-triggered panic (0) or a NULL
 *                     pointer Oops followed by a panic (1)
 *   (seed >> 6) & 1   lockless only: the last line is left committed (an
 *                     unfinished pr_cont line) and another CPU holds a
 *                     reserved descriptor (1), or all records are finalized (0)
 */
import { encodeNote, NT_PRSTATUS, PRSTATUS_SIZE } from '../formats/elf/elf.js';
import type { EraDef } from './eras.js';
import { KERNEL_TEXT_BASE, KernelLayout, type RamRange } from './layout.js';
import { PAGE_SIZE, type PlanBuilder, type PlanRun } from './plan.js';
import { Rng } from './rng.js';

export type PrintkFormat = 'lockless' | 'log_buf';
export type PrintkPlacement = 'static' | 'dynamic';
export type PrintkState = 'finalized' | 'committed';

/** One record a reader must show, in order. Text and dictionary are byte strings (latin1). */
export interface PrintkTruthRecord {
  seq: number;
  tsNsec: number;
  level: number;
  facility: number;
  flags: number;
  /** Raw caller_id (bit 31: CPU), undefined where the era stores none. */
  caller: number | undefined;
  /** Descriptor state (lockless). */
  state: PrintkState | undefined;
  /** The text block wraps past the end of the data ring (its data is at index 0). */
  wraps: boolean;
  text: string;
  dict: Array<[string, string]>;
}

export interface PrintkCrash {
  /** CPU that panicked, its task and the registers in its NT_PRSTATUS. */
  cpu: number;
  pid: number;
  comm: string;
  rip: bigint;
  rsp: bigint;
  /** CR2 as the Oops prints it (page-fault crashes only). */
  cr2: bigint | undefined;
  /** The panic line and the first line of the crash (the Oops or sysrq line). */
  panic: string;
  cause: string;
}

export interface PrintkTruth {
  format: PrintkFormat;
  placement: PrintkPlacement;
  /** Records written since boot (the in-flight one included). */
  written: number;
  /** Records written that the ring no longer holds. */
  lost: number;
  /** Records reserved but not committed at the crash (never shown). */
  inFlight: number;
  /** Bytes of the text ring (lockless) or of log_buf. */
  bufferBytes: number;
  /** Pfn ranges of every structure of the log (variables page and buffers). */
  ranges: Array<{ start: number; end: number }>;
  records: PrintkTruthRecord[];
  crash: PrintkCrash;
}

export interface PrintkPlan {
  truth: PrintkTruth;
  /** VMCOREINFO lines log_buf_vmcoreinfo_setup() writes, in its order. */
  vmcoreinfo: Array<[string, string | number]>;
  /** NT_PRSTATUS notes, one per CPU. */
  cpuNotes: Uint8Array[];
}

export interface PrintkInput {
  era: EraDef;
  layout: KernelLayout;
  plan: PlanBuilder;
  seed: number;
  ram: readonly RamRange[];
  scenario: string;
  /** One past the last pfn of the RAM range holding the kernel image. */
  homeEnd: number;
}

export const PRINTK_OWNER = 'printk';
const CPUS = 2;
const U64 = (1n << 64n) - 1n;
const ID_MASK = (1n << 62n) - 1n;
const FAILED_LPOS = 1n;
const LOG_NEWLINE = 2;
const LOG_PREFIX = 4;
const LOG_CONT = 8;
const CPU_BIT = 0x8000_0000;

// ---------------------------------------------------------------------------
// Structure layouts (x86_64)

/** struct printk_info: seq 0, ts_nsec 8, text_len 16, facility 18, flags:5/level:3 19, caller_id 20, dev_info 24. */
const INFO = { size: 88, seq: 0, ts: 8, textLen: 16, facility: 18, flagsLevel: 19, caller: 20, devInfo: 24, subsystem: 0, subsystemLen: 16, device: 16, deviceLen: 48 };
/** struct prb_desc: state_var 0, text_blk_lpos { begin 0, next 8 } at 8. */
const DESC = { size: 24, stateVar: 0, blk: 8 };
/** struct prb_data_ring: size_bits 0, data 8, head_lpos 16, tail_lpos 24. */
const DATA_RING = { size: 32, sizeBits: 0, data: 8, head: 16, tail: 24 };
/** struct printk_log (4.19): ts_nsec 0, len 8, text_len 10, dict_len 12, facility 14, flags/level 15. */
const PLOG = { size: 16, ts: 0, len: 8, textLen: 10, dictLen: 12, facility: 14, flagsLevel: 15, align: 4 };

interface RingLayout {
  descRing: number;
  textRing: number;
  fail: number;
  size: number;
  lastFinalized: boolean;
  latched: boolean;
}

function ringLayout(era: EraDef): RingLayout {
  // f244b4dc53e5 (2022) is after 5.10 and before 6.1, the eras synth has on either side.
  const lastFinalized = era.version >= 519;
  const descRing = lastFinalized ? 48 : 40;
  return { descRing, textRing: descRing, fail: descRing + DATA_RING.size, size: descRing + DATA_RING.size + 8, lastFinalized, latched: era.version >= 513 };
}

/** Offsets in the page of printk variables (a stand-in for the kernel's .data). */
const VARS = { prb: 0x0, rbStatic: 0x40, rbDynamic: 0x100, clearSeq: 0x180, logFirstSeq: 0x1c0, logNextSeq: 0x1c8, logBuf: 0x200, logBufLen: 0x208, logFirstIdx: 0x210, logNextIdx: 0x218, clearIdx: 0x220 };

// ---------------------------------------------------------------------------
// Messages

interface Msg {
  text: string;
  level: number;
  facility: number;
  caller: number;
  dict: Array<[string, string]>;
  /** printk text ended with a newline (LOG_NEWLINE; finalized at commit). */
  newline: boolean;
  /** A continuation fragment stored as its own record (log_buf era). */
  cont?: boolean;
  tsNsec: number;
}

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

class MessageWriter {
  readonly msgs: Msg[] = [];
  private ts = 0;
  constructor(private readonly rng: Rng) {}
  advance(minUs: number, maxUs: number): void {
    this.ts += this.rng.int(minUs, maxUs) * 1000 + this.rng.int(0, 999);
  }
  add(text: string, o: { level?: number; facility?: number; caller?: number; dict?: Array<[string, string]>; newline?: boolean; cont?: boolean; hold?: boolean } = {}): void {
    if (!o.hold) this.advance(3, 900);
    this.msgs.push({
      text,
      level: o.level ?? 6,
      facility: o.facility ?? 0,
      caller: o.caller ?? 0,
      dict: o.dict ?? [],
      newline: o.newline ?? true,
      cont: o.cont,
      tsNsec: this.ts,
    });
  }
  jump(seconds: number): void {
    this.ts += Math.round(seconds * 1e9);
  }
  get now(): number {
    return this.ts;
  }
}

const FILLERS: Array<(n: number, rng: Rng) => { text: string; level?: number; dict?: Array<[string, string]> }> = [
  (n) => ({ text: `virtio_balloon virtio0: inflated ${256 * ((n % 7) + 1)} pages`, dict: [['SUBSYSTEM', 'virtio'], ['DEVICE', '+virtio:virtio0']] }),
  (n, r) => ({ text: `audit: type=1400 audit(${1700000000 + n}.${r.int(100, 999)}:${n + 40}): apparmor="STATUS" operation="profile_load" name="dumpsieve-${n % 13}" pid=${300 + (n % 900)}` }),
  (n) => ({ text: `EXT4-fs (vda1): re-mounted. Quota mode: none. (${n})` }),
  (n) => ({ text: `random: crng reseeded on system resumption ${n}`, level: 5 }),
  (n) => ({ text: `systemd-journald[${180 + (n % 50)}]: Received client request to flush runtime journal.`, level: 6 }),
  (n) => ({ text: `e1000e 0000:00:02.0 eth0: NIC Link is Up 1000 Mbps Full Duplex (${n})`, dict: [['SUBSYSTEM', 'pci'], ['DEVICE', '+pci:0000:00:02.0']] }),
  (n) => ({ text: `oom_reaper: reaped process ${1000 + n} (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB`, level: 6 }),
  () => ({ text: 'ok', level: 7 }),
  (n) => ({ text: `perf: interrupt took too long (${2500 + n} > ${2490 + n}), lowering kernel.perf_event_max_sample_rate to 79000`, level: 4 }),
];

function bootMessages(w: MessageWriter, era: EraDef, ram: readonly RamRange[], scenario: string, rng: Rng): void {
  const T0 = 0;
  w.add(`Linux version ${era.osrelease} (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC synthetic`, { level: 5, caller: T0, hold: true });
  w.add(`Command line: BOOT_IMAGE=/boot/vmlinuz-${era.osrelease} root=/dev/vda1 ro console=ttyS0 loglevel=8 printk.time=1 crashkernel=256M`, { caller: T0, hold: true });
  w.add('BIOS-provided physical RAM map:', { caller: T0, hold: true });
  for (const r of ram) {
    w.add(`BIOS-e820: [mem 0x${hex16(BigInt(r.start * PAGE_SIZE))}-0x${hex16(BigInt(r.end * PAGE_SIZE - 1))}] usable`, { caller: T0, hold: true });
  }
  w.add('NX (Execute Disable) protection: active', { caller: T0, hold: true });
  w.add('DMI: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014', { caller: T0, hold: true });
  w.advance(1000, 5000);
  // A record with several lines (one printk with inner newlines).
  w.add('Spectre V2 : Mitigation: Retpolines\nSpectre V2 : Spectre v2 / SpectreRSB mitigation: Filling RSB on context switch', { caller: T0 });
  // A record starting with a tab, as rcu prints them.
  w.add('rcu: \tRCU restricting CPUs from NR_CPUS=8192 to nr_cpu_ids=2.', { caller: T0 });
  const kb = ram.reduce((a, r) => a + (r.end - r.start) * 4, 0);
  w.add(`Memory: ${kb - 61234}K/${kb}K available (14336K kernel code, 2345K rwdata, 9112K rodata, 2788K init, 17420K bss, 61234K reserved, 0K cma-reserved)`, { caller: T0 });
  w.add('', { caller: T0 }); // an empty line (printk("\n"))
  w.add(`smp: Brought up 1 node, ${CPUS} CPUs`, { caller: 1 });
  // A byte no terminal shows, and a userspace line written to /dev/kmsg (facility LOG_USER).
  w.add('tty: stray escape \x1b[0m and \x7f in a message', { level: 4, caller: 1 });
  w.add('dumpsieve-test: marker line from userspace', { level: 5, facility: 1, caller: 412 });
  const drivers: Record<string, string[]> = {
    'xen-hvm-balloon': ['xen:balloon: Initialising balloon driver', 'xen:balloon: inflated to 16384 pages'],
    'xen-pv-balloon': ['xen:balloon: Initialising balloon driver', 'xen:balloon: 65536 pages ballooned out'],
    'virtio-balloon': ['virtio_balloon virtio0: free page reporting enabled'],
    'hv-balloon': ['hv_balloon: Using Dynamic Memory protocol version 2.0', 'hv_balloon: Max. dynamic memory size: 4096 MB'],
    'virtio-mem': ['virtio_mem virtio1: start address: 0x100000000', 'virtio_mem virtio1: plugged size: 0x20000000'],
    'vmware-balloon': ['vmw_balloon: inflating 8192 pages'],
  };
  for (const t of drivers[scenario] ?? []) w.add(t, { caller: rng.chance(0.5) ? 57 : (CPU_BIT | 1) >>> 0, dict: t.startsWith('virtio') ? [['SUBSYSTEM', 'virtio'], ['DEVICE', `+virtio:${t.split(' ')[1]!.replace(':', '')}`]] : [] });
  // A line continued with pr_cont (one record in both layouts: the log_buf
  // era's cont buffer and the lockless ring's prb_reserve_in_last() join them).
  w.add('x86/fpu: Supporting XSAVE feature 0x001: \'x87 floating point registers\'', { caller: T0 });
  w.add('Freeing unused kernel image (initmem) memory: 2788K', { caller: 1 });
  w.add('Run /init as init process', { caller: 1 });
}

function crashMessages(w: MessageWriter, era: EraDef, oops: boolean, site: CrashSite): { panic: string; cause: string } {
  const { cpu, pid, comm, rip, rsp } = site;
  const cc = pid;
  const rel = era.osrelease;
  const hw = 'Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014';
  const modern = era.version >= 510;
  const stack = (frames: string[]): void => {
    w.add('Call Trace:', { level: 4, caller: cc, hold: true });
    if (modern) w.add(' <TASK>', { level: 4, caller: cc, hold: true });
    for (const f of frames) w.add(` ${f}`, { level: 4, caller: cc, hold: true });
    if (modern) w.add(' </TASK>', { level: 4, caller: cc, hold: true });
  };
  if (!oops) {
    const cause = modern ? 'sysrq: Trigger a crash' : 'sysrq: SysRq : Trigger a crash';
    const panic = 'Kernel panic - not syncing: sysrq triggered crash';
    w.add(cause, { level: 6, caller: cc });
    w.add(panic, { level: 0, caller: cc });
    w.add(`CPU: ${cpu} PID: ${pid} Comm: ${comm} Kdump: loaded Not tainted ${rel} #1`, { level: 4, caller: cc, hold: true });
    w.add(hw, { level: 4, caller: cc, hold: true });
    stack(['dump_stack_lvl+0x44/0x5c', 'panic+0x10c/0x2f4', 'sysrq_handle_crash+0x16/0x20', '__handle_sysrq.cold+0x43/0x11b', 'write_sysrq_trigger+0x24/0x40', 'proc_reg_write+0x56/0xa0', 'vfs_write+0xc7/0x3f0', 'ksys_write+0x6b/0xf0', 'do_syscall_64+0x58/0xc0', 'entry_SYSCALL_64_after_hwframe+0x63/0xcd']);
    return { panic, cause };
  }
  const cause = modern ? 'BUG: kernel NULL pointer dereference, address: 0000000000000000' : 'BUG: unable to handle kernel NULL pointer dereference at 0000000000000000';
  const panic = 'Kernel panic - not syncing: Fatal exception';
  w.add(cause, { level: 1, caller: cc });
  if (modern) {
    w.add('#PF: supervisor read access in kernel mode', { level: 1, caller: cc, hold: true });
    w.add('#PF: error_code(0x0000) - not-present page', { level: 1, caller: cc, hold: true });
  }
  w.add('PGD 0 P4D 0 ', { level: 6, caller: cc, hold: true });
  w.add(`Oops: 0000 [#1] ${modern ? 'PREEMPT ' : ''}SMP NOPTI`, { level: 4, caller: cc, hold: true });
  w.add(`CPU: ${cpu} PID: ${pid} Comm: ${comm} Kdump: loaded Not tainted ${rel} #1`, { level: 4, caller: cc, hold: true });
  w.add(hw, { level: 4, caller: cc, hold: true });
  w.add('RIP: 0010:virtballoon_free_page_report+0x3c/0x120 [virtio_balloon]', { level: 4, caller: cc, hold: true });
  w.add('Code: 48 89 e5 41 57 41 56 41 55 41 54 53 48 83 ec 10 <48> 8b 07 48 85 c0 74 2a', { level: 4, caller: cc, hold: true });
  w.add(`RSP: 0018:${hex16(rsp - 0x88n)} EFLAGS: 00010246`, { level: 4, caller: cc, hold: true });
  w.add('RAX: 0000000000000000 RBX: ffff888003c1e000 RCX: 0000000000000000', { level: 4, caller: cc, hold: true });
  w.add('CR2: 0000000000000000 CR3: 000000000b010000 CR4: 0000000000350ee0', { level: 4, caller: cc, hold: true });
  stack(['page_reporting_process+0x1b0/0x400', 'process_one_work+0x1c4/0x380', 'worker_thread+0x4d/0x380', 'kthread+0xd7/0x100', 'ret_from_fork+0x1f/0x30']);
  w.add('Modules linked in: virtio_balloon virtio_pci virtio_ring virtio', { level: 4, caller: cc, hold: true });
  w.add('CR2: 0000000000000000', { level: 4, caller: cc, hold: true });
  w.add('---[ end trace 0000000000000000 ]---', { level: 4, caller: cc, hold: true });
  w.add(`RIP: 0010:virtballoon_free_page_report+0x3c/0x120 [virtio_balloon] (${hex16(rip)})`, { level: 4, caller: cc, hold: true });
  w.add(panic, { level: 0, caller: cc });
  w.add('Kernel Offset: disabled', { level: 0, caller: cc, hold: true });
  return { panic, cause };
}

// ---------------------------------------------------------------------------
// Lockless ring simulation

interface DescSim {
  sv: bigint;
  begin: bigint;
  next: bigint;
  /** Message index held (for the truth). */
  msg: number;
  wraps: boolean;
}

class PrbSim {
  readonly count: number;
  readonly size: number;
  readonly sizeBig: bigint;
  readonly data: Uint8Array;
  readonly ddv: DataView;
  readonly infos: Uint8Array;
  readonly idv: DataView;
  readonly d: DescSim[];
  headId: bigint;
  tailId: bigint;
  headLpos: bigint;
  tailLpos: bigint;
  private readonly blocks: Array<{ id: bigint; begin: bigint; next: bigint }> = [];
  private front = 0;
  written = 0;

  constructor(
    readonly countBits: number,
    readonly sizeBits: number,
  ) {
    this.count = 2 ** countBits;
    this.size = 2 ** sizeBits;
    this.sizeBig = BigInt(this.size);
    this.data = new Uint8Array(this.size);
    this.ddv = new DataView(this.data.buffer);
    this.infos = new Uint8Array(this.count * INFO.size);
    this.idv = new DataView(this.infos.buffer);
    // _DEFINE_PRINTKRB(): the last descriptor is the initial head and tail,
    // reusable and data-less; infos[0].seq = -count, infos[count-1].seq = 0.
    const desc0 = (U64 - BigInt(this.count)) & ID_MASK; // DESC0_ID = DESC_ID(-(count + 1))
    this.d = Array.from({ length: this.count }, () => ({ sv: 0n, begin: 0n, next: 0n, msg: -1, wraps: false }));
    const last = this.d[this.count - 1]!;
    last.sv = (3n << 62n) | desc0;
    last.begin = FAILED_LPOS;
    last.next = FAILED_LPOS;
    this.idv.setBigUint64(INFO.seq, (U64 + 1n - BigInt(this.count)) & U64, true);
    this.headId = desc0;
    this.tailId = desc0;
    this.headLpos = (U64 + 1n - this.sizeBig) & U64; // BLK0_LPOS
    this.tailLpos = this.headLpos;
  }

  private idx(id: bigint): number {
    return Number(id & BigInt(this.count - 1));
  }

  private state(id: bigint): number {
    return Number(this.d[this.idx(id)]!.sv >> 62n);
  }

  private setState(id: bigint, s: number): void {
    this.d[this.idx(id)]!.sv = (BigInt(s) << 62n) | id;
  }

  /** data_push_tail(): make every block before lpos reusable. */
  private pushDataTail(lpos: bigint): void {
    // while ((lpos - tail_lpos) - 1 < DATA_SIZE), in unsigned long arithmetic
    while (((((lpos - this.tailLpos) & U64) - 1n) & U64) < this.sizeBig) {
      const b = this.blocks[this.front];
      if (!b || b.begin !== this.tailLpos) throw new Error('printk simulation: data tail is not at a block');
      const s = this.state(b.id);
      if ((this.d[this.idx(b.id)]!.sv & ID_MASK) === b.id) {
        if (s === 0 || s === 1) throw new Error('printk simulation: data of an unfinalized record must be recycled');
        this.setState(b.id, 3);
      }
      this.tailLpos = b.next;
      this.front++;
    }
    if (this.front > 4096) {
      this.blocks.splice(0, this.front);
      this.front = 0;
    }
  }

  /** desc_push_tail(): recycle the tail descriptor (its data first). */
  private pushDescTail(): void {
    const id = this.tailId;
    const s = this.state(id);
    if (s === 0 || s === 1) throw new Error('printk simulation: the tail descriptor is not finalized');
    const desc = this.d[this.idx(id)]!;
    if (s === 2) this.setState(id, 3);
    if ((desc.next & 1n) === 0n) this.pushDataTail(desc.next);
    this.tailId = (id + 1n) & ID_MASK;
  }

  private nextLpos(lpos: bigint, size: number): bigint {
    const next = (lpos + BigInt(size)) & U64;
    if (lpos >> BigInt(this.sizeBits) === next >> BigInt(this.sizeBits)) return next;
    // Wrapping data blocks store their data at the beginning.
    return ((next & ~(this.sizeBig - 1n)) + BigInt(size)) & U64;
  }

  /** prb_reserve() + copy + prb_commit()/prb_final_commit(), or leave it reserved. */
  write(m: Msg, msgIndex: number, how: 'final' | 'commit' | 'reserve'): void {
    const id = (this.headId + 1n) & ID_MASK;
    if (((id - BigInt(this.count)) & ID_MASK) === this.tailId) this.pushDescTail();
    // The previous head is finalized once a new record is reserved (desc_make_final()).
    if (this.state(this.headId) === 1) this.setState(this.headId, 2);
    this.headId = id;
    const i = this.idx(id);
    const desc = this.d[i]!;
    desc.sv = id; // reserved
    desc.msg = msgIndex;
    const io = i * INFO.size;
    const oldSeq = this.idv.getBigUint64(io + INFO.seq, true);
    const seq = oldSeq === 0n && i !== 0 ? BigInt(i) : (oldSeq + BigInt(this.count)) & U64;
    this.infos.fill(0, io, io + INFO.size);
    this.idv.setBigUint64(io + INFO.seq, seq, true);
    // vprintk_store() reserves the formatted length plus one (the NUL), the newline included.
    const text = Buffer.from(m.text, 'latin1');
    const reserve = text.length + (m.newline ? 1 : 0) + 1;
    const blkSize = (8 + reserve + 7) & ~7;
    const begin = this.headLpos;
    const next = this.nextLpos(begin, blkSize);
    this.pushDataTail((next - this.sizeBig) & U64);
    this.headLpos = next;
    const wraps = begin >> BigInt(this.sizeBits) !== next >> BigInt(this.sizeBits);
    const at = Number(begin & (this.sizeBig - 1n));
    this.ddv.setBigUint64(at, id, true);
    let textAt = at + 8;
    if (wraps) {
      this.ddv.setBigUint64(0, id, true);
      textAt = 8;
    }
    this.blocks.push({ id, begin, next });
    desc.begin = begin;
    desc.next = next;
    desc.wraps = wraps;
    if (how === 'reserve') {
      // Another CPU is still formatting: half of the text is there.
      this.data.set(text.subarray(0, text.length >> 1), textAt);
      this.written++;
      return;
    }
    this.data.set(text, textAt);
    let end = textAt + text.length;
    if (m.newline) this.data[end++] = 0x0a;
    this.data[end] = 0;
    this.idv.setBigUint64(io + INFO.ts, BigInt(m.tsNsec), true);
    this.idv.setUint16(io + INFO.textLen, text.length, true);
    this.idv.setUint8(io + INFO.facility, m.facility);
    this.idv.setUint8(io + INFO.flagsLevel, ((m.level & 7) << 5) | ((m.newline ? LOG_NEWLINE : 0) & 0x1f));
    this.idv.setUint32(io + INFO.caller, m.caller >>> 0, true);
    for (const [k, v] of m.dict) {
      const f = k === 'SUBSYSTEM' ? INFO.subsystem : k === 'DEVICE' ? INFO.device : -1;
      const n = k === 'SUBSYSTEM' ? INFO.subsystemLen : INFO.deviceLen;
      if (f >= 0) this.infos.set(Buffer.from(v.slice(0, n - 1), 'latin1'), io + INFO.devInfo + f);
    }
    this.setState(id, how === 'final' ? 2 : 1);
    this.written++;
  }

  /** The records a reader must show: committed or finalized descriptors from tail to head. */
  visible(): Array<{ id: bigint; desc: DescSim; state: PrintkState; seq: number }> {
    const out: Array<{ id: bigint; desc: DescSim; state: PrintkState; seq: number }> = [];
    for (let id = this.tailId; ; id = (id + 1n) & ID_MASK) {
      const desc = this.d[this.idx(id)]!;
      const s = Number(desc.sv >> 62n);
      if ((desc.sv & ID_MASK) === id && (s === 1 || s === 2) && desc.msg >= 0) {
        out.push({ id, desc, state: s === 1 ? 'committed' : 'finalized', seq: Number(this.idv.getBigUint64(this.idx(id) * INFO.size + INFO.seq, true)) });
      }
      if (id === this.headId) break;
    }
    return out;
  }

  descBytes(): Uint8Array {
    const b = new Uint8Array(this.count * DESC.size);
    const dv = new DataView(b.buffer);
    this.d.forEach((x, i) => {
      dv.setBigUint64(i * DESC.size + DESC.stateVar, x.sv, true);
      dv.setBigUint64(i * DESC.size + DESC.blk, x.begin, true);
      dv.setBigUint64(i * DESC.size + DESC.blk + 8, x.next, true);
    });
    return b;
  }
}

// ---------------------------------------------------------------------------
// log_buf simulation (4.19)

class LogBufSim {
  readonly buf: Uint8Array;
  private readonly dv: DataView;
  firstIdx = 0;
  nextIdx = 0;
  firstSeq = 0;
  nextSeq = 0;
  /** seq → message index. */
  private readonly bySeq: number[] = [];

  constructor(readonly len: number) {
    this.buf = new Uint8Array(len);
    this.dv = new DataView(this.buf.buffer);
  }

  private lenAt(idx: number): number {
    return this.dv.getUint16(idx + PLOG.len, true);
  }

  private logNext(idx: number): number {
    const l = this.lenAt(idx);
    return l === 0 ? this.lenAt(0) : idx + l;
  }

  private hasSpace(size: number, empty: boolean): boolean {
    const free = this.nextIdx > this.firstIdx || empty ? Math.max(this.len - this.nextIdx, this.firstIdx) : this.firstIdx - this.nextIdx;
    return free >= size + PLOG.size;
  }

  store(m: Msg, msgIndex: number): void {
    const text = Buffer.from(m.text, 'latin1');
    const dict = Buffer.from(m.dict.map(([k, v]) => `${k}=${v}`).join('\0'), 'latin1');
    let size = PLOG.size + text.length + dict.length;
    const pad = -size & (PLOG.align - 1);
    size += pad;
    while (this.firstSeq < this.nextSeq && !this.hasSpace(size, false)) {
      this.firstIdx = this.logNext(this.firstIdx);
      this.firstSeq++;
    }
    if (!this.hasSpace(size, this.firstSeq === this.nextSeq)) throw new Error('printk simulation: message larger than log_buf');
    if (this.nextIdx + size + PLOG.size > this.len) {
      this.buf.fill(0, this.nextIdx, this.nextIdx + PLOG.size);
      this.nextIdx = 0;
    }
    const at = this.nextIdx;
    this.buf.set(text, at + PLOG.size);
    this.buf.set(dict, at + PLOG.size + text.length);
    this.buf.fill(0, at + PLOG.size + text.length + dict.length, at + size);
    this.dv.setBigUint64(at + PLOG.ts, BigInt(m.tsNsec), true);
    this.dv.setUint16(at + PLOG.len, size, true);
    this.dv.setUint16(at + PLOG.textLen, text.length, true);
    this.dv.setUint16(at + PLOG.dictLen, dict.length, true);
    this.dv.setUint8(at + PLOG.facility, m.facility);
    const flags = (m.newline ? LOG_NEWLINE : 0) | (m.cont ? LOG_CONT : LOG_PREFIX);
    this.dv.setUint8(at + PLOG.flagsLevel, ((m.level & 7) << 5) | (flags & 0x1f));
    this.nextIdx += size;
    this.bySeq[this.nextSeq] = msgIndex;
    this.nextSeq++;
  }

  visible(): Array<{ seq: number; msg: number }> {
    const out: Array<{ seq: number; msg: number }> = [];
    for (let s = this.firstSeq; s < this.nextSeq; s++) out.push({ seq: s, msg: this.bySeq[s]! });
    return out;
  }
}

// ---------------------------------------------------------------------------
// Placement, rendering, VMCOREINFO, notes

function flagsOf(m: Msg, format: PrintkFormat): number {
  if (format === 'lockless') return m.newline ? LOG_NEWLINE : 0;
  return (m.newline ? LOG_NEWLINE : 0) | (m.cont ? LOG_CONT : LOG_PREFIX);
}

function prstatus(pid: number, regs: { rip: bigint; rsp: bigint; rbp: bigint; rax?: bigint }): Uint8Array {
  const desc = new Uint8Array(PRSTATUS_SIZE);
  const dv = new DataView(desc.buffer);
  dv.setUint32(32, pid, true); // pr_pid
  // pr_reg (struct user_regs_struct) at 112: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss …
  const reg = (i: number, v: bigint): void => dv.setBigUint64(112 + i * 8, BigInt.asUintN(64, v), true);
  reg(4, regs.rbp);
  reg(10, regs.rax ?? 0n);
  reg(15, -1n);
  reg(16, regs.rip);
  reg(17, 0x10n);
  reg(18, 0x246n);
  reg(19, regs.rsp);
  reg(20, 0x18n);
  return encodeNote('CORE', NT_PRSTATUS, desc);
}

/** Find the memblock-style home of the dynamic buffers: the top of the highest plain kernel run that fits. */
function dynamicHome(plan: PlanBuilder, pages: number, homeEnd: number): number | undefined {
  let best: PlanRun | undefined;
  for (const r of plan.runs) {
    if (r.cls !== 'kernel' || r.memmap !== 'plain' || r.content !== 'data' || !r.ram || !r.load) continue;
    if (r.owner !== undefined || r.fault !== undefined || r.variant !== undefined) continue;
    if (r.count < pages || r.start + r.count > homeEnd) continue;
    if (!best || r.start > best.start) best = r;
  }
  return best ? best.start + best.count - pages : undefined;
}

/** No room for the log's buffers at this size: a smaller ring is tried. */
class NoRoom extends Error {}

export function planPrintk(o: PrintkInput): PrintkPlan {
  // CONFIG_LOG_BUF_SHIFT by seed; where neither the image nor free RAM
  // holds that ring (a small guest whose image has freed spans), a smaller
  // one, down to the smallest the kernel allows in practice.
  for (let shift = [13, 15, 14, 17][(o.seed >>> 3) & 3]!; ; shift--) {
    try {
      return planPrintkWith(o, shift);
    } catch (err) {
      if (!(err instanceof NoRoom) || shift <= 12) throw err;
    }
  }
}

function planPrintkWith(o: PrintkInput, shift: number): PrintkPlan {
  const { era, layout, seed } = o;
  const format: PrintkFormat = era.version >= 510 ? 'lockless' : 'log_buf';
  const rng = new Rng(seed, 0x9f1);
  const fill = [0.4, 2.5, 7][(seed >>> 1) % 3]!;
  const oops = ((seed >>> 5) & 1) === 1;
  const unfinished = format === 'lockless' && ((seed >>> 6) & 1) === 1;
  const textSize = 2 ** shift;

  const site = crashSite(rng, layout, oops);
  const { msgs, crashText } = composeLog(o, format, rng, fill * textSize, site, oops, unfinished);
  const ring = format === 'lockless' ? simulateLockless(msgs, shift, unfinished, site.cpu) : simulateLogBuf(msgs, textSize);
  const place = placeBuffers(o, ring, rng);
  const varsVa = layout.textAddress(place.varsPfn);
  const ranges = paintLog(o, ring, place, variablesPage(o, ring, place, varsVa));
  return {
    truth: {
      format,
      placement: place.placement,
      written: ring.written,
      lost: ring.written - ring.records.length - ring.inFlight,
      inFlight: ring.inFlight,
      bufferBytes: textSize,
      ranges,
      records: ring.records,
      crash: { ...site, cr2: oops ? 0n : undefined, panic: crashText.panic, cause: crashText.cause },
    },
    vmcoreinfo: printkVmcoreinfo(ring.format, ringLayout(era), varsVa),
    cpuNotes: prstatusNotes(site),
  };
}

/** The crashing CPU, its task and registers. */
interface CrashSite {
  cpu: number;
  pid: number;
  comm: string;
  rip: bigint;
  rsp: bigint;
}

function crashSite(rng: Rng, layout: KernelLayout, oops: boolean): CrashSite {
  const cpu = rng.int(0, CPUS - 1);
  const pid = oops ? 87 : rng.int(900, 4000);
  const comm = oops ? `kworker/${cpu}:2` : 'sh';
  const rip = layout.textAddress(layout.kbase) + 0x1000n * BigInt(rng.int(0x100, 0x1f0)) + BigInt(rng.int(0, 0xfff));
  const rsp = 0xffffc90000000000n + 0x4000n * BigInt(rng.int(0x10, 0x3ff)) + 0x3d48n;
  return { cpu, pid, comm, rip, rsp };
}

/** The messages: boot, scenario, filler up to `target` bytes, crash. */
function composeLog(
  o: PrintkInput,
  format: PrintkFormat,
  rng: Rng,
  target: number,
  site: CrashSite,
  oops: boolean,
  unfinished: boolean,
): { msgs: Msg[]; crashText: { panic: string; cause: string } } {
  const w = new MessageWriter(rng.fork(1));
  bootMessages(w, o.era, o.ram, o.scenario, rng.fork(2));
  w.jump(rng.int(2, 40));
  const fr = rng.fork(3);
  let bytes = w.msgs.reduce((a, m) => a + m.text.length + 24, 0);
  let n = 0;
  while (bytes < target) {
    const f = FILLERS[fr.int(0, FILLERS.length - 1)]!(n++, fr);
    const caller = fr.chance(0.8) ? fr.int(1, 5000) : (CPU_BIT | fr.int(0, CPUS - 1)) >>> 0;
    w.add(f.text, { level: f.level ?? 6, caller, dict: f.dict ?? [] });
    // A pr_cont fragment interrupted by another CPU (log_buf era: two records, the second LOG_CONT).
    if (format === 'log_buf' && n % 97 === 13) {
      w.add('clocksource: tsc: mask: 0xffffffffffffffff', { caller, newline: false, hold: true });
      w.add(' max_cycles: 0x2b3e459bf4c, max_idle_ns: 440795289890 ns', { caller, cont: true, hold: true });
    }
    bytes += f.text.length + 24;
    if (n % 50 === 0) w.jump(fr.float() * 3);
  }
  w.jump(rng.int(1, 30));
  const crashText = crashMessages(w, o.era, oops, site);
  if (unfinished) w.add('Rebooting in 10 seconds..', { level: 0, caller: site.pid, newline: false });
  return { msgs: w.msgs, crashText };
}

/** The simulated buffer after every message was written, with what a reader must show. */
type SimulatedRing = ({ format: 'lockless'; sim: PrbSim } | { format: 'log_buf'; sim: LogBufSim }) & {
  records: PrintkTruthRecord[];
  written: number;
  inFlight: number;
  /** The buffers' bytes, in the order they are laid out. */
  parts: Uint8Array[];
};

function simulateLockless(msgs: Msg[], shift: number, unfinished: boolean, cpu: number): SimulatedRing {
  const sim = new PrbSim(shift - 5, shift); // PRB_AVGBITS 5
  let inFlight = 0;
  msgs.forEach((m, i) => {
    if (unfinished && i === msgs.length - 1) {
      // Another CPU reserved a record and was still formatting it when the
      // last line (a pr_cont line, left committed) was stored after it.
      sim.write({ text: 'NMI backtrace for cpu 1 (in progress)', level: 4, facility: 0, caller: (CPU_BIT | (1 - cpu)) >>> 0, dict: [], newline: true, tsNsec: m.tsNsec }, -1, 'reserve');
      inFlight = 1;
    }
    sim.write(m, i, m.newline ? 'final' : 'commit');
  });
  const records = sim.visible().map(({ desc, state, seq }): PrintkTruthRecord => {
    const m = msgs[desc.msg]!;
    const dict = m.dict.filter(([k]) => k === 'SUBSYSTEM' || k === 'DEVICE');
    return { seq, tsNsec: m.tsNsec, level: m.level, facility: m.facility, flags: flagsOf(m, 'lockless'), caller: m.caller >>> 0, state, wraps: desc.wraps, text: m.text, dict };
  });
  return { format: 'lockless', sim, records, written: sim.written, inFlight, parts: [sim.data, sim.descBytes(), sim.infos] };
}

function simulateLogBuf(msgs: Msg[], textSize: number): SimulatedRing {
  const sim = new LogBufSim(textSize);
  msgs.forEach((m, i) => sim.store(m, i));
  const records = sim.visible().map(({ seq, msg }): PrintkTruthRecord => {
    const m = msgs[msg]!;
    return { seq, tsNsec: m.tsNsec, level: m.level, facility: m.facility, flags: flagsOf(m, 'log_buf'), caller: undefined, state: undefined, wraps: false, text: m.text, dict: m.dict };
  });
  return { format: 'log_buf', sim, records, written: sim.nextSeq, inFlight: 0, parts: [sim.buf] };
}

/** Where the variables page and the buffers went. */
interface Placement {
  placement: PrintkPlacement;
  varsPfn: number;
  /** Physical address of the first buffer, each buffer's offset from it (8-aligned) and their span. */
  basePaddr: number;
  offsets: number[];
  total: number;
}

/**
 * The variables live in the kernel image's data; the buffers in its bss
 * (static) or in memblock memory in the direct map (dynamic). Throws
 * NoRoom, before anything is painted, when neither holds them.
 */
function placeBuffers(o: PrintkInput, ring: SimulatedRing, rng: Rng): Placement {
  const { layout, plan } = o;
  const varsPfn = layout.zeroPage + 1;
  let total = 0;
  const offsets = ring.parts.map((p) => {
    const at = align8(total);
    total = at + p.length;
    return at;
  });
  const pagesNeeded = Math.ceil(total / PAGE_SIZE) + 1;
  let placement: PrintkPlacement = (o.seed & 1) === 1 ? 'dynamic' : 'static';
  // __log_buf and its descriptor arrays live in the image's data: the first
  // stretch of image pages long enough (freed init sections and rodata gaps
  // interrupt the image). A buffer larger than that is memblock-allocated
  // (log_buf_len= larger than the static buffer), as the kernel does.
  const staticAt = imageStretch(plan, varsPfn + 1, layout.kbase + layout.imagePages, pagesNeeded);
  if (staticAt === undefined) placement = 'dynamic';
  const home = placement === 'dynamic' ? dynamicHome(plan, pagesNeeded, o.homeEnd) : undefined;
  if (home === undefined) placement = 'static';
  let basePaddr: number;
  if (placement === 'dynamic') {
    // memblock_alloc() is top-down: the buffers end where the run ends.
    basePaddr = (home! + pagesNeeded) * PAGE_SIZE - align8(total) - 8 * rng.int(0, 60);
    basePaddr -= basePaddr % 8;
  } else {
    if (staticAt === undefined) throw new NoRoom('printk buffers fit neither in the synthetic kernel image nor in free RAM');
    basePaddr = staticAt * PAGE_SIZE + 8 * rng.int(0, 60);
  }
  return { placement, varsPfn, basePaddr, offsets, total };
}

const align8 = (x: number): number => (x + 7) & ~7;

/** The page of printk variables: the ring (or log_buf) pointers, indices and clear_seq. */
function variablesPage(o: PrintkInput, ring: SimulatedRing, place: Placement, varsVa: bigint): Uint8Array {
  const { layout } = o;
  const vars = new Uint8Array(PAGE_SIZE);
  const vdv = new DataView(vars.buffer);
  const vaddrOf = (paddr: number): bigint => (place.placement === 'dynamic' ? KernelLayout.directMap(paddr) : layout.textAddress(0) + BigInt(paddr));
  const partAddr = (i: number): bigint => vaddrOf(place.basePaddr + place.offsets[i]!);
  if (ring.format === 'log_buf') {
    const sim = ring.sim;
    vdv.setBigUint64(VARS.logBuf, partAddr(0), true);
    vdv.setUint32(VARS.logBufLen, sim.len, true);
    vdv.setUint32(VARS.logFirstIdx, sim.firstIdx, true);
    vdv.setUint32(VARS.logNextIdx, sim.nextIdx, true);
    vdv.setUint32(VARS.clearIdx, sim.firstIdx, true);
    vdv.setBigUint64(VARS.clearSeq, BigInt(sim.firstSeq), true);
    vdv.setBigUint64(VARS.logFirstSeq, BigInt(sim.firstSeq), true);
    vdv.setBigUint64(VARS.logNextSeq, BigInt(sim.nextSeq), true);
    return vars;
  }
  const rl = ringLayout(o.era);
  const live = place.placement === 'dynamic' ? VARS.rbDynamic : VARS.rbStatic;
  vdv.setBigUint64(VARS.prb, varsVa + BigInt(live), true);
  setRing(vdv, live, rl, { descs: partAddr(1), infos: partAddr(2), data: partAddr(0) }, ring.sim);
  if (place.placement === 'dynamic') {
    // printk_rb_static stays behind as setup_log_buf() left it (its arrays are in the image's bss).
    const bits = 12;
    const desc0 = (U64 - BigInt(2 ** bits)) & ID_MASK;
    const lpos0 = (U64 + 1n - (1n << 17n)) & U64;
    const top = layout.kbase + layout.imagePages;
    const at = { descs: layout.textAddress(top - 200), infos: layout.textAddress(top - 150), data: layout.textAddress(top - 60) };
    setRing(vdv, VARS.rbStatic, rl, at, { countBits: bits, sizeBits: 17, headId: desc0, tailId: desc0, headLpos: lpos0, tailLpos: lpos0 });
  }
  const clear = ring.records[0]?.seq ?? 0;
  if (rl.latched) {
    vdv.setUint32(VARS.clearSeq, 2, true);
    vdv.setBigUint64(VARS.clearSeq + 8, BigInt(clear), true);
    vdv.setBigUint64(VARS.clearSeq + 16, BigInt(clear), true);
  } else vdv.setBigUint64(VARS.clearSeq, BigInt(clear), true);
  return vars;
}

/** A struct printk_ringbuffer at `at` of the variables page. */
function setRing(
  vdv: DataView,
  at: number,
  rl: RingLayout,
  va: { descs: bigint; infos: bigint; data: bigint },
  sim: { countBits: number; sizeBits: number; headId: bigint; tailId: bigint; headLpos: bigint; tailLpos: bigint },
): void {
  vdv.setUint32(at + 0, sim.countBits, true);
  vdv.setBigUint64(at + 8, va.descs, true);
  vdv.setBigUint64(at + 16, va.infos, true);
  vdv.setBigUint64(at + 24, sim.headId, true);
  vdv.setBigUint64(at + 32, sim.tailId, true);
  if (rl.lastFinalized) vdv.setBigUint64(at + 40, sim.headId, true);
  const t = at + rl.textRing;
  vdv.setUint32(t + DATA_RING.sizeBits, sim.sizeBits, true);
  vdv.setBigUint64(t + DATA_RING.data, va.data, true);
  vdv.setBigUint64(t + DATA_RING.head, sim.headLpos, true);
  vdv.setBigUint64(t + DATA_RING.tail, sim.tailLpos, true);
}

/**
 * Paint the variables page and the buffers' pages into the plan (after
 * checking they take nothing else's place) and hand the non-zero pages to
 * the layout. Returns the log's pfn ranges.
 */
function paintLog(o: PrintkInput, ring: SimulatedRing, place: Placement, vars: Uint8Array): Array<{ start: number; end: number }> {
  const { plan, layout } = o;
  const { placement, varsPfn, basePaddr, total } = place;
  const firstPfn = Math.floor(basePaddr / PAGE_SIZE);
  const lastPfn = Math.ceil((basePaddr + total) / PAGE_SIZE);
  const claim = (pfn: number, count: number, what: string): void => {
    for (let p = pfn; p < pfn + count; p++) {
      const r = plan.runAt(p);
      const ok = placement === 'static' || p === varsPfn ? r.owner === 'kernel-image' : r.cls === 'kernel' && r.owner === undefined;
      if (!ok) throw new Error(`printk ${what} page 0x${p.toString(16)} would overwrite ${r.cls}${r.owner ? ` (${r.owner})` : ''}`);
    }
  };
  claim(varsPfn, 1, 'variables');
  claim(firstPfn, lastPfn - firstPfn, 'buffer');
  const paintPage = (pfn: number, bytes: Uint8Array, what: string): void => {
    const zero = bytes.every((x) => x === 0);
    plan.paint(pfn, 1, { cls: zero ? 'zero' : 'meta', ram: true, load: true, memmap: 'reserved', content: zero ? 'zero' : 'meta', owner: `${PRINTK_OWNER}-${what}` });
    if (!zero) layout.extraPages.set(pfn, bytes);
  };
  paintPage(varsPfn, vars, 'vars');
  // The region's bytes, page by page.
  const region = new Uint8Array((lastPfn - firstPfn) * PAGE_SIZE);
  ring.parts.forEach((bytes, i) => region.set(bytes, basePaddr - firstPfn * PAGE_SIZE + place.offsets[i]!));
  for (let p = firstPfn; p < lastPfn; p++) {
    const page = region.subarray((p - firstPfn) * PAGE_SIZE, (p - firstPfn + 1) * PAGE_SIZE);
    if (placement === 'dynamic' && (p === firstPfn || p === lastPfn - 1)) {
      // Around the buffers, an edge page holds other memblock data (the image's bss is zero).
      for (let i = 0; i < PAGE_SIZE; i++) {
        const a = p * PAGE_SIZE + i;
        if (a < basePaddr || a >= basePaddr + total) page[i] = (0x5a + i) & 0xff;
      }
    }
    paintPage(p, page, ring.format === 'lockless' ? 'ring' : 'log_buf');
  }
  return [
    { start: varsPfn, end: varsPfn + 1 },
    { start: firstPfn, end: lastPfn },
  ];
}

/** VMCOREINFO as log_buf_vmcoreinfo_setup() writes it. */
function printkVmcoreinfo(format: PrintkFormat, rl: RingLayout, varsVa: bigint): Array<[string, string | number]> {
  const vi: Array<[string, string | number]> = [];
  const sym = (name: string, off: number): void => {
    vi.push([`SYMBOL(${name})`, (varsVa + BigInt(off)).toString(16)]);
  };
  if (format === 'log_buf') {
    sym('log_buf', VARS.logBuf);
    sym('log_buf_len', VARS.logBufLen);
    sym('log_first_idx', VARS.logFirstIdx);
    sym('clear_idx', VARS.clearIdx);
    sym('log_next_idx', VARS.logNextIdx);
    vi.push(['SIZE(printk_log)', PLOG.size], ['OFFSET(printk_log.ts_nsec)', PLOG.ts], ['OFFSET(printk_log.len)', PLOG.len], ['OFFSET(printk_log.text_len)', PLOG.textLen], ['OFFSET(printk_log.dict_len)', PLOG.dictLen]);
    return vi;
  }
  sym('prb', VARS.prb);
  sym('printk_rb_static', VARS.rbStatic);
  sym('clear_seq', VARS.clearSeq);
  vi.push(['SIZE(printk_ringbuffer)', rl.size], ['OFFSET(printk_ringbuffer.desc_ring)', 0], ['OFFSET(printk_ringbuffer.text_data_ring)', rl.textRing], ['OFFSET(printk_ringbuffer.fail)', rl.fail]);
  vi.push(['SIZE(prb_desc_ring)', rl.descRing], ['OFFSET(prb_desc_ring.count_bits)', 0], ['OFFSET(prb_desc_ring.descs)', 8], ['OFFSET(prb_desc_ring.infos)', 16], ['OFFSET(prb_desc_ring.head_id)', 24], ['OFFSET(prb_desc_ring.tail_id)', 32]);
  vi.push(['SIZE(prb_desc)', DESC.size], ['OFFSET(prb_desc.state_var)', DESC.stateVar], ['OFFSET(prb_desc.text_blk_lpos)', DESC.blk]);
  vi.push(['SIZE(prb_data_blk_lpos)', 16], ['OFFSET(prb_data_blk_lpos.begin)', 0], ['OFFSET(prb_data_blk_lpos.next)', 8]);
  vi.push(['SIZE(printk_info)', INFO.size], ['OFFSET(printk_info.seq)', INFO.seq], ['OFFSET(printk_info.ts_nsec)', INFO.ts], ['OFFSET(printk_info.text_len)', INFO.textLen], ['OFFSET(printk_info.caller_id)', INFO.caller], ['OFFSET(printk_info.dev_info)', INFO.devInfo]);
  vi.push(['SIZE(dev_printk_info)', 64], ['OFFSET(dev_printk_info.subsystem)', INFO.subsystem], ['LENGTH(printk_info_subsystem)', INFO.subsystemLen], ['OFFSET(dev_printk_info.device)', INFO.device], ['LENGTH(printk_info_device)', INFO.deviceLen]);
  vi.push(['SIZE(prb_data_ring)', DATA_RING.size], ['OFFSET(prb_data_ring.size_bits)', DATA_RING.sizeBits], ['OFFSET(prb_data_ring.data)', DATA_RING.data], ['OFFSET(prb_data_ring.head_lpos)', DATA_RING.head], ['OFFSET(prb_data_ring.tail_lpos)', DATA_RING.tail]);
  vi.push(['SIZE(atomic_long_t)', 8], ['OFFSET(atomic_long_t.counter)', 0]);
  if (rl.latched) vi.push(['SIZE(latched_seq)', 24], ['OFFSET(latched_seq.val)', 8]);
  return vi;
}

/** NT_PRSTATUS: the panicking CPU's registers from crash_setup_regs(); the other CPU idles. */
function prstatusNotes(site: CrashSite): Uint8Array[] {
  const notes: Uint8Array[] = [];
  for (let c = 0; c < CPUS; c++) {
    if (c === site.cpu) notes.push(prstatus(site.pid, { rip: site.rip, rsp: site.rsp, rbp: site.rsp + 0x40n, rax: 0n }));
    else notes.push(prstatus(0, { rip: KERNEL_TEXT_BASE + 0x1a3c5e0n, rsp: 0xffffc90000083e80n + BigInt(c) * 0x8000n, rbp: 0n }));
  }
  return notes;
}

/** First pfn in [from, end) starting `n` consecutive kernel-image pages, or undefined. */
function imageStretch(plan: PlanBuilder, from: number, end: number, n: number): number | undefined {
  let start = from;
  for (let p = from; p < end; p++) {
    if (plan.runAt(p).owner !== 'kernel-image') start = p + 1;
    else if (p + 1 - start >= n) return start;
  }
  return undefined;
}
