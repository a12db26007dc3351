/**
 * Synthetic guests for pipeline tests, written into a per-suite temp
 * folder, plus small helpers to read dumps and derive expectations from
 * the truth manifest (never from the code under test).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize, type SynthOptions } from '../../src/synth/index.js';
import { readTruth, type TruthRun } from '../../src/synth/truth.js';
import { openDump } from '../../src/formats/registry.js';
import { PfnState } from '../../src/formats/types.js';

export interface TempDir {
  path: string;
  file(name: string): string;
  remove(): Promise<void>;
}

export async function tempDir(prefix = 'dumpsieve-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, file: (n) => join(path, n), remove: () => rm(path, { recursive: true, force: true }) };
}

export async function makeGuest(dir: TempDir, name: string, opts: Omit<SynthOptions, 'out'>): Promise<string> {
  const out = dir.file(name);
  await synthesize({ ...opts, out });
  return out;
}

/** The 2nd bitmap (or PT_LOAD coverage) of a dump: pfns with data. */
export async function presentPfns(path: string): Promise<Uint8Array> {
  const r = await openDump(path);
  try {
    const out = new Uint8Array(r.info.maxPfn);
    const st = new Uint8Array(32768);
    for (let w = 0; w < r.info.maxPfn; w += st.length) {
      const n = Math.min(st.length, r.info.maxPfn - w);
      await r.pfnStates(w, n, st);
      for (let i = 0; i < n; i++) out[w + i] = st[i] === PfnState.PRESENT ? 1 : 0;
    }
    return out;
  } finally {
    await r.close();
  }
}

/** Pages [pfn, pfn+count) of a dump. */
export async function readPages(path: string, pfn: number, count: number): Promise<Uint8Array> {
  const r = await openDump(path);
  try {
    const b = new Uint8Array(count * r.info.pageSize);
    await r.readPages(pfn, count, b);
    return b;
  } finally {
    await r.close();
  }
}

export { readTruth, type TruthRun };

/**
 * What makedumpfile's rules (and dumpsieve's) decide for a truth run at a
 * dump level, from the run's struct-page state and content alone.
 * Returns undefined where content decides and the truth cannot tell (meta).
 */
export function expectedReason(run: TruthRun, level: number): string | undefined {
  if (!run.load) return 'hole';
  const zeroOr = (kept: string): string | undefined => {
    if (run.content === 'meta') return undefined;
    return level & 1 && run.content === 'zero' ? 'zero' : kept;
  };
  switch (run.memmap) {
    case 'offline':
      return 'offline';
    case 'hwpoison':
      return 'hwpoison';
    case 'free':
      return level & 16 ? 'free' : zeroOr('kept');
    case 'cache':
      return level & 6 ? 'cache' : zeroOr('kept');
    case 'cache-private':
      return level & 4 ? 'cache-private' : zeroOr('kept');
    case 'anon':
    case 'thp':
    case 'hugetlb':
      return level & 8 ? 'user' : zeroOr('kept');
    case 'type-overlap':
      return undefined;
    default:
      return zeroOr('kept');
  }
}
