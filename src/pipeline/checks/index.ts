/**
 * The validate checks, in report order. A new check is a module here
 * (id, needs, severity, why, and a scanner per run) added to this list,
 * with its planted-fault test in test/pipeline/checks.test.ts.
 */
import type { Check } from './check.js';
import { offlineBacked } from './offline-backed.js';
import { unbackedUnflagged } from './unbacked-unflagged.js';
import { xenPvP2m } from './xen-pv-p2m.js';
import { virtioMem } from './virtio-mem.js';
import { kpageflagsMemmap } from './kpageflags-memmap.js';
import { kexecOverlap } from './kexec-overlap.js';
import { deviceInDump } from './device-in-dump.js';
import { contentNotRam } from './content-not-ram.js';
import { typeOverlap } from './type-overlap.js';
import { protectedExcluded } from './protected-excluded.js';
import { offlineTotal } from './offline-total.js';

export const CHECKS: readonly Check[] = [
  offlineBacked,
  unbackedUnflagged,
  xenPvP2m,
  virtioMem,
  kpageflagsMemmap,
  kexecOverlap,
  deviceInDump,
  contentNotRam,
  typeOverlap,
  protectedExcluded,
  offlineTotal,
];

export * from './check.js';
