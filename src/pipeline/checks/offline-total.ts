/** offline-total: offline pages do not add up to the balloon size. */
import { PfnState } from '../../formats/types.js';
import { type Check, NEED_MEMMAP } from './check.js';

export const offlineTotal: Check = {
  id: 'offline-total',
  title: 'offline pages do not add up to the balloon size',
  severity: 'warning',
  why: 'Every page a balloon holds is PG_offline, so their count should match the balloon size (virtio-balloon num_pages, Xen balloon_low + balloon_high, hv_balloon num_pages_ballooned). A large difference means unflagged balloon pages or stale flags.',
  needs: (x) => (x.balloonPages === undefined ? 'needs --balloon-size' : !x.memmap ? NEED_MEMMAP : undefined),
  start(x) {
    let offline = 0;
    return {
      scan(w) {
        for (let i = 0; i < w.count; i++) if (w.states[i] !== PfnState.HOLE && w.isOffline(i)) offline++;
      },
      finish() {
        const want = x.balloonPages!;
        const diff = Math.abs(offline - want);
        const tolerance = Math.max(512, Math.round(want * 0.01));
        const detail = `${offline} pages flagged offline, balloon holds ${want} pages (difference ${diff}, tolerance ${tolerance})`;
        return { count: diff > tolerance ? diff : 0, ranges: [], moreRanges: 0, detail };
      },
    };
  },
};
