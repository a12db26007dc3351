/**
 * The kernel log of real guests: `dmesg` read from QEMU's dump is what
 * the guest's own serial console printed (booted with loglevel=8, so every
 * record reaches the console, and printk.time=1), line for line, up to the
 * records the console had not printed yet when the guest was paused; on
 * every kernel (5.10, 6.1, 6.12) it equals makedumpfile 1.7.2's --dump-dmesg of the same dump
 * exactly. The log also comes out the same from dumpsieve's -d 31 output.
 *
 * The console is a lossy witness: under TCG on a busy host QEMU's 8250
 * UART drops bytes its character backend does not take in time ("ACP: IRQ5"
 * for "ACPI: IRQ5"), and now and then a whole line. So a console line must
 * be the dump's line with at most a few bytes missing (a subsequence of
 * it), or, a few times at most, the start of one of its lines and the end
 * of a later one where the UART lost what lay between (line ends
 * included); the lines in the same order, and almost every line must match
 * exactly; a line the dump does not hold fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { readKernelLog } from '../../src/pipeline/dmesg.js';
import { renderDmesg } from '../../src/report/dmesg-text.js';
import { filterDump } from '../../src/pipeline/filter.js';
import { havePeers } from '../interop/peers.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { CI_GUESTS, loadGuest, normalizedCopy } from './real.js';

/** A console line of the kernel's (its timestamp possibly missing a byte the UART dropped). */
const STAMPED = /^\[\s*\d+\.\d{5,6}\]/;

/** The kernel's lines of the serial console log (the harness's own "@@DS" lines and user space left out). */
function consoleKernelLines(path: string): string[] {
  return readFileSync(path, 'latin1')
    .split(/\r?\n/)
    .filter((l) => STAMPED.test(l) && !l.includes('@@DS'));
}

/** Whether `a` can be made from `b` by dropping at most `max` bytes. */
function droppedFrom(a: string, b: string, max: number): boolean {
  if (a.length > b.length || b.length - a.length > max) return false;
  let j = 0;
  for (let i = 0; i < b.length && j < a.length; i++) if (b[i] === a[j]) j++;
  return j === a.length;
}

/**
 * Whether the console line is two of the dump's lines spliced where the
 * UART lost the bytes between them, line ends included: it begins with
 * the start of `a` (its timestamp and more) and ends with the end of `b`.
 */
function spliced(line: string, a: string, b: string): boolean {
  // The timestamp's closing bracket, not the space after it: the UART may
  // lose that space with the rest ("[    2.409358]locksource: …", the end
  // of "[    3.938030] clocksource: …" after a lost line).
  const ts = /^\[\s*\d+\.\d{6}\]/.exec(a)?.[0].length ?? 0;
  if (ts === 0 || !line.startsWith(a.slice(0, ts))) return false;
  let head = ts;
  while (head < line.length && head < a.length && line[head] === a[head]) head++;
  const tail = line.length - head;
  return tail >= 8 && tail < b.length && b.endsWith(line.slice(head));
}

/**
 * Match console lines to the dump's lines in order: each console line is
 * the next dump line, or one a few lines on (the console dropped some),
 * with at most 32 bytes lost; or two of them spliced where the UART lost
 * the bytes between (counted apart: `spliced`).
 */
function alignConsole(printed: readonly string[], ours: readonly string[]): { lines: number; exact: number; spliced: string[]; unmatched: string[] } {
  const AHEAD = 16;
  let k = 0;
  let exact = 0;
  const joined: string[] = [];
  const unmatched: string[] = [];
  for (const line of printed) {
    let hit = -1;
    for (let d = 0; d < AHEAD && k + d < ours.length && hit < 0; d++) {
      const o = ours[k + d]!;
      // The UART loses up to its 16-byte FIFO at a time: two bursts a line at most.
      if (line === o || droppedFrom(line, o, 32)) hit = k + d;
    }
    if (hit < 0) {
      for (let d = 0; d < AHEAD && k + d < ours.length && hit < 0; d++) {
        for (let e = d + 1; e < d + 4 * AHEAD && k + e < ours.length && hit < 0; e++) {
          if (spliced(line, ours[k + d]!, ours[k + e]!)) hit = k + e;
        }
      }
      if (hit >= 0) joined.push(line);
    }
    if (hit < 0) {
      unmatched.push(line);
      continue;
    }
    if (line === ours[hit]) exact++;
    k = hit + 1;
  }
  return { lines: printed.length, exact, spliced: joined, unmatched };
}

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-real-dmesg-');
});
afterAll(() => dir?.remove());

describe.each(CI_GUESTS.map((n) => [n]))('%s', (name) => {
  const g = loadGuest(name);

  it('dmesg equals the guest serial console, line for line', async () => {
    const log = await readKernelLog(g.elf);
    // Every guest here is 5.10 or later: the lockless ring.
    expect(log.format).toBe('lockless');
    const ours = renderDmesg(log, { style: 'console' }).split('\n').filter(Boolean);
    const seen = consoleKernelLines(`${g.dir}/${g.truth.files.console}`);
    expect(seen.length).toBeGreaterThan(200);
    // The ring may have lost its first records; the console may lag at the end.
    const at = seen.indexOf(ours[0]!);
    expect(at, `the log's first line is on the console: ${ours[0]}`).toBeGreaterThanOrEqual(0);
    const m = alignConsole(seen.slice(at), ours);
    expect(m.unmatched, `console lines the dump does not hold: ${m.unmatched.slice(0, 3).join(' | ')}`).toEqual([]);
    expect(m.spliced.length, `console lines spliced by the UART: ${m.spliced.join(' | ')}`).toBeLessThanOrEqual(3);
    expect(m.exact / m.lines).toBeGreaterThan(0.97);
    // Lines the console never printed (dropped, or not yet printed at the pause) are few.
    expect(ours.length - m.lines).toBeLessThan(80);
  });

  it('the log from the -d 31 kdump output equals the log from the dump', async () => {
    const out = dir.file(`${name}.kdump`);
    await filterDump({ input: g.elf, output: out, dumpLevel: 31, codec: 'lzo' });
    const a = renderDmesg(await readKernelLog(g.elf));
    const b = renderDmesg(await readKernelLog(out));
    expect(b).toBe(a);
  });

  it.runIf(havePeers('real guests: makedumpfile --dump-dmesg', 'makedumpfile'))('equals makedumpfile --dump-dmesg', async () => {
    const elf = normalizedCopy(g.elf, dir.file(`${name}.elf`));
    const txt = dir.file(`${name}.dmesg`);
    const r = spawnSync('makedumpfile', ['--dump-dmesg', elf, txt], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const theirs = await readFile(txt, 'latin1');
    const ours = renderDmesg(await readKernelLog(g.elf));
    expect(ours.split('\n')).toEqual(theirs.split('\n'));
  });
});
