/**
 * validateDump(): audit a dump's offline-page flagging against the
 * hypervisor's view (RAM oracle), a kpageflags snapshot, kexec segments
 * and protected ranges. Streams window by window; each check keeps a count
 * and the first offending pfn ranges.
 */
import type { RangeSet } from '../core/rangeset.js';
import { formatRange, RangeSetBuilder } from '../core/rangeset.js';
import { InputError, UsageError } from '../core/errors.js';
import { PfnState, type DumpReader } from '../formats/types.js';
import { Decider } from '../classify/decide.js';
import { isContentReason, isStatusReason, Reason } from '../classify/reasons.js';
import { MemMapFlagSource, type FlagSourceDescription } from '../classify/flagsource.js';
import { kpfToProps, KPF } from '../classify/kpageflags.js';
import { Prop, PropWindow } from '../kernel/props.js';
import { SECTION_IS_ONLINE, SECTION_MARKED_PRESENT, SECTION_TAINT_ZONE_DEVICE } from '../kernel/memmap.js';
import type { RamOracle } from '../ram/oracle.js';
import { findModel } from '../ram/models.js';
import { openPipelineInput, type PipelineInput } from './open.js';
import type { ByteSource } from '../io/source.js';
import { protection } from './protect.js';
import { WINDOW } from './window.js';
import { anyRam, kernelStates, markNotRam } from './scan.js';
import { openKpfTable, type KpfTable } from './flags.js';
import { CHECKS, type CheckId, type Severity } from './checks.js';
import type { KexecSegment } from '../formats/kexec-segments.js';

/** Pages read per batch by the content check. */
const CONTENT_CHUNK = 256;

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

class Tally {
  count = 0;
  private ranges = new RangeSetBuilder();
  private listed = 0;
  private lastEnd = -1;
  extra = 0;
  constructor(private readonly max: number) {}
  add(start: number, end: number): void {
    this.count += end - start;
    if (start === this.lastEnd && this.listed > 0 && this.listed <= this.max) {
      this.ranges.add(start, end);
    } else if (this.listed < this.max) {
      this.ranges.add(start, end);
      this.listed++;
    } else this.extra++;
    this.lastEnd = end;
  }
  /** Add pfns where mask[i] is set, as runs. */
  addMask(base: number, mask: Uint8Array, n: number): void {
    for (let i = 0; i < n; ) {
      if (!mask[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && mask[j]) j++;
      this.add(base + i, base + j);
      i = j;
    }
  }
  list(): Array<[number, number]> {
    return this.ranges.build().toJSON();
  }
  /** Take in another tally of the same pass: its pages counted, its listed ranges merged in order. */
  merge(o: Tally): void {
    const all = [...this.list(), ...o.list()].sort((x, y) => x[0] - y[0]);
    const count = this.count + o.count;
    const extra = this.extra + o.extra;
    this.ranges = new RangeSetBuilder();
    this.listed = 0;
    this.lastEnd = -1;
    this.count = 0;
    this.extra = 0;
    for (const [s, e] of all) this.add(s, e);
    this.count = count;
    this.extra += extra;
  }
}

/**
 * Buddy and slab states a live system changes all the time: between the
 * moment /proc/kpageflags is saved and the dump, a few pages go from free
 * to allocated or back (the saving process's own buffer, to begin with:
 * 0 to 2 pages on real guests whose last act before the dump was to copy
 * the table with a 4 KiB O_DIRECT dd). Disagreements up to this many pages
 * (or this share of the pages compared) are noted, not reported; a table
 * from another boot disagrees on far more. Offline and no-page
 * disagreements are always reported.
 */
const KPF_DRIFT_PAGES = 16;
const KPF_DRIFT_SHARE = 0.0001;

export async function validateDump(opts: ValidateOptions): Promise<ValidateReport> {
  const t0 = performance.now();
  const maxRanges = opts.maxRanges ?? 8;
  const reader = await openPipelineInput(opts.input, opts.wrapSource);
  let kpf: KpfTable | undefined;
  try {
    const info = reader.info;
    const notes: string[] = [];
    let mm: MemMapFlagSource | undefined;
    if (info.vmcoreinfo) {
      try {
        mm = await MemMapFlagSource.open(reader);
      } catch (err) {
        notes.push(`struct page not usable: ${(err as Error).message}`);
      }
    } else notes.push('no VMCOREINFO: checks that need struct page cannot run');
    if (opts.flagsTable) {
      kpf = await openKpfTable(opts.flagsTable);
      // A real table ends at the kernel's last pfn (rounded to a section);
      // memory above the memmap (QEMU's device PT_LOADs) is not the kernel's.
      const coverage = await kpfCoverage(reader, kpf, mm?.pfnLimit);
      if (coverage.missingRam > 0) {
        throw new InputError(
          `the kpageflags table has ${kpf.entries} entries but the image has RAM up to pfn 0x${(coverage.lastRam + 1).toString(16)} (${coverage.missingRam} RAM pfns not covered)`,
          { file: opts.flagsTable },
        );
      }
      if (kpf.entries < info.maxPfn) notes.push(`the kpageflags table ends at pfn 0x${kpf.entries.toString(16)}, before max_pfn 0x${info.maxPfn.toString(16)}, over holes only`);
      const limit = mm?.pfnLimit;
      if (limit !== undefined && limit < info.maxPfn) notes.push(`pfns from 0x${limit.toString(16)} on have no struct page (memory the kernel does not manage, e.g. device memory above RAM): not checked`);
      if (kpf.entries > info.maxPfn) notes.push(`the kpageflags table covers pfns up to 0x${kpf.entries.toString(16)} (rounded to a section, as the kernel does)`);
    }
    const oracle = opts.oracle;
    const xenPv = oracle ? findModel(oracle, 'xen-pv') : undefined;
    const virtioMem = oracle ? findModel(oracle, 'virtio-mem') : undefined;
    const prot = await protection(reader, mm, opts.protect);
    const protect = prot.set;
    if (!prot.image.found) notes.push(`kernel image not located: ${prot.image.why}`);
    const tallies = new Map<CheckId, Tally>();
    const tally = (id: CheckId): Tally => {
      let t = tallies.get(id);
      if (!t) tallies.set(id, (t = new Tally(maxRanges)));
      return t;
    };
    const skipped = new Map<CheckId, string>();
    const needOracle = 'needs --ram-oracle';
    const needMemmap = 'needs struct page (VMCOREINFO)';
    if (!oracle) for (const id of ['offline-backed', 'unbacked-unflagged', 'content-not-ram'] as const) skipped.set(id, needOracle);
    if (!opts.readUnbacked) skipped.set('content-not-ram', oracle ? 'needs --read-unbacked' : 'needs --ram-oracle and --read-unbacked');
    if (!mm) for (const id of ['offline-backed', 'unbacked-unflagged', 'kpageflags-memmap', 'type-overlap', 'device-in-dump', 'xen-pv-p2m', 'virtio-mem'] as const) skipped.set(id, skipped.get(id) ?? needMemmap);
    if (!xenPv) skipped.set('xen-pv-p2m', 'needs a xen-pv:FILE oracle');
    if (!virtioMem) skipped.set('virtio-mem', 'needs a virtio-mem:FILE oracle');
    if (!kpf || !mm) skipped.set('kpageflags-memmap', !kpf ? 'needs --flags FILE.kpageflags' : needMemmap);
    if (!opts.kexecSegments) skipped.set('kexec-overlap', 'needs --kexec-segments FILE');
    if (!protect) skipped.set('protected-excluded', 'no protected ranges (no kernel image found and no --protect)');
    if (opts.balloonPages === undefined) skipped.set('offline-total', 'needs --balloon-size');

    const maxPfn = info.maxPfn;
    const states = new Uint8Array(WINDOW);
    const win = new PropWindow(WINDOW);
    const d31 = new Decider(31, mm?.freeAreaLength);
    const d16 = new Decider(16, mm?.freeAreaLength);
    const r31 = new Uint8Array(WINDOW);
    const r16 = new Uint8Array(WINDOW);
    /** States with every RAM pfn present: what a filter of the full image would decide for pages this dump lacks. */
    const full = new Uint8Array(WINDOW);
    const notRam = new Uint8Array(WINDOW);
    const p2mInvalid = new Uint8Array(WINDOW);
    const unplugged = new Uint8Array(WINDOW);
    const mask = new Uint8Array(WINDOW);
    const kLo = new Uint32Array(WINDOW);
    const kHi = new Uint32Array(WINDOW);
    const chunk = new Uint8Array(CONTENT_CHUNK * info.pageSize);
    const chunkBuf = Buffer.from(chunk.buffer);
    const zero = Buffer.alloc(info.pageSize);
    let offlinePages = 0;
    let unbackedFree = 0;
    const kpfDrift = new Tally(maxRanges);
    const kpfMask = new Uint8Array(WINDOW);
    let kpfCompared = 0;

    for (let w = 0; w < maxPfn; w += WINDOW) {
      const n = Math.min(WINDOW, maxPfn - w);
      opts.onProgress?.({ phase: 'validate', done: w, total: maxPfn });
      await kernelStates(reader, mm?.pfnLimit, w, n, states);
      if (!anyRam(states, n)) continue;
      let pw: PropWindow | null = null;
      if (mm) {
        win.reset(w, n);
        await mm.fill(win);
        pw = win;
      }
      for (let i = 0; i < n; i++) full[i] = states[i] === PfnState.HOLE ? PfnState.HOLE : PfnState.PRESENT;
      d31.decide(full, pw, w, n, r31);
      d16.decide(states, pw, w, n, r16);
      const props = pw?.props;
      const isOffline = (i: number): boolean => !!props && (props[i]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)) !== 0;
      const isDevice = (i: number): boolean => {
        if (props && props[i]! & Prop.DEVICE) return true;
        if (!mm || mm.memmap.model === 'flatmem') return false;
        const f = mm.memmap.flagsOf(w + i);
        return (f & SECTION_TAINT_ZONE_DEVICE) !== 0 || ((f & SECTION_MARKED_PRESENT) !== 0 && (f & SECTION_IS_ONLINE) === 0);
      };
      if (props) for (let i = 0; i < n; i++) if (states[i] !== PfnState.HOLE && isOffline(i)) offlinePages++;

      // Oracle answers (not counted: this is an audit, not a dump run).
      notRam.fill(0, 0, n);
      p2mInvalid.fill(0, 0, n);
      unplugged.fill(0, 0, n);
      if (oracle) {
        markNotRam(oracle, w, n, states, notRam);
        if (xenPv) markNotRam(xenPv, w, n, states, p2mInvalid);
        if (virtioMem) markNotRam(virtioMem, w, n, states, unplugged);
      }

      if (oracle && props) {
        // offline-backed: flagged offline, but the hypervisor backs it.
        mask.fill(0, 0, n);
        for (let i = 0; i < n; i++) if (states[i] !== PfnState.HOLE && isOffline(i) && !notRam[i]) mask[i] = 1;
        tally('offline-backed').addMask(w, mask, n);
        // unbacked-unflagged: not RAM, not offline, not device memory, and
        // not free: free pages the guest reported to the host (free page
        // reporting) are legitimately unbacked, and -d 16 skips them.
        mask.fill(0, 0, n);
        for (let i = 0; i < n; i++) {
          if (states[i] === PfnState.HOLE || !notRam[i] || isOffline(i) || isDevice(i)) continue;
          if (r16[i] === Reason.FREE) unbackedFree++;
          else mask[i] = 1;
        }
        tally('unbacked-unflagged').addMask(w, mask, n);
      }
      if (xenPv && props) {
        // Within RAM sections with a memmap: offline ⇔ P2M invalid.
        mask.fill(0, 0, n);
        for (let i = 0; i < n; i++) {
          if (states[i] === PfnState.HOLE || props[i]! & Prop.NOMEMMAP || isDevice(i)) continue;
          if (isOffline(i) !== !!p2mInvalid[i]) mask[i] = 1;
        }
        tally('xen-pv-p2m').addMask(w, mask, n);
      }
      if (virtioMem && props) {
        // Unplugged ⇒ offline (or the block is not online). Plugged pages
        // may be offline too: virtio-balloon inflates virtio-mem memory like
        // any other (seen on a real 6.1 guest), so that is no finding.
        mask.fill(0, 0, n);
        for (let i = 0; i < n; i++) {
          if (states[i] === PfnState.HOLE || props[i]! & Prop.NOMEMMAP) continue;
          if (!virtioMem.inDevice(w + i)) continue;
          if (unplugged[i] && !isOffline(i) && !isDevice(i)) mask[i] = 1;
        }
        tally('virtio-mem').addMask(w, mask, n);
      }
      if (kpf && props) {
        const valid = await kpf.read(w, n, kLo, kHi);
        mask.fill(0, 0, n);
        kpfMask.fill(0, 0, n);
        for (let i = 0; i < valid; i++) {
          if (states[i] === PfnState.HOLE) continue;
          const lo = kLo[i]!;
          const kp = kpfToProps(lo, kHi[i]!);
          const p = props[i]!;
          if (p & Prop.NOMEMMAP) continue;
          kpfCompared++;
          const kOff = (kp & Prop.OFFLINE) !== 0;
          const mOff = isOffline(i);
          const kBuddy = (lo & (1 << KPF.BUDDY)) !== 0;
          const mBuddy = r16[i] === Reason.FREE;
          const kNopage = (lo & (1 << KPF.NOPAGE)) !== 0;
          const kSlab = (kp & Prop.SLAB) !== 0;
          const mSlab = (p & Prop.SLAB) !== 0;
          // On a slab page the kernel reports whatever its page_type bits
          // say (PageBuddy/PageOffline do not look at PG_slab before 6.10),
          // while dump filtering ignores them: compare only KPF_SLAB there.
          // KPF_SLAB is the folio's (fs/proc/page.c tests the folio), set on
          // every page of a slab, PG_slab only on its head: tails are not
          // compared (their head is).
          if (!mSlab && kOff !== mOff) mask[i] = 1;
          if (kNopage && !isDevice(i)) mask[i] = 1;
          if ((!mSlab && kBuddy !== mBuddy) || (!(p & Prop.TAIL) && kSlab !== mSlab)) kpfMask[i] = 1;
        }
        tally('kpageflags-memmap').addMask(w, mask, valid);
        kpfDrift.addMask(w, kpfMask, valid);
      }
      if (props) {
        mask.fill(0, 0, n);
        for (let i = 0; i < n; i++) if (states[i] !== PfnState.HOLE && props[i]! & Prop.TYPE_OVERLAP) mask[i] = 1;
        tally('type-overlap').addMask(w, mask, n);
        // device-in-dump: ZONE_DEVICE sections inside a PT_LOAD.
        mask.fill(0, 0, n);
        for (let i = 0; i < n; i++) if (states[i] !== PfnState.HOLE && isDevice(i)) mask[i] = 1;
        tally('device-in-dump').addMask(w, mask, n);
      }
      if (oracle && opts.readUnbacked) {
        // content-not-ram: unbacked pfns must read as zeros in a /proc/vmcore copy.
        mask.fill(0, 0, n);
        const ps = info.pageSize;
        for (let i = 0; i < n; ) {
          if (!notRam[i] || states[i] !== PfnState.PRESENT) {
            i++;
            continue;
          }
          let j = i + 1;
          while (j < n && j - i < CONTENT_CHUNK && notRam[j] && states[j] === PfnState.PRESENT) j++;
          await reader.readPages(w + i, j - i, chunk);
          for (let k = i; k < j; k++) if (chunkBuf.compare(zero, 0, ps, (k - i) * ps, (k - i + 1) * ps) !== 0) mask[k] = 1;
          i = j;
        }
        tally('content-not-ram').addMask(w, mask, n);
      }
      if (protect) {
        // A protected page must be in the dump unless a status rule excludes
        // it (offline, hwpoison, free, not RAM: correct exclusions); a page a
        // -d 31 content rule would drop is counted too (dumpsieve keeps it).
        mask.fill(0, 0, n);
        for (const r of protect.within(w, w + n)) {
          for (let i = r.start - w; i < r.end - w; i++) {
            const st = states[i];
            if (st === PfnState.HOLE || notRam[i] || isStatusReason(r31[i]!)) continue;
            if (st === PfnState.ABSENT || isContentReason(r31[i]!)) mask[i] = 1;
          }
        }
        tally('protected-excluded').addMask(w, mask, n);
      }
    }

    if (kpfDrift.count > 0) {
      const tolerance = Math.max(KPF_DRIFT_PAGES, Math.round(kpfCompared * KPF_DRIFT_SHARE));
      if (kpfDrift.count > tolerance) tally('kpageflags-memmap').merge(kpfDrift);
      else notes.push(`${kpfDrift.count} pages changed buddy/slab state between the kpageflags snapshot and the dump (tolerated up to ${tolerance})`);
    }

    if (opts.kexecSegments) {
      // Kexec segments must not cover ballooned (unbacked) or offline pfns.
      const t = tally('kexec-overlap');
      await checkKexec(reader, mm, oracle, opts.kexecSegments, t);
    }

    const findings: Finding[] = [];
    const checks: CheckRun[] = [];
    for (const def of CHECKS) {
      if (def.id === 'offline-total') {
        if (opts.balloonPages === undefined) {
          checks.push({ id: def.id, title: def.title, ran: false, skipped: skipped.get(def.id), count: 0 });
          continue;
        }
        const diff = Math.abs(offlinePages - opts.balloonPages);
        const tolerance = Math.max(512, Math.round(opts.balloonPages * 0.01));
        const bad = diff > tolerance;
        checks.push({ id: def.id, title: def.title, ran: true, count: bad ? diff : 0 });
        if (bad) {
          findings.push({
            id: def.id,
            title: def.title,
            severity: def.severity,
            count: diff,
            ranges: [],
            moreRanges: 0,
            why: def.why,
            detail: `${offlinePages} pages flagged offline, balloon holds ${opts.balloonPages} pages (difference ${diff}, tolerance ${tolerance})`,
          });
        }
        continue;
      }
      const skip = skipped.get(def.id);
      const t = tallies.get(def.id);
      checks.push({ id: def.id, title: def.title, ran: !skip, skipped: skip, count: skip ? 0 : t?.count ?? 0 });
      if (skip || !t || t.count === 0) continue;
      findings.push({ id: def.id, title: def.title, severity: def.severity, count: t.count, ranges: t.list(), moreRanges: t.extra, why: def.why });
    }
    return {
      input: { file: info.file, format: info.format, maxPfn, pageSize: info.pageSize, osrelease: info.vmcoreinfo?.osrelease },
      classification: mm?.describe(),
      oracle: oracle?.name,
      checks,
      findings,
      failed: findings.some((f) => f.severity === 'error'),
      notes: [
        ...notes,
        ...(offlinePages ? [`${offlinePages} pages flagged offline`] : []),
        ...(unbackedFree ? [`${unbackedFree} free pages are not backed (reported to the host); -d 16 skips them, a plain copy reads them`] : []),
      ],
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await kpf?.close();
    await reader.close();
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

async function checkKexec(reader: DumpReader, mm: MemMapFlagSource | undefined, oracle: RamOracle | undefined, segs: readonly KexecSegment[], t: Tally): Promise<void> {
  const ps = reader.info.pageSize;
  const win = new PropWindow(WINDOW);
  const states = new Uint8Array(WINDOW);
  for (const s of segs) {
    const start = Math.floor(s.mem / ps);
    const end = Math.ceil((s.mem + s.memsz) / ps);
    if (end <= start) throw new UsageError(`kexec segment at 0x${s.mem.toString(16)} is empty`);
    for (let w = start; w < end; w += WINDOW) {
      const n = Math.min(WINDOW, end - w);
      await reader.pfnStates(w, n, states);
      let props: Uint16Array | undefined;
      if (mm) {
        win.reset(w, n);
        await mm.fill(win);
        props = win.props;
      }
      for (let i = 0; i < n; ) {
        const bad = (k: number): boolean =>
          (!!props && (props[k]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)) !== 0) ||
          (oracle !== undefined && states[k] !== PfnState.HOLE && !oracle.span(w + k, w + k + 1).ram);
        if (!bad(i)) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < n && bad(j)) j++;
        t.add(w + i, w + j);
        i = j;
      }
    }
  }
}

export function describeRanges(f: Finding): string {
  const parts = f.ranges.map(([s, e]) => formatRange(s, e));
  if (f.moreRanges) parts.push(`… (+${f.moreRanges} more)`);
  return parts.join(' ');
}
