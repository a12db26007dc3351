/** unbacked-unflagged: unbacked pages not flagged offline. */
import { PfnState } from '../../formats/types.js';
import { Reason } from '../../classify/reasons.js';
import { type Check, NEED_ORACLE, NEED_MEMMAP, Tally } from './check.js';

export const unbackedUnflagged: Check = {
  id: 'unbacked-unflagged',
  title: 'unbacked pages not flagged offline',
  severity: 'error',
  why: 'The hypervisor does not back these pfns, but their struct page does not say PG_offline and they are not device memory. makedumpfile and any tool without the pfn_is_ram model will read them: the hypervisor fabricates zero pages (Xen HVM sends every 8-byte read to qemu-dm, 512 per page, at full dom0 load) or the kdump kernel crashes (Hyper-V).',
  needs: (x) => (!x.oracle ? NEED_ORACLE : !x.memmap ? NEED_MEMMAP : undefined),
  start(x) {
    // Not RAM, not offline, not device memory, and not free: free pages the
    // guest reported to the host (free page reporting) are legitimately
    // unbacked, and -d 16 skips them; they are counted in a note.
    const t = new Tally(x.maxRanges);
    let reportedFree = 0;
    return {
      scan(w) {
        t.addWhere(w, (i) => {
          if (w.states[i] === PfnState.HOLE || !w.notRam[i] || w.isOffline(i) || w.isDevice(i)) return false;
          if (w.r16[i] !== Reason.FREE) return true;
          reportedFree++;
          return false;
        });
      },
      finish: () =>
        t.result(undefined, reportedFree ? [`${reportedFree} free pages are not backed (reported to the host); -d 16 skips them, a plain copy reads them`] : []),
    };
  },
};
