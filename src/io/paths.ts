/**
 * Checks on output paths before anything is written: an output never
 * replaces an existing file without `force`, never is one of the inputs
 * (the same file by device and inode: hard links and symlinks included,
 * even with `force`), never is a directory, device or FIFO, and two outputs
 * of one run are never the same file.
 */
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

const sameFile = (a: Stats, b: Stats): boolean => a.dev === b.dev && a.ino === b.ino;

export interface OutputCheck {
  /** Paths the run will write (undefined entries are ignored). */
  outputs: ReadonlyArray<string | undefined>;
  /** Paths the run reads. */
  inputs: ReadonlyArray<string | undefined>;
  force: boolean;
}

export async function checkOutputs(c: OutputCheck): Promise<void> {
  const inputs: Array<{ path: string; st: Stats }> = [];
  for (const p of c.inputs) {
    if (p === undefined) continue;
    const st = await statOrUndefined(p);
    if (st) inputs.push({ path: p, st });
  }
  const seen: Array<{ path: string; st: Stats | undefined; abs: string }> = [];
  for (const out of c.outputs) {
    if (out === undefined) continue;
    const st = await statOrUndefined(out);
    const abs = resolve(out);
    for (const o of seen) {
      if (o.abs === abs || (st && o.st && sameFile(st, o.st))) throw new UsageError(`${out} is named as two outputs of one run`);
    }
    seen.push({ path: out, st, abs });
    if (!st) continue;
    const input = inputs.find((i) => sameFile(i.st, st));
    if (input) {
      throw new UsageError(
        input.path === out ? `${out} is the input; an output never replaces its input` : `${out} is the same file as the input ${input.path}; an output never replaces its input`,
      );
    }
    if (!st.isFile()) throw new UsageError(`${out} exists and is not a regular file`);
    if (!c.force) throw new UsageError(`${out} exists (use -f to overwrite)`);
  }
}
