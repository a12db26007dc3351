/** kexec-overlap: kexec segments over ballooned or offline pfns. */
import { UsageError } from '../../core/errors.js';
import { RangeSet } from '../../core/rangeset.js';
import { PfnState } from '../../formats/types.js';
import { Tally, type Check } from './check.js';

export const kexecOverlap: Check = {
  id: 'kexec-overlap',
  title: 'kexec segments over ballooned or offline pfns',
  severity: 'error',
  why: 'kexec loads its segments into guest-physical memory; in a ballooned Xen guest those pfns must be populated (balloon_populate_range) and kept out of the balloon. A segment over a ballooned pfn is written into memory the hypervisor does not back: kexec fails or the new kernel reads garbage.',
  needs: (x) => (!x.kexecSegments ? 'needs --kexec-segments FILE' : undefined),
  start(x) {
    // Segments as pfn ranges; a pfn under a segment must be neither offline nor unbacked.
    const ps = x.reader.info.pageSize;
    const segs = RangeSet.from(
      x.kexecSegments!.map((s) => {
        const start = Math.floor(s.mem / ps);
        const end = Math.ceil((s.mem + s.memsz) / ps);
        if (end <= start) throw new UsageError(`kexec segment at 0x${s.mem.toString(16)} is empty`);
        return { start, end };
      }),
    );
    const t = new Tally(x.maxRanges);
    return {
      scan(w) {
        t.addWithin(segs, w, (k) => w.isOffline(k) || (w.states[k] !== PfnState.HOLE && !!w.notRam[k]));
      },
      finish: () => t.result(),
    };
  },
};
