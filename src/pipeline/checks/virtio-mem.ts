/** virtio-mem: virtio-mem: unplugged memory not flagged offline. */
import { PfnState } from '../../formats/types.js';
import { Prop } from '../../kernel/props.js';
import { type Check, NEED_MEMMAP, tallying } from './check.js';

export const virtioMem: Check = {
  id: 'virtio-mem',
  title: 'virtio-mem: unplugged memory not flagged offline',
  severity: 'error',
  why: 'virtio-mem marks unplugged subblocks of online memory blocks PG_offline (fake offline). An unplugged, unflagged page is read by dump tools that do not ask the device. (Plugged pages may be offline: a balloon inflates virtio-mem memory like any other.)',
  needs: (x) => (!x.virtioMem ? 'needs a virtio-mem:FILE oracle' : !x.memmap ? NEED_MEMMAP : undefined),
  // Unplugged implies offline (or a block that is not online). Plugged pages
  // may be offline too: virtio-balloon inflates virtio-mem memory like any
  // other (seen on a real 6.1 guest), so that is no finding.
  start: (x) =>
    tallying(
      x,
      (w, i) =>
        w.states[i] !== PfnState.HOLE &&
        !(w.props![i]! & Prop.NOMEMMAP) &&
        x.virtioMem!.inDevice(w.start + i) &&
        !!w.unplugged[i] &&
        !w.isOffline(i) &&
        !w.isDevice(i),
    ),
};
