/**
 * validateDump(): audit a dump's offline-page flagging against the
 * hypervisor's view (RAM oracle), a kpageflags snapshot, kexec segments
 * and protected ranges. One window scan feeds every check that can run
 * with the inputs given (pipeline/checks/: one module per check); each
 * keeps a count and the first offending pfn ranges.
 */
import type { RangeSet } from '../core/rangeset.js';
import { DumpError, InputError } from '../core/errors.js';
import { PfnState, type DumpReader } from '../formats/types.js';
import { Decider } from '../classify/decide.js';
import { MemMapFlagSource, type FlagSourceDescription } from '../classify/flagsource.js';
import { Prop } from '../kernel/props.js';
import { SECTION_IS_ONLINE, SECTION_MARKED_PRESENT, SECTION_TAINT_ZONE_DEVICE } from '../kernel/memmap.js';
import type { RamOracle } from '../ram/oracle.js';
import { findModel } from '../ram/models.js';
import { openPipelineInput, type PipelineInput } from './open.js';
import type { ByteSource } from '../io/source.js';
import { protection } from './protect.js';
import { kernelStates, markNotRam, WINDOW, WindowScan, type ScanWindow } from './scan.js';
import { openKpfTable, type KpfTable } from './flags.js';
import { CHECKS, type CheckId, type CheckInputs, type CheckWindow, type Severity } from './checks/index.js';
import type { KexecSegment } from '../formats/kexec-segments.js';
import { nowMs } from '../core/clock.js';

export type { KexecSegment };

export interface ValidateOptions {
  /** A dump, the parts of a split set, `-`, a spec with a work directory (see pipeline/input.ts), or an open source. */
  input: PipelineInput;
  /** Wrap the input source (tests: count what is read). */
  wrapSource?: ((src: ByteSource) => ByteSource) | undefined;
  oracle?: RamOracle | undefined;
  flagsTable?: string | undefined;
  kexecSegments?: readonly KexecSegment[] | undefined;
  protect?: RangeSet | undefined;
  /** Expected balloon size in pages (virtio-balloon num_pages, Xen balloon_low+high, ...). */
  balloonPages?: number | undefined;
  /**
   * Run content-not-ram: read the pages the oracle calls not RAM to see
   * that they hold zeros. Off by default: every other check reads no page
   * a status rule excludes, and this one exists to audit a copy.
   */
  readUnbacked?: boolean | undefined;
  /** Ranges listed per finding (default 8). */
  maxRanges?: number | undefined;
  onProgress?: ((p: { phase: string; done: number; total: number }) => void) | undefined;
}

export interface Finding {
  id: CheckId;
  title: string;
  severity: Severity;
  /** Offending pages (or segments, for kexec). */
  count: number;
  /** First offending pfn ranges, [start, end). */
  ranges: Array<[number, number]>;
  /** Ranges beyond those listed. */
  moreRanges: number;
  why: string;
  detail?: string | undefined;
}

export interface CheckRun {
  id: CheckId;
  title: string;
  /** Whether the inputs allowed the check to run, and if not why. */
  ran: boolean;
  skipped?: string | undefined;
  count: number;
}

export interface ValidateReport {
  input: { file: string; format: string; maxPfn: number; pageSize: number; osrelease?: string | undefined };
  classification?: FlagSourceDescription | undefined;
  oracle?: string | undefined;
  checks: CheckRun[];
  findings: Finding[];
  /** True when an error-severity check failed. */
  failed: boolean;
  notes: string[];
  seconds: number;
}

export async function validateDump(opts: ValidateOptions): Promise<ValidateReport> {
  const t0 = nowMs();
  const reader = await openPipelineInput(opts.input, opts.wrapSource);
  let kpageflags: KpfTable | undefined;
  try {
    const notes: string[] = [];
    const memmap = await openMemmap(reader, notes);
    if (opts.flagsTable) kpageflags = await openCheckedTable(reader, opts.flagsTable, memmap, notes);
    const prot = await protection(reader, memmap, opts.protect);
    if (!prot.image.found) notes.push(`kernel image not located: ${prot.image.why}`);
    const oracle = opts.oracle;
    const inputs: CheckInputs = {
      reader,
      memmap,
      oracle,
      xenPv: oracle ? findModel(oracle, 'xen-pv') : undefined,
      virtioMem: oracle ? findModel(oracle, 'virtio-mem') : undefined,
      kpageflags,
      kexecSegments: opts.kexecSegments,
      protect: prot.set,
      balloonPages: opts.balloonPages,
      readUnbacked: opts.readUnbacked ?? false,
      maxRanges: opts.maxRanges ?? 8,
    };
    const running = CHECKS.map((check) => ({ check, skipped: check.needs(inputs) }));
    const scanners = running.map((r) => (r.skipped === undefined ? r.check.start(inputs) : undefined));
    const scan = new WindowScan(reader, memmap);
    const windows = new CheckWindows(inputs);
    for await (const w of scan.windows((p) => opts.onProgress?.({ phase: 'validate', ...p }))) {
      if (!w.ram) continue;
      const cw = windows.prepare(w);
      for (const s of scanners) await s?.scan?.(cw);
    }
    const checks: CheckRun[] = [];
    const findings: Finding[] = [];
    running.forEach(({ check, skipped }, k) => {
      const res = scanners[k]?.finish();
      checks.push({ id: check.id, title: check.title, ran: skipped === undefined, skipped, count: res?.count ?? 0 });
      if (res?.notes) notes.push(...res.notes);
      if (!res || res.count === 0) return;
      findings.push({ id: check.id, title: check.title, severity: check.severity, count: res.count, ranges: res.ranges, moreRanges: res.moreRanges, why: check.why, detail: res.detail });
    });
    if (windows.offlinePages) notes.push(`${windows.offlinePages} pages flagged offline`);
    const info = reader.info;
    return {
      input: { file: info.file, format: info.format, maxPfn: info.maxPfn, pageSize: info.pageSize, osrelease: info.vmcoreinfo?.osrelease },
      classification: memmap?.describe(),
      oracle: oracle?.name,
      checks,
      findings,
      failed: findings.some((f) => f.severity === 'error'),
      notes,
      seconds: (nowMs() - t0) / 1000,
    };
  } finally {
    await kpageflags?.close();
    await reader.close();
  }
}

/** struct page from VMCOREINFO, or undefined with a note saying why not. */
async function openMemmap(reader: DumpReader, notes: string[]): Promise<MemMapFlagSource | undefined> {
  if (!reader.info.vmcoreinfo) {
    notes.push('no VMCOREINFO: checks that need struct page cannot run');
    return undefined;
  }
  try {
    return await MemMapFlagSource.open(reader);
  } catch (err) {
    if (!(err instanceof DumpError)) throw err;
    notes.push(`struct page not usable: ${err.message}`);
    return undefined;
  }
}

/** A kpageflags table that covers the image's RAM (refused otherwise), with notes on its extent. */
async function openCheckedTable(reader: DumpReader, file: string, memmap: MemMapFlagSource | undefined, notes: string[]): Promise<KpfTable> {
  const kpf = await openKpfTable(file);
  const info = reader.info;
  // A real table ends at the kernel's last pfn (rounded to a section);
  // memory above the memmap (QEMU's device PT_LOADs) is not the kernel's.
  const limit = memmap?.pfnLimit;
  const coverage = await kpfCoverage(reader, kpf, limit);
  if (coverage.missingRam > 0) {
    await kpf.close();
    throw new InputError(
      `the kpageflags table has ${kpf.entries} entries but the image has RAM up to pfn 0x${(coverage.lastRam + 1).toString(16)} (${coverage.missingRam} RAM pfns not covered)`,
      { file },
    );
  }
  if (kpf.entries < info.maxPfn) notes.push(`the kpageflags table ends at pfn 0x${kpf.entries.toString(16)}, before max_pfn 0x${info.maxPfn.toString(16)}, over holes only`);
  if (limit !== undefined && limit < info.maxPfn) notes.push(`pfns from 0x${limit.toString(16)} on have no struct page (memory the kernel does not manage, e.g. device memory above RAM): not checked`);
  if (kpf.entries > info.maxPfn) notes.push(`the kpageflags table covers pfns up to 0x${kpf.entries.toString(16)} (rounded to a section, as the kernel does)`);
  return kpf;
}

/**
 * What the checks share per window, computed once: the -d 31 and -d 16
 * decisions and the oracle's answers (an audit: no question is counted).
 */
class CheckWindows {
  private readonly d31: Decider;
  private readonly d16: Decider;
  private readonly full = new Uint8Array(WINDOW);
  private readonly w: CheckWindow;
  offlinePages = 0;

  constructor(private readonly x: CheckInputs) {
    this.d31 = new Decider(31, x.memmap?.freeAreaLength);
    this.d16 = new Decider(16, x.memmap?.freeAreaLength);
    const mm = x.memmap;
    const w: CheckWindow = {
      start: 0,
      count: 0,
      states: new Uint8Array(0),
      props: null,
      r31: new Uint8Array(WINDOW),
      r16: new Uint8Array(WINDOW),
      notRam: new Uint8Array(WINDOW),
      p2mInvalid: new Uint8Array(WINDOW),
      unplugged: new Uint8Array(WINDOW),
      isOffline: (i) => w.props !== null && (w.props[i]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)) !== 0,
      isDevice: (i) => {
        if (w.props && w.props[i]! & Prop.DEVICE) return true;
        if (!mm || mm.memmap.model === 'flatmem') return false;
        const f = mm.memmap.flagsOf(w.start + i);
        return (f & SECTION_TAINT_ZONE_DEVICE) !== 0 || ((f & SECTION_MARKED_PRESENT) !== 0 && (f & SECTION_IS_ONLINE) === 0);
      },
    };
    this.w = w;
  }

  prepare(s: ScanWindow): CheckWindow {
    const { w, x } = this;
    const n = s.count;
    w.start = s.start;
    w.count = n;
    w.states = s.states;
    w.props = s.props?.props ?? null;
    for (let i = 0; i < n; i++) this.full[i] = s.states[i] === PfnState.HOLE ? PfnState.HOLE : PfnState.PRESENT;
    this.d31.decide(this.full, s.props, s.start, n, w.r31);
    this.d16.decide(s.states, s.props, s.start, n, w.r16);
    for (const [arr, model] of [
      [w.notRam, x.oracle],
      [w.p2mInvalid, x.xenPv],
      [w.unplugged, x.virtioMem],
    ] as const) {
      arr.fill(0, 0, n);
      if (model) markNotRam(model, s.start, n, s.states, arr);
    }
    if (w.props) for (let i = 0; i < n; i++) if (s.states[i] !== PfnState.HOLE && w.isOffline(i)) this.offlinePages++;
    return w;
  }
}

async function kpfCoverage(reader: DumpReader, kpf: KpfTable, limit: number | undefined): Promise<{ lastRam: number; missingRam: number }> {
  const states = new Uint8Array(WINDOW);
  let lastRam = -1;
  let missing = 0;
  const max = reader.info.maxPfn;
  for (let w = Math.floor(kpf.entries / WINDOW) * WINDOW; w < max; w += WINDOW) {
    const n = Math.min(WINDOW, max - w);
    await kernelStates(reader, limit, w, n, states);
    for (let i = 0; i < n; i++) {
      if (states[i] === PfnState.HOLE) continue;
      lastRam = w + i;
      if (w + i >= kpf.entries) missing++;
    }
  }
  return { lastRam, missingRam: missing };
}
