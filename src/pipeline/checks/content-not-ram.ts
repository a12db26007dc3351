/** content-not-ram: unbacked pfns with non-zero content. */
import { PfnState } from '../../formats/types.js';
import { NEED_ORACLE, Tally, type Check } from './check.js';

/** Pages read per batch. */
const CHUNK = 256;

/**
 * The one check that reads pages a status rule excludes (those the oracle
 * calls not RAM), so it runs only when asked (--read-unbacked): it audits
 * a copy of /proc/vmcore, where the kernel zero-filled such pfns.
 */
export const contentNotRam: Check = {
  id: 'content-not-ram',
  title: 'unbacked pfns with non-zero content',
  severity: 'error',
  why: 'The kernel zero-fills pfns its pfn_is_ram callbacks reject, so in a /proc/vmcore copy they read as zeros. Non-zero content there means the RAM model does not match the guest this dump came from.',
  needs: (x) => (!x.oracle ? `${NEED_ORACLE} and --read-unbacked` : !x.readUnbacked ? 'needs --read-unbacked' : undefined),
  start(x) {
    const ps = x.reader.info.pageSize;
    const chunk = Buffer.alloc(CHUNK * ps);
    const zero = Buffer.alloc(ps);
    const t = new Tally(x.maxRanges);
    return {
      async scan(w) {
        const unbacked = (k: number): boolean => !!w.notRam[k] && w.states[k] === PfnState.PRESENT;
        for (let i = 0; i < w.count; ) {
          if (!unbacked(i)) {
            i++;
            continue;
          }
          let j = i + 1;
          while (j < w.count && j - i < CHUNK && unbacked(j)) j++;
          await x.reader.readPages(w.start + i, j - i, chunk);
          for (let k = i; k < j; k++) if (chunk.compare(zero, 0, ps, (k - i) * ps, (k - i + 1) * ps) !== 0) t.add(w.start + k, w.start + k + 1);
          i = j;
        }
      },
      finish: () => t.result(),
    };
  },
};
