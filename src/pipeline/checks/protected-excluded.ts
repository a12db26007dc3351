/** protected-excluded: protected pages a filter drops. */
import { PfnState } from '../../formats/types.js';
import { isContentReason, isStatusReason } from '../../classify/reasons.js';
import { type Check, Tally } from './check.js';

export const protectedExcluded: Check = {
  id: 'protected-excluded',
  title: 'protected pages a filter drops',
  severity: 'error',
  why: 'The kernel image (text, data, bss: the PG_reserved pages the kernel-text mapping maps) and ranges named with --protect must be in every dump unless a status rule excludes them (offline, hwpoison, free, not RAM): crash reads symbols there at start-up and stops with "page excluded" otherwise (makedumpfile issue #21: kernel bss pages with PG_lru dropped as cache). Counted here: protected pages missing from this dump without such a status, and protected pages a -d 31 content rule would drop (dumpsieve filter keeps them).',
  needs: (x) => (!x.protect ? 'no protected ranges (no kernel image found and no --protect)' : undefined),
  // A protected page must be in the dump unless a status rule excludes it
  // (offline, hwpoison, free, not RAM: correct exclusions); a page a -d 31
  // content rule would drop is counted too (dumpsieve keeps it).
  start(x) {
    const t = new Tally(x.maxRanges);
    return {
      scan(w) {
        t.addWithin(x.protect!, w, (k) => {
          const st = w.states[k];
          if (st === PfnState.HOLE || w.notRam[k] || isStatusReason(w.r31[k]!)) return false;
          return st === PfnState.ABSENT || isContentReason(w.r31[k]!);
        });
      },
      finish: () => t.result(),
    };
  },
};
