/**
 * Streams as inputs: `-` (standard input) and FIFOs, read once into a
 * sparse spill file in the work directory. Expectations come from the
 * same bytes read as a file, and for flattened streams from the test
 * builder's own rebuild (what makedumpfile -R does); errors are one line,
 * exit 1, and leave no spill behind.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { cliWith } from '../cli/run.js';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInput, type InputSpec } from '../../src/pipeline/input.js';
import { filterDump } from '../../src/pipeline/filter.js';
import type { DumpReader } from '../../src/formats/types.js';
import { buildKdump } from '../builders/kdump-builder.js';
import { buildFlat, rebuildFlat } from '../formats/flat/flat-builder.js';
import { errorOf } from '../helpers/errors.js';
import { assertFreshBuild, ROOT, runBuilt, runBuiltPiped } from '../helpers/built-cli.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';
import { join } from 'node:path';

let dir: TempDir;
let image: string;
let kdump: string;
let flatKdump: string;
let flatElf: string;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-streams-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'virtio-balloon', size: 48 << 20, seed: 7, kernel: '5.10' });
  kdump = dir.file('guest.kdump');
  await filterDump({ input: image, output: kdump, dumpLevel: 1, codec: 'zlib' });
  for (const [name, format] of [['guest.flat', 'kdump'], ['guest-elf.flat', 'elf']] as const) {
    const s = createWriteStream(dir.file(name));
    await filterDump({ input: image, flattened: true, stdout: s, dumpLevel: 1, format, codec: format === 'kdump' ? 'lzo' : 'none' });
    await new Promise<void>((resolve) => s.end(resolve));
  }
  flatKdump = dir.file('guest.flat');
  flatElf = dir.file('guest-elf.flat');
}, 120_000);
afterAll(() => dir.remove());

/** Every pfn's state and every present page's bytes, hashed in one pass. */
async function fingerprint(r: DumpReader): Promise<{ states: Uint8Array; pages: Buffer }> {
  const states = new Uint8Array(r.info.maxPfn);
  await r.pfnStates(0, r.info.maxPfn, states);
  const present = states.reduce((n, s) => n + (s === 2 ? 1 : 0), 0);
  const pages = Buffer.alloc(present * r.info.pageSize);
  let k = 0;
  for (let p = 0; p < r.info.maxPfn; p++) {
    if (states[p] !== 2) continue;
    await r.readPages(p, 1, pages, k * r.info.pageSize);
    k++;
  }
  return { states, pages };
}

async function readAll(input: string | InputSpec): Promise<{ states: Uint8Array; pages: Buffer; format: string; details: Record<string, unknown> }> {
  const r = await openInput(input);
  try {
    return { ...(await fingerprint(r)), format: r.info.format, details: { ...r.info.details } };
  } finally {
    await r.close();
  }
}

/** A Readable giving `bytes` in chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) yield Buffer.from(bytes.subarray(i, Math.min(bytes.length, i + size)));
    })(),
  );
}

async function spills(d = dir.path): Promise<string[]> {
  return (await readdir(d)).filter((f) => f.startsWith('dumpsieve-spill-'));
}

describe('standard input as a stream', () => {
  it('a flattened kdump stream reads as the file makedumpfile -R would rebuild', async () => {
    const flat = await readFile(flatKdump);
    const plain = dir.file('rebuilt.kdump');
    await writeFile(plain, rebuildFlat(flat));
    const want = await readAll(plain);
    const got = await readAll({ paths: ['-'], stdin: chunked(flat, 65536 + 17), workDir: dir.path });
    expect(got.format).toBe('flattened-kdump');
    expect(Buffer.compare(Buffer.from(got.states), Buffer.from(want.states))).toBe(0);
    expect(got.pages.equals(want.pages)).toBe(true);
    // Sparse: the spill holds less than the rebuilt file when runs of zeros are left out.
    expect(got.details['spilled bytes']).toBeLessThanOrEqual(got.details['rebuilt size'] as number);
    expect(await spills()).toEqual([]);
  });

  it('a flattened ELF stream, an ELF stream and a kdump stream read as their files', async () => {
    const flat = await readFile(flatElf);
    const plainElf = dir.file('rebuilt.elf');
    await writeFile(plainElf, rebuildFlat(flat));
    const cases: Array<[Uint8Array, string, string]> = [
      [flat, plainElf, 'flattened-elf'],
      [await readFile(image), image, 'elf'],
      [await readFile(kdump), kdump, 'kdump'],
    ];
    for (const [bytes, file, format] of cases) {
      const want = await readAll(file);
      const got = await readAll({ paths: ['-'], stdin: chunked(bytes, 1 << 20), workDir: dir.path });
      expect(got.format).toBe(format);
      expect(Buffer.compare(Buffer.from(got.states), Buffer.from(want.states))).toBe(0);
      expect(got.pages.equals(want.pages), format).toBe(true);
    }
    expect(await spills()).toEqual([]);
  });

  it('a gzip-compressed stream is inflated on the way', async () => {
    const want = await readAll(kdump);
    const got = await readAll({ paths: ['-'], stdin: chunked(gzipSync(await readFile(flatKdump)), 4096), workDir: dir.path });
    expect(got.format).toBe('flattened-kdump');
    expect(got.pages.equals(want.pages)).toBe(true);
  });

  it('records in any order, overlapping, fed one byte at a time: later records win', async () => {
    const pages = [1, 2, 3, 9, 10].map((pfn) => ({ pfn }));
    const plain = Buffer.from(buildKdump({ maxPfn: 16, pages, codec: 'zlib' }));
    // Records of 1000 bytes, backwards; then two that overwrite others (with the same bytes and with garbage first).
    const recs: Array<{ offset: number; data: Uint8Array }> = [];
    for (let off = Math.floor((plain.length - 1) / 1000) * 1000; off >= 0; off -= 1000) recs.push({ offset: off, data: plain.subarray(off, off + 1000) });
    recs.splice(1, 0, { offset: 4096, data: new Uint8Array(5000).fill(0xee) });
    recs.push({ offset: 4096, data: plain.subarray(4096, 9096) });
    const flat = buildFlat(recs);
    const want = Buffer.from(rebuildFlat(flat));
    expect(want.equals(plain)).toBe(true);
    const file = dir.file('small.kdump');
    await writeFile(file, want);
    const a = await readAll(file);
    const b = await readAll({ paths: ['-'], stdin: chunked(flat, 1), workDir: dir.path });
    expect(b.details['records going back']).toBeGreaterThan(0);
    expect(Buffer.compare(Buffer.from(b.states), Buffer.from(a.states))).toBe(0);
    expect(b.pages.equals(a.pages)).toBe(true);
  });

  it('a stream cut short: one line naming the stream and the offset, no spill left', async () => {
    const flat = await readFile(flatKdump);
    const cut = flat.subarray(0, flat.length - 16 - 100); // no end marker, last record short
    const e = await errorOf(openInput({ paths: ['-'], stdin: chunked(cut, 65536), workDir: dir.path }));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.message).toMatch(/^<stdin>: offset 0x[0-9a-f]+: flattened record of \d+ bytes: the stream ends after \d+ of them \(cut short\)$/);
    const noEnd = flat.subarray(0, flat.length - 16);
    const e2 = await errorOf(openInput({ paths: ['-'], stdin: chunked(noEnd, 65536), workDir: dir.path }));
    expect(e2.message).toBe(`<stdin>: offset 0x${(flat.length - 16).toString(16)}: flattened stream ends at 0x${(flat.length - 16).toString(16)} without its end marker (cut short)`);
    // An ELF stream cut in the middle of its pages: the ELF reader says what is missing.
    const elf = await readFile(image);
    const e3 = await errorOf(openInput({ paths: ['-'], stdin: chunked(elf.subarray(0, elf.length >> 1), 65536), workDir: dir.path }));
    expect(e3.code).toBe('DUMP_TRUNCATED');
    expect(e3.message).toMatch(/^<stdin>: offset 0x[0-9a-f]+: program header \d+: PT_LOAD data .* extends past end of file/);
    expect(await spills()).toEqual([]);
  });

  it('a stream whose records go backwards past the spill limit: one line, no spill left', async () => {
    const chunk = new Uint8Array(1 << 20).fill(0x5a);
    const recs = [0, 1, 2, 3].map(() => ({ offset: 0, data: chunk }));
    const flat = buildFlat(recs);
    const e = await errorOf(openInput({ paths: ['-'], stdin: chunked(flat, 65536), workDir: dir.path, spillLimit: 3 << 20 }));
    expect(e.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e.message).toMatch(
      new RegExp(
        `^<stdin>: offset 0x${(4096 + 3 * (16 + (1 << 20))).toString(16)}: flattened record goes back to offset 0x0, below 0x100000 already spilled: reading it needs more than the spill limit of 3145728 bytes \\(writing \\d+ bytes at 0; --spill-limit\\)$`,
      ),
    );
    expect(await spills()).toEqual([]);
  });

  it('a stream whose records go backwards past the spill limit, on the command line: exit 1, one line, nothing left', async () => {
    const work = dir.file('work-cli-limit');
    await mkdir(work);
    const flat = buildFlat([0, 1, 2, 3].map(() => ({ offset: 0, data: new Uint8Array(1 << 20).fill(0x5a) })));
    const r = await cliWith({ stdin: chunked(flat, 65536) }, 'filter', '-d', '0', '--work-dir', work, '--spill-limit', '3M', '-', dir.file('never-limit.kdump'));
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^dumpsieve: <stdin>: offset 0x[0-9a-f]+: flattened record goes back to offset 0x0, below 0x100000 already spilled: reading it needs more than the spill limit of 3145728 bytes/);
    expect(await readdir(work)).toEqual([]);
    expect((await readdir(dir.path)).filter((f) => f.includes('never-limit'))).toEqual([]);
  });

  it('a work directory that does not exist: one line', async () => {
    const e = await errorOf(openInput({ paths: ['-'], stdin: chunked(new Uint8Array(10), 10), workDir: dir.file('nope') }));
    expect(e.code).toBe('IO');
    expect(e.message).toMatch(new RegExp(`^${dir.file('nope')}: cannot make a spill directory for <stdin> \\(--work-dir\\): ENOENT`));
  });

  it('standard input cannot be one part of a split set', async () => {
    const e = await errorOf(openInput({ paths: [kdump, '-'] }));
    expect(e.code).toBe('USAGE');
  });
});

describe('the CLI on pipes and FIFOs (built CLI, child processes)', () => {
  beforeAll(() => assertFreshBuild());

  it('makedumpfile-style pipe: `cat FLAT | dumpsieve filter - OUT` equals the file-based run', async () => {
    const work = dir.file('work-pipe');
    await mkdir(work);
    const fromFile = dir.file('out-file.kdump');
    const fromPipe = dir.file('out-pipe.kdump');
    expect(runBuilt(['filter', '-q', '-c', '-d', '31', flatKdump, fromFile]).code).toBe(0);
    const r = await runBuiltPiped(`cat '${flatKdump}'`, ['filter', '-q', '-c', '-d', '31', '--work-dir', work, '-', fromPipe]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(fromPipe)).equals(await readFile(fromFile))).toBe(true);
    expect(await readdir(work)).toEqual([]);
  });

  it('`dumpsieve filter -F ... | dumpsieve filter - OUT` equals filtering the file', async () => {
    const direct = dir.file('chain-direct.elf');
    const chained = dir.file('chain-piped.elf');
    // The file-based run reads the same kdump-compressed dump the first stage writes.
    expect(runBuilt(['filter', '-q', '-E', '-d', '31', kdump, direct]).code).toBe(0);
    const bin = `'${process.execPath}' '${join(ROOT, 'bin/dumpsieve.js')}'`;
    const r = await runBuiltPiped(`${bin} filter -q -F -c -d 1 '${image}'`, ['filter', '-q', '-E', '-d', '31', '-', chained]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(chained)).equals(await readFile(direct))).toBe(true);
  });

  it('FIFO input: a named pipe reads as the file it carries', async () => {
    const fifo = dir.file('dump.fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const writer = spawn('/bin/sh', ['-c', `cat '${flatKdump}' > '${fifo}'`]);
    const r = runBuilt(['info', '--json', fifo], { timeoutMs: 60_000 });
    await new Promise((resolve) => writer.on('close', resolve));
    expect(r.code, r.stderr).toBe(0);
    const viaFifo = JSON.parse(r.stdout) as { format: string; ramPages: number; absentPages: number };
    const viaFile = JSON.parse(runBuilt(['info', '--json', flatKdump]).stdout) as typeof viaFifo;
    expect(viaFifo.format).toBe('flattened-kdump');
    expect([viaFifo.ramPages, viaFifo.absentPages]).toEqual([viaFile.ramPages, viaFile.absentPages]);
  });

  it('standard input redirected from a file is read in place, without a spill', async () => {
    const work = dir.file('work-redirect');
    await mkdir(work);
    const fd = openSync(kdump, 'r');
    try {
      const r = runBuilt(['info', '--json', '--work-dir', work, '-'], { stdinFd: fd });
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { file: string; format: string; details: Record<string, unknown> };
      expect([j.file, j.format, j.details['read from']]).toEqual(['<stdin>', 'kdump', undefined]);
    } finally {
      closeSync(fd);
    }
  });

  it('a stream cut short on a real pipe: exit 1, one line, nothing left in the work directory', async () => {
    const work = dir.file('work-cut');
    await mkdir(work);
    const out = dir.file('never.kdump');
    const r = await runBuiltPiped(`head -c 1000000 '${flatKdump}'`, ['filter', '-q', '-d', '1', '--work-dir', work, '-', out]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^dumpsieve: <stdin>: offset 0x[0-9a-f]+: flattened record of \d+ bytes: the stream ends after \d+ of them \(cut short\)$/);
    expect(await readdir(work)).toEqual([]);
    expect((await readdir(dir.path)).includes('never.kdump')).toBe(false);
  });

  it('the spill is removed when the run is interrupted (SIGINT)', async () => {
    const work = dir.file('work-int');
    await mkdir(work);
    const flat = await readFile(flatKdump);
    const child = spawn(process.execPath, [join(ROOT, 'test/helpers/measure-cli.mjs'), 'info', '--work-dir', work, '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => undefined); // EPIPE once the child is gone
    child.stdin.write(flat.subarray(0, 1 << 20));
    // Wait until the spill exists, then interrupt.
    for (let i = 0; i < 200 && (await readdir(work)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await readdir(work)).length).toBe(1);
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await done).toBe(130);
    expect(await readdir(work)).toEqual([]);
  });
});
