/**
 * The progress display: one line naming the phase and its place among the
 * run's phases, the phase's time left once it can be estimated, redrawn at
 * most every REDRAW_MS. Driven with a clock of the test's own, then seen
 * on a real pseudo-terminal (util-linux `script`).
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatTimeLeft, MIN_ETA_MS, progressDisplay, REDRAW_MS, type ProgressEvent } from '../../src/cli/progress.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';
import { ptyCli } from './run.js';

/** A display on a stream the test reads, with a clock the test sets. */
function harness(phases?: string[]) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (b: Buffer) => (text += b.toString()));
  let t = 0;
  const d = progressDisplay({ stream, columns: 80, phases, now: () => t });
  return {
    at(ms: number, e: ProgressEvent): void {
      t = ms;
      d.update(e);
    },
    stop: () => d.stop(),
    /** The lines drawn so far, without the carriage return and the erase-to-end-of-line. */
    frames: (): string[] => text.split('\r').filter((f) => f !== '' && f !== '\x1b[K').map((f) => f.replace(/\x1b\[K$/, '')),
    raw: () => text,
  };
}

describe('the line', () => {
  it('names the phase and its place among the phases, with a bar and a whole percentage', () => {
    const h = harness(['plan', 'write']);
    h.at(0, { phase: 'plan', done: 0, total: 1000 });
    h.at(200, { phase: 'plan', done: 1000, total: 1000 });
    h.at(200, { phase: 'write', done: 0, total: 1000 });
    h.at(400, { phase: 'write', done: 560, total: 1000 });
    const f = h.frames();
    expect(f[0]).toMatch(/^plan 1\/2 \[ +\] {3}0 %$/);
    expect(f[1]).toMatch(/^plan 1\/2 \[#+\] 100 %$/);
    expect(f[2]).toMatch(/^write 2\/2 \[ +\] {3}0 %$/);
    const bar = /\[(#*)( *)\]/.exec(f[3]!)!;
    expect(f[3]).toMatch(/^write 2\/2 \[#+ +\] {2}56 %$/);
    // 56 % of the bar's width, rounded down.
    expect(bar[1]!.length).toBe(Math.floor((56 * (bar[1]!.length + bar[2]!.length)) / 100));
  });

  it('phases named by the events win over the command list; a phase in no list, or the only one, has no i/n', () => {
    const h = harness(['x', 'y']);
    h.at(0, { phase: 'sample', done: 1, total: 4, phases: ['classify', 'sample'] });
    h.at(500, { phase: 'other', done: 1, total: 4 });
    const g = harness(['validate']);
    g.at(0, { phase: 'validate', done: 1, total: 4 });
    expect(h.frames()[0]).toMatch(/^sample 2\/2 \[/);
    expect(h.frames()[1]).toMatch(/^other \[/);
    expect(g.frames()[0]).toMatch(/^validate \[/);
  });

  it('the time left: elapsed time of the phase scaled by what remains, shown only after MIN_ETA_MS of the phase', () => {
    const h = harness(['write']);
    h.at(10_000, { phase: 'write', done: 0, total: 400 });
    h.at(10_000 + MIN_ETA_MS - 1, { phase: 'write', done: 40, total: 400 });
    // 1.5 s for a quarter: 4.5 s for the three quarters left, shown as 5 s.
    h.at(11_500, { phase: 'write', done: 100, total: 400 });
    // 30 s for 120: 70 s for the other 280.
    h.at(40_000, { phase: 'write', done: 120, total: 400 });
    h.at(41_000, { phase: 'write', done: 400, total: 400 });
    const f = h.frames();
    expect(f[1]).toMatch(/ {2}10 %$/);
    expect(f[2]).toMatch(/ {2}25 % 5 s$/);
    expect(f[3]).toMatch(/ {2}30 % 1 min 10 s$/);
    expect(f[4]).toMatch(/100 %$/);
  });

  it('never shows NaN, Infinity or a negative time: an empty phase, a phase with nothing done yet, done past total', () => {
    const h = harness(['a']);
    h.at(0, { phase: 'a', done: 0, total: 0 });
    h.at(5000, { phase: 'b', done: 0, total: 10 });
    h.at(9000, { phase: 'b', done: 0, total: 10 });
    h.at(9500, { phase: 'b', done: 12, total: 10 });
    const all = h.frames().join('\n');
    expect(all).not.toMatch(/NaN|Infinity|undefined|-\d/);
    expect(h.frames()[0]).toMatch(/100 %$/);
    expect(h.frames().at(-1)).toMatch(/100 %$/);
  });

  it('time left as people read it', () => {
    expect([0, 0.2, 3, 59.5, 60, 125, 3599, 3600, 4800, 100_000].map(formatTimeLeft)).toEqual([
      '0 s',
      '1 s',
      '3 s',
      '1 min 00 s',
      '1 min 00 s',
      '2 min 05 s',
      '59 min 59 s',
      '1 h 00 min',
      '1 h 20 min',
      '27 h 47 min',
    ]);
  });
});

describe('redrawing', () => {
  it('at most every REDRAW_MS within a phase, at once on a phase change and at the end of a phase', () => {
    const h = harness(['plan', 'write']);
    // An event every 10 ms, 1 pfn each, for 2 s of plan, then write.
    let t = 0;
    for (let i = 0; i <= 200; i++, t += 10) h.at(t, { phase: 'plan', done: i, total: 200 });
    h.at(t, { phase: 'write', done: 0, total: 200 });
    const f = h.frames();
    const plan = f.filter((l) => l.startsWith('plan'));
    // 2 s at one frame per REDRAW_MS, plus the 100 % frame: no more.
    expect(plan.length).toBeLessThanOrEqual(2000 / REDRAW_MS + 2);
    expect(plan.length).toBeGreaterThanOrEqual(2000 / REDRAW_MS);
    expect(plan.at(-1)).toMatch(/100 %$/);
    expect(f.at(-1)).toMatch(/^write 2\/2 .* {3}0 %$/);
  });

  it('keeps the granularity of the events it is given: 1 % events make 1 % steps', () => {
    const h = harness(['write']);
    for (let i = 0; i <= 100; i++) h.at(i * REDRAW_MS, { phase: 'write', done: i * 1000, total: 100_000 });
    const pct = h.frames().map((l) => Number(/(\d+) %/.exec(l)![1]));
    expect(pct).toEqual(Array.from({ length: 101 }, (_, i) => i));
  });

  it('stop() erases the line, so that a report starts on a clean line', () => {
    const h = harness();
    h.at(0, { phase: 'copy', done: 1, total: 2 });
    h.stop();
    expect(h.raw().endsWith('\r\x1b[K')).toBe(true);
  });
});

describe('on a terminal', () => {
  let dir: TempDir;
  let image: string;
  beforeAll(async () => {
    dir = await tempDir('dumpsieve-progress-');
    image = await makeGuest(dir, 'guest.vmcore', { scenario: 'xen-hvm-balloon', size: 320 << 20, seed: 3, kernel: '6.1' });
  });
  afterAll(() => dir?.remove());

  /** The progress frames a terminal received: the text between carriage returns that looks like the display. */
  const framesOf = (screen: string): string[] =>
    screen
      .split('\r')
      .map((f) => f.replace(/\x1b\[K$/, ''))
      .filter((f) => /^\S+( \d+\/\d+)? \[/.test(f));

  it('filter: plan 1/2 then write 2/2, percentages that only grow, a clean line before the report', async () => {
    const out = dir.file('out.kdump');
    const r = await ptyCli(['filter', '-c', '-d', '31', '--ram-oracle', `xen-hvm:${image}.memtypes`, image, out], { columns: 90 });
    expect(r.code).toBe(0);
    const frames = framesOf(r.screen);
    const line = /^(plan 1\/2|write 2\/2) \[[# ]{10,40}\] +(\d{1,3}) %(?: (\d+ s|\d+ min \d\d s|\d+ h \d\d min))?$/;
    for (const f of frames) expect(f).toMatch(line);
    const phases = frames.map((f) => line.exec(f)![1]);
    expect(phases[0]).toBe('plan 1/2');
    expect(phases.at(-1)).toBe('write 2/2');
    expect(phases.indexOf('write 2/2')).toBe(phases.lastIndexOf('plan 1/2') + 1);
    for (const phase of ['plan 1/2', 'write 2/2']) {
      const pct = frames.filter((f) => f.startsWith(phase)).map((f) => Number(line.exec(f)![2]));
      expect(pct.at(-1)).toBe(100);
      for (let i = 1; i < pct.length; i++) expect(pct[i]).toBeGreaterThanOrEqual(pct[i - 1]!);
    }
    expect(r.screen).not.toMatch(/NaN|Infinity|NFs|undefined/);
    // The line is erased, then the report begins at the start of the line.
    expect(r.screen).toContain(`\r\x1b[K${image} (elf, Linux 6.1.0) -> ${out}`);
  });

  it('-q draws nothing; a one-phase command names its phase without i/n', async () => {
    const q = await ptyCli(['filter', '-q', '-d', '31', image, dir.file('q.kdump')]);
    expect([q.code, q.screen]).toEqual([0, '']);
    const v = await ptyCli(['validate', image]);
    expect(framesOf(v.screen).every((f) => /^validate \[/.test(f))).toBe(true);
    expect(v.screen).toMatch(/checks ran/);
  });
});
