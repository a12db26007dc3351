/**
 * Dump files on disk: outputs are 0600, never the input, never replaced
 * without -f; signals and write errors leave no temporary behind; a full
 * disk leaves an incomplete dump that readers still open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli } from './run.js';
import { filterDump } from '../../src/pipeline/filter.js';
import { AtomicFileSink, type PositionalSink } from '../../src/io/sink.js';
import { openDump } from '../../src/formats/registry.js';
import { PfnState } from '../../src/formats/types.js';
import { DH_OFF, DUMP_DH } from '../../src/formats/kdump/header.js';
import { DUMP_ELF_INCOMPLETE } from '../../src/formats/elf/writer.js';
import { makeGuest, readPages, tempDir, type TempDir } from '../helpers/guests.js';
import { havePeers, readWithPeer } from '../interop/peers.js';

const BIN = fileURLToPath(new URL('../../bin/dumpsieve.js', import.meta.url));

const sha = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');

let dir: TempDir;
let image: string;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-files-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 5, kernel: '6.1' });
});
afterAll(() => dir.remove());

/** Temporary files of outputs (".NAME.PID.RAND.tmp") in a folder. */
async function temporaries(path: string): Promise<string[]> {
  return (await readdir(path)).filter((f) => f.endsWith('.tmp'));
}

describe('an output never replaces its input', () => {
  it('output is the input (same path, even with -f)', async () => {
    const before = await sha(image);
    const r = await cli('filter', '-f', '-d', '31', image, image);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`dumpsieve: ${image} is the input; an output never replaces its input\n`);
    expect(await sha(image)).toBe(before);
  });

  it('output is the input (hard link)', async () => {
    const hard = dir.file('hard-link.vmcore');
    await link(image, hard);
    const r = await cli('filter', '-f', '-d', '31', image, hard);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`dumpsieve: ${hard} is the same file as the input ${image}; an output never replaces its input\n`);
    expect((await stat(hard)).ino).toBe((await stat(image)).ino);
  });

  it('output is the input (symlink)', async () => {
    const soft = dir.file('sym-link.vmcore');
    await symlink(image, soft);
    const r = await cli('filter', '-f', '-c', image, soft);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is the same file as the input/);
  });

  it('--reasons is the input, or the dump just named', async () => {
    const before = await sha(image);
    const a = await cli('filter', '-f', '-d', '31', '--reasons', image, image, dir.file('r1.kdump'));
    expect(a.code).toBe(2);
    expect(await sha(image)).toBe(before);
    const b = await cli('filter', '-d', '31', '--reasons', dir.file('same'), image, dir.file('same'));
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/named as two outputs of one run/);
  });
});

describe('no output replaces an existing file without -f', () => {
  it('dump, --reasons, --svg and synth files', async () => {
    const existing = dir.file('existing');
    await writeFile(existing, 'precious');
    const cases: string[][] = [
      ['filter', '-d', '31', image, existing],
      ['filter', '-d', '31', '--reasons', existing, image, dir.file('x1.kdump')],
      ['analyze', '--svg', existing, image],
      ['synth', 'plain', existing, '--size', '32M'],
    ];
    for (const argv of cases) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toBe(`dumpsieve: ${existing} exists (use -f to overwrite)\n`);
      expect(await readFile(existing, 'utf8')).toBe('precious');
    }
    // A synth side file counts too.
    await writeFile(dir.file('side.vmcore.truth'), 'precious');
    const s = await cli('synth', 'plain', dir.file('side.vmcore'), '--size', '32M');
    expect(s.code).toBe(2);
    await expect(stat(dir.file('side.vmcore'))).rejects.toThrow();
    // With -f they are replaced.
    expect((await cli('synth', '-f', '-q', 'plain', dir.file('side.vmcore'), '--size', '32M')).code).toBe(0);
    expect((await cli('analyze', '-q', '-f', '--svg', existing, image)).code).toBe(0);
    expect(await readFile(existing, 'utf8')).toMatch(/<svg /);
  });

  it('a directory or device is never an output', async () => {
    const r = await cli('filter', '-f', '-d', '31', image, '/dev/null');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dumpsieve: /dev/null exists and is not a regular file\n');
  });
});

describe('files are written 0600 (a dump holds the guest memory)', () => {
  it('dump, reasons map, memory map and synth files', async () => {
    const out = dir.file('mode.kdump');
    const map = dir.file('mode.reasons');
    const svg = dir.file('mode.svg');
    expect((await cli('filter', '-q', '-d', '31', '--reasons', map, image, out)).code).toBe(0);
    expect((await cli('analyze', '-q', '--svg', svg, image)).code).toBe(0);
    expect((await cli('synth', '-q', 'plain', dir.file('mode.vmcore'), '--size', '32M')).code).toBe(0);
    for (const f of [out, map, svg, dir.file('mode.vmcore'), dir.file('mode.vmcore.truth'), dir.file('mode.vmcore.kpageflags')]) {
      expect(((await stat(f)).mode & 0o777).toString(8), f).toBe('600');
    }
  });
});

/** Spawn the CLI, send `signal` once a temporary output exists, and return the exit status and folder contents. */
async function interrupt(signal: NodeJS.Signals, args: string[], work: string, tmpdir: string): Promise<{ code: number | null; files: string[]; tmp: string[] }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, TMPDIR: tmpdir }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let sent = false;
  for (let i = 0; i < 2000 && !sent; i++) {
    await new Promise((r) => setTimeout(r, 10));
    if ((await temporaries(work)).length > 0) {
      child.kill(signal);
      sent = true;
    }
  }
  const code = await exited;
  if (!sent) throw new Error(`no temporary output appeared before the run ended (exit ${code}): ${stderr}`);
  return { code, files: await readdir(work), tmp: await readdir(tmpdir) };
}

describe('signals clean up like SIGINT', () => {
  let big: string;
  beforeAll(async () => {
    big = await makeGuest(dir, 'big.vmcore', { scenario: 'plain', size: 512 << 20, seed: 1, kernel: '6.1' });
  });
  for (const [signal, code] of [['SIGTERM', 143], ['SIGHUP', 129], ['SIGINT', 130]] as const) {
    it(`${signal} mid-write: exit ${code}, no temporary file, no inflated input left`, async () => {
      const work = join(dir.path, `sig-${signal}`);
      const tmp = join(dir.path, `sig-${signal}-tmp`);
      await mkdir(work);
      await mkdir(tmp);
      const r = await interrupt(signal, ['filter', '-c', '-d', '0', '--num-threads', '0', big, join(work, 'out.kdump')], work, tmp);
      expect(r.code).toBe(code);
      expect(r.files).toEqual([]);
      expect(r.tmp).toEqual([]);
    });
  }
  it('SIGTERM while a .gz input is read: its inflated copy is removed', async () => {
    const gz = dir.file('small.vmcore.gz');
    spawnSync('sh', ['-c', `gzip -1 -c '${image}' > '${gz}'`]);
    const work = join(dir.path, 'sig-gz');
    const tmp = join(dir.path, 'sig-gz-tmp');
    await mkdir(work);
    await mkdir(tmp);
    const child = spawn(process.execPath, [BIN, 'filter', '-c', gz, join(work, 'o.kdump')], { env: { ...process.env, TMPDIR: tmp }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    // Wait for the inflated copy, then terminate.
    for (let i = 0; i < 2000 && (await readdir(tmp)).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGTERM');
    const c = await exited;
    expect([143, 0]).toContain(c);
    expect(await readdir(tmp)).toEqual([]);
    if (c === 143) expect(await temporaries(work)).toEqual([]);
    await rm(work, { recursive: true });
  });
});

/** A file sink whose writes fail with ENOSPC once `limit` bytes have been written past `from`. */
class FullDisk implements PositionalSink {
  readonly rewritable = true;
  private used = 0;
  constructor(
    private readonly inner: AtomicFileSink,
    private readonly limit: number,
  ) {}
  get name(): string {
    return this.inner.name;
  }
  async write(data: Uint8Array, position: number): Promise<void> {
    if (this.used + data.length > this.limit) {
      throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
    }
    this.used += data.length;
    await this.inner.write(data, position);
  }
  setLength(size: number): Promise<void> {
    return this.inner.setLength(size);
  }
  commit(): Promise<void> {
    return this.inner.commit();
  }
  abort(): Promise<void> {
    return this.inner.abort();
  }
}

/** Compare what a real reader reads with the input: pages before the failure equal, and the rest not silently wrong. */
function checkWithReader(reader: 'drgn' | 'libkdumpfile', dump: string, inputHashes: Map<number, string>, pfns: number[]): { equal: number; failed: number } {
  const ranges = pfns.map((p) => [p, p + 1] as [number, number]);
  const got = readWithPeer(reader, dump, ranges);
  let equal = 0;
  let failed = 0;
  for (const p of pfns) {
    const g = got.pages.get(p)!;
    if (g.ok) {
      expect(g.sha1, `${reader} pfn 0x${p.toString(16)}`).toBe(inputHashes.get(p));
      equal++;
    } else failed++;
  }
  return { equal, failed };
}

describe('a full disk leaves an incomplete dump readers open', () => {
  async function keptPfns(dump: string): Promise<number[]> {
    const r = await openDump(dump);
    const out: number[] = [];
    try {
      const st = new Uint8Array(32768);
      for (let w = 0; w < r.info.maxPfn; w += st.length) {
        const n = Math.min(st.length, r.info.maxPfn - w);
        await r.pfnStates(w, n, st);
        for (let i = 0; i < n; i++) if (st[i] === PfnState.PRESENT) out.push(w + i);
      }
    } finally {
      await r.close();
    }
    return out;
  }

  async function inputHashes(pfns: number[]): Promise<Map<number, string>> {
    const m = new Map<number, string>();
    for (const p of pfns) m.set(p, createHash('sha1').update(await readPages(image, p, 1)).digest('hex'));
    return m;
  }

  for (const format of ['kdump', 'elf'] as const) {
    it(`ENOSPC (faked at the sink) leaves an incomplete ${format} dump drgn and libkdumpfile read`, async () => {
      const out = dir.file(`enospc.${format}`);
      const sink = new FullDisk(await AtomicFileSink.create(out), 6 << 20);
      const err = await filterDump({ input: image, sink, dumpLevel: 1, format, codec: format === 'kdump' ? 'lzo' : 'none' }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/ENOSPC.*kept an incomplete dump: \d+ of \d+ pages/);
      const head = await readFile(out);
      if (format === 'kdump') expect(head.readUInt32LE(DH_OFF.status) & DUMP_DH.COMPRESSED_INCOMPLETE).toBe(DUMP_DH.COMPRESSED_INCOMPLETE);
      else expect(head.readUInt32LE(48) & DUMP_ELF_INCOMPLETE).toBe(DUMP_ELF_INCOMPLETE);
      expect(await temporaries(dir.path)).toEqual([]);
      if (!havePeers('incomplete dumps', 'drgn', 'libkdumpfile')) return;
      const kept = await keptPfns(out);
      const written = Number(/kept an incomplete dump: (\d+)/.exec((err as Error).message)![1]);
      expect(written).toBeGreaterThan(500);
      // The pages written read back equal to the input; a sample past the failure may fail, never differ.
      const sample = kept.filter((_, i) => i % 7 === 0);
      const hashes = await inputHashes(sample);
      for (const reader of ['drgn', 'libkdumpfile'] as const) {
        const r = checkWithReader(reader, out, hashes, sample);
        expect(r.equal, reader).toBeGreaterThan(50);
      }
    });
  }

  it('ENOSPC on a real full filesystem (a 4 MiB tmpfs; root only)', async () => {
    if (process.getuid?.() !== 0) {
      process.stderr.write('ENOSPC on tmpfs: not root, the faked sink above covers the case\n');
      return;
    }
    const mnt = join(dir.path, 'small-fs');
    await mkdir(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    if (m.status !== 0) {
      process.stderr.write(`ENOSPC on tmpfs: mount refused (${m.stderr.toString().trim()}), the faked sink above covers the case\n`);
      return;
    }
    try {
      const out = join(mnt, 'dump.kdump');
      const r = await cli('filter', '-d', '1', image, out);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no space left on device.*kept an incomplete dump: \d+ of \d+ pages \(header status DUMP_DH_COMPRESSED_INCOMPLETE\)/i);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      const head = await readFile(out);
      expect(head.readUInt32LE(DH_OFF.status) & DUMP_DH.COMPRESSED_INCOMPLETE).toBe(DUMP_DH.COMPRESSED_INCOMPLETE);
      expect(await temporaries(mnt)).toEqual([]);
      if (havePeers('incomplete dumps on tmpfs', 'drgn')) {
        const kept = await keptPfns(out);
        const sample = kept.filter((_, i) => i % 11 === 0);
        const r2 = checkWithReader('drgn', out, await inputHashes(sample), sample);
        expect(r2.equal).toBeGreaterThan(50);
      }
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});
