/** offline-backed: offline pages the hypervisor backs. */
import { PfnState } from '../../formats/types.js';
import { type Check, NEED_ORACLE, NEED_MEMMAP, tallying } from './check.js';

export const offlineBacked: Check = {
  id: 'offline-backed',
  title: 'offline pages the hypervisor backs',
  severity: 'error',
  why: 'A page marked PG_offline is one the guest gave back (balloon) or never onlined; if the hypervisor still backs it, the memory is leaked to the balloon or the flag is stale. Dump tools skip it, so any data there is lost from the dump.',
  needs: (x) => (!x.oracle ? NEED_ORACLE : !x.memmap ? NEED_MEMMAP : undefined),
  // Flagged offline, but the hypervisor backs it.
  start: (x) => tallying(x, (w, i) => w.states[i] !== PfnState.HOLE && w.isOffline(i) && !w.notRam[i]),
};
