/**
 * The crash at a glance, for `dumpsieve info`: what ran, when it died and
 * how, on which CPU with which registers, how much memory the guest had and
 * gave back, and what wrote the dump.
 *
 * The panic is found in the kernel log: the last "Kernel panic - not
 * syncing" line (or, without one, the last Oops/BUG-like line), and the
 * first sign of trouble is the earliest Oops/BUG/sysrq-like line of the same
 * episode (at most 200 records and 10 seconds before the panic). The
 * crashing CPU is the one the crash output names ("CPU: n PID: p"): the
 * NT_PRSTATUS note whose pr_pid is p, else note n; without that line, the
 * panic record's caller id; else the only note with a non-zero pid.
 */
import type { DumpReader } from '../formats/types.js';
import { cpuRegisters, type CpuRegisters } from '../kernel/crashregs.js';
import { CALLER_CPU_BIT, type KernelLogRecord } from '../kernel/printk.js';
import { readKernelLogOf } from './dmesg.js';

export interface TriageLine {
  sec: number;
  nsec: number;
  /** The record's text (bytes as latin1); may hold newlines and control bytes. */
  text: string;
}

export interface TriageMemory {
  pageSize: number;
  /** Pfns the dump describes as RAM (with or without data). */
  ramPages: number;
  /** RAM pfns with data in the dump. */
  dataPages: number;
  /** RAM pfns without data (excluded by whatever wrote the dump). */
  absentPages: number;
  /** Pfns below the highest one that are not RAM (holes of the physical map). */
  notRamPages: number;
  /** Logically offline (ballooned, unplugged) and hwpoison pages, from struct page; undefined without it. */
  offlinePages?: number | undefined;
  hwpoisonPages?: number | undefined;
}

export interface Triage {
  release?: string | undefined;
  version?: string | undefined;
  /** CRASHTIME (seconds since the epoch) from VMCOREINFO. */
  crashTime?: number | undefined;
  /** Time since boot of the last log record. */
  uptime?: { sec: number; nsec: number } | undefined;
  log?: { format: string; records: number; lost: number | undefined; inFlight: number; warnings: string[] } | undefined;
  /** Why the log could not be read. */
  logError?: string | undefined;
  panic?: TriageLine | undefined;
  cause?: TriageLine | undefined;
  /** The records just before the first sign (or the panic), oldest first. */
  before: TriageLine[];
  cpu?:
    | {
        index: number;
        pid: number;
        comm?: string | undefined;
        /** How the crashing CPU was chosen. */
        how: string;
        rip: bigint;
        rsp: bigint;
        rbp: bigint;
        cr2?: bigint | undefined;
        cr2From?: 'QEMU note' | 'Oops text' | undefined;
      }
    | undefined;
  /** NT_PRSTATUS notes in the dump. */
  cpuNotes: number;
  memory: TriageMemory;
  dump: { format: string; level?: number | undefined; filtered: boolean; tool: string; compression?: string | undefined };
}

const PANIC = /^Kernel panic - not syncing:/;
const CAUSE =
  /^(BUG: |Oops: |general protection fault|kernel BUG at |Unable to handle kernel |sysrq: (SysRq : )?Trigger a crash|Out of memory and no killable processes|watchdog: BUG: soft lockup|NMI watchdog: |divide error: |invalid opcode: |WARNING: CPU: |BUG at )/;
const CPU_LINE = /^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+)/;
const CR2_LINE = /^CR2: ([0-9a-f]{16})/;
const BEFORE = 10;

const textOf = (r: KernelLogRecord): string => Buffer.from(r.text).toString('latin1');
const lineOf = (r: KernelLogRecord): TriageLine => ({ sec: r.sec, nsec: r.nsec, text: textOf(r) });
const ns = (r: KernelLogRecord): number => r.sec * 1e9 + r.nsec;

export interface TriageInput {
  reader: DumpReader;
  memory: TriageMemory;
  release?: string | undefined;
  version?: string | undefined;
}

/**
 * The panic line (the last "Kernel panic", else the last first-sign line)
 * and the first sign of the same episode: the earliest BUG/Oops/sysrq line
 * within 10 s and 200 records before it. Indexes, -1 when there is none.
 */
function crashLines(records: readonly KernelLogRecord[]): { panic: number; cause: number } {
  let pi = -1;
  for (let i = records.length - 1; i >= 0 && pi < 0; i--) if (PANIC.test(textOf(records[i]!))) pi = i;
  for (let i = records.length - 1; i >= 0 && pi < 0; i--) if (CAUSE.test(textOf(records[i]!))) pi = i;
  if (pi < 0) return { panic: -1, cause: -1 };
  let ci = -1;
  const limit = ns(records[pi]!) - 10e9;
  for (let i = pi; i >= 0 && i >= pi - 200 && ns(records[i]!) >= limit; i--) if (CAUSE.test(textOf(records[i]!))) ci = i;
  return { panic: pi, cause: ci < 0 ? pi : ci };
}

/**
 * The crashing CPU's registers: the note the log's "CPU: n PID: p" line
 * names, else the CPU or task that logged the panic, else the only note
 * with a running task; CR2 from QEMU's note or the Oops text.
 */
function crashingCpu(records: readonly KernelLogRecord[], panic: number, cause: number, cpus: readonly CpuRegisters[]): Triage['cpu'] {
  const episode = cause >= 0 ? records.slice(cause) : [];
  let cpuLine: RegExpExecArray | null = null;
  let cr2Text: bigint | undefined;
  for (const r of episode) {
    const s = textOf(r);
    cpuLine ??= CPU_LINE.exec(s);
    const m = CR2_LINE.exec(s);
    if (m && cr2Text === undefined) cr2Text = BigInt(`0x${m[1]!}`);
  }
  let chosen: CpuRegisters | undefined;
  let how = '';
  if (cpuLine) {
    const n = Number(cpuLine[1]);
    const pid = Number(cpuLine[2]);
    const byPid = cpus.filter((c) => c.pid === pid);
    if (pid !== 0 && byPid.length === 1) {
      chosen = byPid[0];
      how = `the note of pid ${pid}, named by "CPU: ${n} PID: ${pid}" in the log`;
    } else if (cpus[n]) {
      chosen = cpus[n];
      how = `note ${n}, the CPU the log names ("CPU: ${n}")`;
    }
  }
  const caller = panic >= 0 ? records[panic]!.callerId : undefined;
  if (!chosen && caller !== undefined) {
    if ((caller & CALLER_CPU_BIT) !== 0) {
      const n = (caller & ~CALLER_CPU_BIT) >>> 0;
      chosen = cpus[n];
      how = `note ${n}, the CPU that logged the panic`;
    } else {
      const byPid = cpus.filter((c) => c.pid === caller);
      if (byPid.length === 1) {
        chosen = byPid[0];
        how = `the note of pid ${caller}, the task that logged the panic`;
      }
    }
  }
  if (!chosen) {
    const busy = cpus.filter((c) => c.pid !== 0);
    if (busy.length === 1) {
      chosen = busy[0];
      how = 'the only note with a running task';
    }
  }
  if (!chosen) return undefined;
  return {
    index: chosen.index,
    pid: chosen.pid,
    comm: chosen.pid === Number(cpuLine?.[2]) ? cpuLine?.[3] : undefined,
    how,
    rip: chosen.regs.rip,
    rsp: chosen.regs.rsp,
    rbp: chosen.regs.rbp,
    cr2: chosen.cr?.cr2 ?? cr2Text,
    cr2From: chosen.cr ? 'QEMU note' : cr2Text !== undefined ? 'Oops text' : undefined,
  };
}

export async function triage(inp: TriageInput): Promise<Triage> {
  const { reader } = inp;
  const info = reader.info;
  const vi = info.vmcoreinfo;
  const regs = cpuRegisters(info.notes);
  const t: Triage = {
    release: inp.release ?? vi?.osrelease,
    version: inp.version,
    crashTime: vi?.crashTime,
    before: [],
    cpuNotes: regs.cpus.length,
    memory: inp.memory,
    dump: {
      format: info.format,
      level: info.dumpLevel,
      filtered: info.dumpLevel !== undefined ? info.dumpLevel > 0 || inp.memory.absentPages > 0 : inp.memory.absentPages > 0,
      tool: regs.qemu ? 'QEMU dump-guest-memory' : info.format === 'elf' ? "the kernel's /proc/vmcore (kexec), or a copy of it" : 'makedumpfile or a compatible writer',
      compression: info.compression,
    },
  };

  let records: KernelLogRecord[] = [];
  try {
    const log = await readKernelLogOf(reader);
    records = log.records;
    t.log = { format: log.format, records: log.records.length, lost: log.lost, inFlight: log.inFlight, warnings: log.warnings };
  } catch (err) {
    t.logError = (err as Error).message;
  }
  const last = records[records.length - 1];
  if (last) t.uptime = { sec: last.sec, nsec: last.nsec };
  const { panic, cause } = crashLines(records);
  if (panic >= 0) {
    t.panic = lineOf(records[panic]!);
    t.cause = lineOf(records[cause]!);
    t.before = records.slice(Math.max(0, cause - BEFORE), cause).map(lineOf);
  }
  t.cpu = crashingCpu(records, panic, cause, regs.cpus);
  return t;
}
