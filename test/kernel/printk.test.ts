/**
 * The kernel log reader against the synth truth: every record (text,
 * time, level, facility, flags, caller, dictionary, state, sequence), the
 * count of records lost to overwrite and of records still being written,
 * for the log_buf era and the lockless eras, buffers in the kernel image or
 * memblock-allocated, rings partly filled or wrapped many times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { readKernelLog } from '../../src/pipeline/dmesg.js';
import { renderDmesg } from '../../src/report/dmesg-text.js';
import type { PrintkTruth } from '../../src/synth/printk.js';
import { makeGuest, readTruth, tempDir, type TempDir } from '../helpers/guests.js';
import { LogBytes, mdfText, u16le, u32le, u64le } from '../helpers/printk.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-printk-');
});
afterAll(() => dir?.remove());

// Seeds chosen by their bits (src/synth/printk.ts): placement, fill, ring size, crash kind, unfinished tail.
const SEEDS = [0, 1, 2, 5, 11, 20, 25, 36, 45, 100, 103, 117];
const SCENARIOS = ['plain', 'virtio-balloon', 'xen-hvm-balloon'];

interface Seen {
  truths: PrintkTruth[];
}

function checkAgainstTruth(t: PrintkTruth, log: Awaited<ReturnType<typeof readKernelLog>>): void {
  expect(log.format).toBe(t.format);
  expect(log.warnings).toEqual([]);
  expect(log.missingBytes).toBe(0);
  expect(log.records.length).toBe(t.records.length);
  log.records.forEach((r, i) => {
    const e = t.records[i]!;
    const where = `record ${i} (seq ${e.seq})`;
    expect(Buffer.from(r.text).toString('latin1'), where).toBe(e.text);
    expect(r.sec * 1e9 + r.nsec, where).toBe(e.tsNsec);
    expect([r.level, r.facility, r.flags], where).toEqual([e.level, e.facility, e.flags]);
    expect(r.dict, where).toEqual(e.dict);
    if (t.format === 'lockless') {
      expect(r.seq, where).toBe(e.seq);
      expect(r.callerId, where).toBe(e.caller);
      expect(r.state, where).toBe(e.state);
    } else {
      // log_buf stores neither sequence numbers nor (before 5.1) caller ids.
      expect(r.seq, where).toBeUndefined();
      expect(r.callerId, where).toBeUndefined();
    }
  });
  expect(log.inFlight).toBe(t.inFlight);
  if (t.format === 'lockless') expect(log.lost).toBe(t.lost);
  else expect(log.lost).toBeUndefined();
}

for (const kernel of ['4.19', '5.10', '6.1', '6.12']) {
  describe(`kernel ${kernel}: the log equals the truth`, () => {
    const seen: Seen = { truths: [] };
    it.each(SEEDS.map((s, i) => [s, SCENARIOS[i % SCENARIOS.length]!] as const))('seed %i (%s)', async (seed, scenario) => {
      const img = await makeGuest(dir, `g-${kernel}-${seed}.vmcore`, { scenario, size: 40 << 20, seed, kernel });
      try {
        const t = (await readTruth(`${img}.truth`)).header.printk!;
        const log = await readKernelLog(img);
        checkAgainstTruth(t, log);
        // The text is makedumpfile's, line for line.
        expect(renderDmesg(log)).toBe(mdfText(t.records));
        seen.truths.push(t);
      } finally {
        await rm(img, { force: true });
      }
    });

    it('the seeds cover wrapped rings, lost records, both placements and every oddity of the text', () => {
      const ts = seen.truths;
      expect(ts.length).toBe(SEEDS.length);
      expect(ts.some((t) => t.placement === 'static')).toBe(true);
      expect(ts.some((t) => t.placement === 'dynamic')).toBe(true);
      expect(ts.some((t) => t.lost === 0)).toBe(true);
      expect(ts.some((t) => t.lost > t.records.length)).toBe(true);
      const all = ts.flatMap((t) => t.records);
      expect(all.some((r) => r.text === '')).toBe(true);
      expect(all.some((r) => r.text.includes('\n'))).toBe(true);
      expect(all.some((r) => r.text.includes('\t'))).toBe(true);
      expect(all.some((r) => /[\x00-\x08\x7f]|\x1b/.test(r.text))).toBe(true);
      expect(all.some((r) => r.facility !== 0)).toBe(true);
      expect(all.some((r) => r.dict.length > 0)).toBe(true);
      if (kernel === '4.19') {
        expect(all.some((r) => (r.flags & 8) !== 0)).toBe(true); // LOG_CONT fragments
      } else {
        // Text blocks wrapping past the end of the data ring, a descriptor ring
        // that wrapped too (more records written than it has descriptors), an
        // unfinished (committed) last line and a record still reserved.
        expect(all.some((r) => r.wraps)).toBe(true);
        expect(ts.some((t) => t.written > t.bufferBytes / 32)).toBe(true);
        expect(all.some((r) => r.state === 'committed')).toBe(true);
        expect(ts.some((t) => t.inFlight > 0)).toBe(true);
        expect(all.some((r) => r.caller !== undefined && (r.caller & 0x8000_0000) !== 0)).toBe(true);
      }
    });
  });
}

describe('damaged logs: what can be read, one warning line per damage, never a hang', () => {
  /** A fresh copy of an image to damage, its truth, and its log bytes. */
  async function victim(name: string, kernel: string, seed: number) {
    const img = await makeGuest(dir, `${name}.vmcore`, { scenario: 'plain', size: 40 << 20, seed, kernel });
    const t = (await readTruth(`${img}.truth`)).header.printk!;
    const lb = await LogBytes.open(img);
    return { img, t, lb };
  }

  /** Lockless: the printk_ringbuffer and its arrays, read with the test's own page walk. */
  async function ring(lb: LogBytes) {
    const rb = await lb.u64(lb.sym('prb'));
    const countBits = Number((await lb.u64(rb)) & 0xffff_ffffn);
    const textRing = rb + BigInt(lb.num('OFFSET(printk_ringbuffer.text_data_ring)'));
    return {
      rb,
      count: 2 ** countBits,
      descs: await lb.u64(rb + 8n),
      infos: await lb.u64(rb + 16n),
      headIdVa: rb + 24n,
      tailIdVa: rb + 32n,
      dataSize: 2 ** Number((await lb.u64(textRing)) & 0xffff_ffffn),
    };
  }

  const texts = (log: Awaited<ReturnType<typeof readKernelLog>>): string[] => log.records.map((r) => Buffer.from(r.text).toString('latin1'));

  it('lockless: a descriptor pointing outside the data ring loses that record only', async () => {
    const { img, t, lb } = await victim('bad-lpos', '6.1', 2);
    try {
      const r = await ring(lb);
      const k = Math.floor(t.records.length / 2);
      const victimSeq = t.records[k]!.seq;
      const desc = r.descs + BigInt((victimSeq % r.count) * 24);
      await lb.patch(desc + 8n, u64le(0x10n));
      await lb.patch(desc + 16n, u64le(0x10n + BigInt(r.dataSize) * 5n));
      const log = await readKernelLog(img);
      expect(log.warnings.length).toBe(1);
      expect(log.warnings[0]).toMatch(new RegExp(`^record ${victimSeq}: text block 0x10\\.\\.0x[0-9a-f]+ does not lie in the ${r.dataSize}-byte data ring$`));
      expect(texts(log)).toEqual(t.records.filter((_, i) => i !== k).map((x) => x.text));
      expect(log.lost).toBe(t.lost + 1);
    } finally {
      await lb.close();
    }
  });

  it('lockless: a text_len past its block is cut to the block', async () => {
    const { img, t, lb } = await victim('bad-textlen', '5.10', 0);
    try {
      const r = await ring(lb);
      const k = 3;
      const e = t.records[k]!;
      await lb.patch(r.infos + BigInt((e.seq % r.count) * 88 + 16), u16le(60000));
      const log = await readKernelLog(img);
      expect(log.warnings).toEqual([expect.stringMatching(new RegExp(`^record ${e.seq}: text_len 60000 is longer than its \\d+-byte block; text cut$`))]);
      const got = texts(log);
      expect(got.length).toBe(t.records.length);
      // The block holds the text, the newline and NUL vscnprintf() left, then padding.
      expect(got[k]!.startsWith(`${e.text}\n\0`)).toBe(true);
      expect(got.filter((_, i) => i !== k)).toEqual(t.records.filter((_, i) => i !== k).map((x) => x.text));
    } finally {
      await lb.close();
    }
  });

  it('lockless: tail and head ids further apart than the ring reads the last ring-full only', async () => {
    const { img, t, lb } = await victim('bad-span', '6.12', 2);
    try {
      const r = await ring(lb);
      const head = await lb.u64(r.headIdVa);
      await lb.patch(r.tailIdVa, u64le((head - BigInt(r.count) * 7n) & ((1n << 62n) - 1n)));
      const log = await readKernelLog(img);
      expect(log.warnings.length).toBe(1);
      expect(log.warnings[0]).toMatch(/more than its \d+ descriptors; reading the last \d+$/);
      // Whatever it reads is the truth's records, in order.
      const want = t.records.map((x) => x.text);
      const got = texts(log);
      expect(got.length).toBeGreaterThan(0);
      expect(want.slice(want.length - got.length)).toEqual(got);
    } finally {
      await lb.close();
    }
  });

  it('lockless: an impossible ring size or a prb pointing nowhere is one error line', async () => {
    const { img, lb } = await victim('bad-prb', '6.1', 0);
    try {
      const r = await ring(lb);
      await lb.patch(r.rb, u32le(60));
      await expect(readKernelLog(img)).rejects.toThrow(/desc_ring\.count_bits 60 is not in 1\.\.26$/);
      await lb.patch(lb.sym('prb'), u64le(0xffffc9ffdead0000n));
      const err = await readKernelLog(img).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/is not mapped|not in the dump/);
      expect((err as Error).message).not.toContain('\n');
    } finally {
      await lb.close();
    }
  });

  /** log_buf: offsets of the live records, walked with the test's own reading of struct printk_log. */
  async function logBufWalk(lb: LogBytes) {
    const buf = await lb.u64(lb.sym('log_buf'));
    const u32 = async (name: string): Promise<number> => Number((await lb.u64(lb.sym(name))) & 0xffff_ffffn);
    const len = await u32('log_buf_len');
    const first = await u32('log_first_idx');
    const next = await u32('log_next_idx');
    const starts: number[] = [];
    let idx = first;
    const lenAt = async (i: number): Promise<number> => (await lb.img.read(await lb.phys(buf + BigInt(i) + 8n), 2)).readUInt16LE(0);
    while (idx !== next) {
      let l = await lenAt(idx);
      if (l === 0) {
        idx = 0;
        l = await lenAt(0);
      }
      starts.push(idx);
      idx += l;
    }
    return { buf, len, first, next, starts };
  }

  it('log_buf: a length past the buffer stops there with the records before it', async () => {
    const { img, t, lb } = await victim('bad-len', '4.19', 8);
    try {
      const w = await logBufWalk(lb);
      expect(w.starts.length).toBe(t.records.length);
      const k = Math.floor(w.starts.length / 2);
      await lb.patch(w.buf + BigInt(w.starts[k]!) + 8n, u16le(0xfff0));
      const log = await readKernelLog(img);
      expect(log.warnings).toEqual([`log_buf record at index ${w.starts[k]}: length 65520 (text ${Buffer.from(t.records[k]!.text, 'latin1').length}, dict ${t.records[k]!.dict.map(([a, b]) => `${a}=${b}`).join('\0').length}) does not fit the buffer`]);
      expect(texts(log)).toEqual(t.records.slice(0, k).map((x) => x.text));
    } finally {
      await lb.close();
    }
  });

  it('log_buf: a wrap marker that loops is cut at the loop', async () => {
    const { img, t, lb } = await victim('bad-loop', '4.19', 2);
    try {
      const w = await logBufWalk(lb);
      expect(w.first).toBeGreaterThan(w.next); // the live records wrap
      const atZero = w.starts.indexOf(0);
      expect(atZero).toBeGreaterThan(0);
      await lb.patch(w.buf + 8n, u16le(0)); // the record at index 0 becomes a marker: 0 → 0 → …
      const log = await readKernelLog(img);
      expect(log.warnings.length).toBe(1);
      expect(log.warnings[0]).toMatch(/^log_buf wraps twice \(index 0\) without reaching log_next_idx \d+$/);
      expect(texts(log)).toEqual(t.records.slice(0, atZero).map((x) => x.text));
    } finally {
      await lb.close();
    }
  });

  it('log_buf: indices outside the buffer give no records and one warning', async () => {
    const { img, lb } = await victim('bad-idx', '4.19', 0);
    try {
      await lb.patch(lb.sym('log_first_idx'), u32le(0x7fff_0000));
      const log = await readKernelLog(img);
      expect(log.records).toEqual([]);
      expect(log.warnings).toEqual([expect.stringMatching(/^log_first_idx 2147418112 or log_next_idx \d+ is outside the \d+-byte log_buf$/)]);
    } finally {
      await lb.close();
    }
  });

  it('a dump without the log keys says so in one line', async () => {
    const { img, lb } = await victim('no-keys', '6.1', 0);
    await lb.close();
    const { readFile, writeFile } = await import('node:fs/promises');
    const b = await readFile(img);
    const at = b.indexOf('SYMBOL(prb)=');
    expect(at).toBeGreaterThan(0);
    b.write('SYMBOL(xrb)=', at, 'latin1');
    await writeFile(img, b);
    await expect(readKernelLog(img)).rejects.toThrow(/^.*no-keys\.vmcore: VMCOREINFO has neither SYMBOL\(prb\) nor SYMBOL\(log_buf\): the kernel log cannot be found$/);
  });
});
