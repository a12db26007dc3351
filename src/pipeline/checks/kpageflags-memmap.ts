/** kpageflags-memmap: kpageflags disagrees with mem_map. */
import { PfnState } from '../../formats/types.js';
import { Reason } from '../../classify/reasons.js';
import { kpfToProps, KPF } from '../../classify/kpageflags.js';
import { Prop } from '../../kernel/props.js';
import { NEED_MEMMAP, Tally, type Check, type CheckWindow } from './check.js';

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
export const KPF_DRIFT_PAGES = 16;
export const KPF_DRIFT_SHARE = 0.0001;

export const kpageflagsMemmap: Check = {
  id: 'kpageflags-memmap',
  title: 'kpageflags disagrees with mem_map',
  severity: 'error',
  why: 'Both come from the same struct page (KPF_OFFLINE from PageOffline, KPF_BUDDY from free blocks, KPF_SLAB from slab pages, KPF_NOPAGE for memory without an online memmap). If a snapshot of /proc/kpageflags and the dump disagree, one of them is not from this boot or the flags changed under the dump.',
  needs: (x) => (!x.kpageflags ? 'needs --flags FILE.kpageflags' : !x.memmap ? NEED_MEMMAP : undefined),
  start(x) {
    const table = x.kpageflags!;
    const hard = new Tally(x.maxRanges);
    const drift = new Tally(x.maxRanges);
    const lo = new Uint32Array(0x8000);
    const hi = new Uint32Array(0x8000);
    let compared = 0;
    const compare = (w: CheckWindow, i: number): { hard: boolean; drift: boolean } => {
      const k = lo[i]!;
      const kp = kpfToProps(k, hi[i]!);
      const p = w.props![i]!;
      compared++;
      const mSlab = (p & Prop.SLAB) !== 0;
      // On a slab page the kernel reports whatever its page_type bits say
      // (PageBuddy/PageOffline do not look at PG_slab before 6.10), while
      // dump filtering ignores them: compare only KPF_SLAB there. KPF_SLAB is
      // the folio's (fs/proc/page.c tests the folio), set on every page of a
      // slab, PG_slab only on its head: tails are not compared (their head is).
      const offline = !mSlab && ((kp & Prop.OFFLINE) !== 0) !== w.isOffline(i);
      const nopage = (k & (1 << KPF.NOPAGE)) !== 0 && !w.isDevice(i);
      const buddy = !mSlab && ((k & (1 << KPF.BUDDY)) !== 0) !== (w.r16[i] === Reason.FREE);
      const slab = !(p & Prop.TAIL) && ((kp & Prop.SLAB) !== 0) !== mSlab;
      return { hard: offline || nopage, drift: buddy || slab };
    };
    return {
      async scan(w) {
        const valid = await table.read(w.start, w.count, lo, hi);
        for (let i = 0; i < valid; ) {
          if (w.states[i] === PfnState.HOLE || w.props![i]! & Prop.NOMEMMAP) {
            i++;
            continue;
          }
          const c = compare(w, i);
          if (c.hard) hard.add(w.start + i, w.start + i + 1);
          else if (c.drift) drift.add(w.start + i, w.start + i + 1);
          i++;
        }
      },
      finish() {
        const tolerance = Math.max(KPF_DRIFT_PAGES, Math.round(compared * KPF_DRIFT_SHARE));
        if (drift.count === 0) return hard.result();
        if (drift.count <= tolerance) {
          return hard.result(undefined, [`${drift.count} pages changed buddy/slab state between the kpageflags snapshot and the dump (tolerated up to ${tolerance})`]);
        }
        const all = new Tally(x.maxRanges);
        for (const [s, e] of [...hard.list(), ...drift.list()].sort((a, b) => a[0] - b[0])) all.add(s, e);
        return { count: hard.count + drift.count, ranges: all.list(), moreRanges: hard.extra + drift.extra + all.extra };
      },
    };
  },
};
