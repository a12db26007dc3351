/** `dumpsieve dmesg`: text, --caller, --dict, --json, --tail, OUT; errors as one line with exit 1. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { cliWith, type Run } from './run.js';
import type { PrintkTruth } from '../../src/synth/printk.js';
import { makeGuest, readTruth, tempDir, type TempDir } from '../helpers/guests.js';
import { mdfLine, mdfText } from '../helpers/printk.js';

/** The log's bytes as they are (latin1): the escapes under test are ASCII either way. */
const cli = (...argv: string[]): Promise<Run> => cliWith({ encoding: 'latin1' }, ...argv);

let dir: TempDir;
let lockless: string;
let logbuf: string;
let tl: PrintkTruth;
let tb: PrintkTruth;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-cli-dmesg-');
  lockless = await makeGuest(dir, 'l.vmcore', { scenario: 'virtio-balloon', size: 40 << 20, seed: 117, kernel: '6.12' });
  logbuf = await makeGuest(dir, 'b.vmcore', { scenario: 'virtio-balloon', size: 40 << 20, seed: 2, kernel: '4.19' });
  tl = (await readTruth(`${lockless}.truth`)).header.printk!;
  tb = (await readTruth(`${logbuf}.truth`)).header.printk!;
});
afterAll(() => dir?.remove());

const callerOf = (id: number): string => ((id & 0x8000_0000) !== 0 ? `C${id & 0x7fff_ffff}` : `T${id}`);

describe('dumpsieve dmesg', () => {
  it('prints the log as makedumpfile does, on standard output; which buffer it found on standard error', async () => {
    for (const [img, t] of [[lockless, tl], [logbuf, tb]] as const) {
      const r = await cli('dmesg', img);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(mdfText(t.records));
      const what = t.format === 'lockless' ? 'lockless ring buffer (prb, Linux 5.10+)' : 'log_buf (variable-length records, Linux 3.5-5.9)';
      expect(r.stderr).toBe(`${img}: ${t.records.length} records from the ${what}${t.lost && t.format === 'lockless' ? `, ${t.lost} older records overwritten` : ''}${t.inFlight ? `, ${t.inFlight} being written at the crash` : ''}\n`);
      expect((await cli('dmesg', img, '-q')).stderr).toBe('');
    }
  });

  it('--tail N prints the last N records', async () => {
    const r = await cli('dmesg', lockless, '--tail', '7');
    expect(r.stdout).toBe(mdfText(tl.records.slice(-7)));
    expect((await cli('dmesg', lockless, '--tail', '0')).stdout).toBe('');
    const bad = await cli('dmesg', lockless, '--tail', '-3');
    expect([bad.code, bad.stderr]).toEqual([2, "dumpsieve: --tail: '-3' is not a whole number of at least 0\n"]);
  });

  it('--caller adds the [%6s] caller field after the time, as the kernel console does', async () => {
    const r = await cli('dmesg', lockless, '--caller');
    const want = tl.records
      .map((e) => {
        const line = mdfLine(e);
        const cut = line.indexOf('] ') + 1;
        const id = `[${callerOf(e.caller!).padStart(6, ' ')}] `;
        // Continuation lines of a multi-line record are indented by the longer prefix.
        return line.slice(0, cut) + id + line.slice(cut + 1).split(`\n${' '.repeat(cut + 1)}`).join(`\n${' '.repeat(cut + id.length)}`);
      })
      .join('');
    expect(r.stdout).toBe(want);
    expect(r.stdout).toMatch(/^\[ +\d+\.\d{6}\]\[ +C\d\] /m);
  });

  it('--console prefixes every line of a multi-line record, as the kernel console does', async () => {
    const img = await makeGuest(dir, 'c.vmcore', { scenario: 'plain', size: 40 << 20, seed: 0, kernel: '5.10' });
    const tc = (await readTruth(`${img}.truth`)).header.printk!;
    const r = await cli('dmesg', img, '--console');
    const want = tc.records
      .map((e) => e.text.split('\n').map((l) => mdfLine({ tsNsec: e.tsNsec, text: l })).join(''))
      .join('');
    expect(r.stdout).toBe(want);
    expect(tc.records.some((e) => e.text.includes('\n'))).toBe(true);
  });

  it('--dict adds the SUBSYSTEM and DEVICE properties under their records', async () => {
    const r = await cli('dmesg', logbuf, '--dict');
    const want = tb.records.map((e) => mdfLine(e) + e.dict.map(([k, v]) => ` ${k}=${v}\n`).join('')).join('');
    expect(r.stdout).toBe(want);
    expect(tb.records.some((e) => e.dict.length > 0)).toBe(true);
  });

  it('--json gives sequence, time, level, facility, caller and text per record', async () => {
    const r = await cli('dmesg', lockless, '--json');
    const j = JSON.parse(r.stdout) as { format: string; lost: number; inFlight: number; records: Array<Record<string, unknown>> };
    expect([j.format, j.lost, j.inFlight]).toEqual(['lockless', tl.lost, tl.inFlight]);
    expect(j.records.length).toBe(tl.records.length);
    j.records.forEach((x, i) => {
      const e = tl.records[i]!;
      expect(x).toEqual({
        sequence: e.seq,
        timestamp: { sec: Math.floor(e.tsNsec / 1e9), nsec: e.tsNsec % 1e9 },
        level: e.level,
        facility: e.facility,
        continuation: false,
        caller: callerOf(e.caller!),
        state: e.state,
        text: e.text,
        dict: Object.fromEntries(e.dict),
      });
    });
    const b = JSON.parse((await cli('dmesg', logbuf, '--json', '--tail', '2')).stdout) as { records: Array<{ sequence: unknown; caller: unknown }> };
    expect(b.records.length).toBe(2);
    expect(b.records[0]).toMatchObject({ sequence: null, caller: null });
  });

  it('OUT receives the log; standard error says which buffer was found', async () => {
    const out = dir.file('log.txt');
    expect(tl.lost).toBeGreaterThan(0);
    const r = await cli('dmesg', lockless, out);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(await readFile(out, 'latin1')).toBe(mdfText(tl.records));
    expect(r.stderr).toBe(`${lockless}: ${tl.records.length} records from the lockless ring buffer (prb, Linux 5.10+), ${tl.lost} older records overwritten, 1 being written at the crash; saved to ${out}\n`);
    const q = await cli('dmesg', logbuf, dir.file('log2.txt'), '-q');
    expect(q.stderr).toBe('');
  });

  it('a dump without the log keys: one line, exit 1, no output file left', async () => {
    const b = await readFile(lockless);
    b.write('SYMBOL(xrb)=', b.indexOf('SYMBOL(prb)='), 'latin1');
    const nokeys = dir.file('nokeys.vmcore');
    await writeFile(nokeys, b);
    const out = dir.file('nokeys.txt');
    const r = await cli('dmesg', nokeys, out);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`dumpsieve: ${nokeys}: VMCOREINFO has neither SYMBOL(prb) nor SYMBOL(log_buf): the kernel log cannot be found\n`);
    expect((await readdir(dir.path)).filter((f) => f.startsWith('nokeys.txt'))).toEqual([]);
  });

  it('damage is a warning on standard error; the readable records still print', async () => {
    const b = await readFile(logbuf);
    const img = dir.file('damaged.vmcore');
    // Point log_first_idx past the buffer: SYMBOL(log_first_idx) lives in the image's data page.
    await writeFile(img, b);
    const { LogBytes, u32le } = await import('../helpers/printk.js');
    const lb = await LogBytes.open(img);
    try {
      await lb.patch(lb.sym('log_first_idx'), u32le(0x7fff_0000));
    } finally {
      await lb.close();
    }
    const r = await cli('dmesg', img);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^dumpsieve: warning: .*damaged\.vmcore: log_first_idx 2147418112 or log_next_idx \d+ is outside the \d+-byte log_buf\n.*damaged\.vmcore: 0 records from the log_buf/);
  });
});
