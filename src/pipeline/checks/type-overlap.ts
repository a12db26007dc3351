/** type-overlap: pages with more than one page type. */
import { PfnState } from '../../formats/types.js';
import { Prop } from '../../kernel/props.js';
import { type Check, NEED_MEMMAP, tallying } from './check.js';

export const typeOverlap: Check = {
  id: 'type-overlap',
  title: 'pages with more than one page type',
  severity: 'warning',
  why: 'Before Linux 6.12 page types were bits cleared in page_type, so a corrupt or racing struct page can claim two (buddy and offline, say); since 6.12 a page has exactly one. Dump tools decide by the first type they test, so such pages are classified arbitrarily.',
  needs: (x) => (!x.memmap ? NEED_MEMMAP : undefined),
  start: (x) => tallying(x, (w, i) => w.states[i] !== PfnState.HOLE && (w.props![i]! & Prop.TYPE_OVERLAP) !== 0),
};
