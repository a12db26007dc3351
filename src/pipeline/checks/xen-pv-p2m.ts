/** xen-pv-p2m: Xen PV: PG_offline disagrees with the P2M. */
import { PfnState } from '../../formats/types.js';
import { Prop } from '../../kernel/props.js';
import { type Check, NEED_MEMMAP, tallying } from './check.js';

export const xenPvP2m: Check = {
  id: 'xen-pv-p2m',
  title: 'Xen PV: PG_offline disagrees with the P2M',
  severity: 'error',
  why: 'In a Xen PV guest the balloon driver writes INVALID_P2M_ENTRY for every pfn it hands back and marks the page PG_offline; within RAM sections the two must agree. A mismatch means ballooned pages a dump tool will read, or backed pages it will skip.',
  needs: (x) => (!x.xenPv ? 'needs a xen-pv:FILE oracle' : !x.memmap ? NEED_MEMMAP : undefined),
  // Within RAM sections with a memmap: offline if and only if the P2M entry is invalid.
  start: (x) =>
    tallying(x, (w, i) => w.states[i] !== PfnState.HOLE && !(w.props![i]! & Prop.NOMEMMAP) && !w.isDevice(i) && w.isOffline(i) !== !!w.p2mInvalid[i]),
};
