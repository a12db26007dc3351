/** device-in-dump: ZONE_DEVICE memory inside a PT_LOAD. */
import { PfnState } from '../../formats/types.js';
import { type Check, NEED_MEMMAP, tallying } from './check.js';

export const deviceInDump: Check = {
  id: 'device-in-dump',
  title: 'ZONE_DEVICE memory inside a PT_LOAD',
  severity: 'error',
  why: 'Unpopulated ranges (Xen scratch pages from unpopulated-alloc, other ZONE_DEVICE memory) are not System RAM; there is no data behind them. Listing them in the vmcore means dump tools read and store data that never existed, or fault on it.',
  needs: (x) => (!x.memmap ? NEED_MEMMAP : undefined),
  // ZONE_DEVICE sections inside a PT_LOAD.
  start: (x) => tallying(x, (w, i) => w.states[i] !== PfnState.HOLE && w.isDevice(i)),
};
