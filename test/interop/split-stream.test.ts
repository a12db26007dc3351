/**
 * What makedumpfile 1.7.2 and QEMU write, read as it is:
 *
 * - `makedumpfile --split` into 2 and 3 parts: `dumpsieve reassemble` gives
 *   makedumpfile --reassemble's file (byte for byte, and every page equal
 *   through libkdumpfile); info and filter -E on the parts equal the same
 *   on the reassembled file; makedumpfile re-filters dumpsieve's file.
 * - `makedumpfile -F … | dumpsieve filter - OUT` equals the file-based run.
 * - QEMU's dump-guest-memory kdump-zlib file (flattened) reads page for
 *   page as QEMU's ELF dump of the same paused guest (read here by a
 *   minimal ELF parser of the test's own).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { createInterface } from 'node:readline';
import { open, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInput } from '../../src/pipeline/input.js';
import { filterDump } from '../../src/pipeline/filter.js';
import { inspectDump } from '../../src/pipeline/info.js';
import { reassembleDump } from '../../src/pipeline/reassemble.js';
import { PfnState } from '../../src/formats/types.js';
import { havePeers, readWithPeer } from './peers.js';
import { runBuiltPiped } from '../helpers/built-cli.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';

const okMdf = havePeers('split sets and streams vs makedumpfile', 'makedumpfile', 'libkdumpfile');

let dir: TempDir;
let image: string;
let maxPfn = 0;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-split-interop-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'xen-hvm-balloon', size: 96 << 20, seed: 11, kernel: '5.10' });
  const r = await openInput(image);
  maxPfn = r.info.maxPfn;
  await r.close();
}, 120_000);
afterAll(() => dir?.remove());

function mdf(args: string[]): void {
  const r = spawnSync('makedumpfile', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`makedumpfile ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

describe.runIf(okMdf)('makedumpfile --split sets', () => {
  const cases = [
    { n: 2, args: ['-c', '-d', '1'] },
    { n: 3, args: ['-l', '-d', '31'] },
  ];
  for (const c of cases) {
    describe(`${c.n} parts (${c.args.join(' ')})`, () => {
      let parts: string[];
      let theirs: string;
      let ours: string;
      beforeAll(async () => {
        parts = Array.from({ length: c.n }, (_, i) => dir.file(`split${c.n}-${i}.kdump`));
        // Small split blocks so that every part holds pages.
        mdf([...c.args, '--splitblock-size', '1024', '--split', image, ...parts]);
        theirs = dir.file(`split${c.n}.mdf-reassembled`);
        mdf(['--reassemble', ...parts, theirs]);
        ours = dir.file(`split${c.n}.ours-reassembled`);
        await reassembleDump({ parts: [...parts].reverse(), output: ours });
      }, 180_000);

      it('every part holds some of the pages', async () => {
        const r = await openInput(parts);
        for (const p of r.info.parts!) expect(p.endPfn).toBeGreaterThan(p.startPfn);
        await r.close();
      });

      it('dumpsieve reassemble gives makedumpfile --reassemble\'s file, byte for byte', async () => {
        expect((await readFile(ours)).equals(await readFile(theirs))).toBe(true);
      });

      it('libkdumpfile reads every page of both files the same', () => {
        const a = readWithPeer('libkdumpfile', ours, [[0, maxPfn]]);
        const b = readWithPeer('libkdumpfile', theirs, [[0, maxPfn]]);
        let pages = 0;
        for (let p = 0; p < maxPfn; p++) {
          const x = a.pages.get(p)!;
          const y = b.pages.get(p)!;
          expect(x, `pfn 0x${p.toString(16)}`).toEqual(y);
          if (x.ok) pages++;
        }
        expect(pages).toBeGreaterThan(1000);
      }, 120_000);

      it('info and filter -E on the parts equal the same on the reassembled file', async () => {
        const a = await inspectDump(parts);
        const b = await inspectDump(theirs);
        expect([a.ramPages, a.absentPages, a.maxPfn, a.details['dumped pages']]).toEqual([b.ramPages, b.absentPages, b.maxPfn, b.details['dumped pages']]);
        const fromParts = dir.file(`split${c.n}.parts.elf`);
        const fromFile = dir.file(`split${c.n}.file.elf`);
        await filterDump({ input: parts, output: fromParts, format: 'elf', dumpLevel: 31 });
        await filterDump({ input: theirs, output: fromFile, format: 'elf', dumpLevel: 31 });
        expect((await readFile(fromParts)).equals(await readFile(fromFile))).toBe(true);
      }, 120_000);

      it('makedumpfile re-filters the file dumpsieve reassembled', () => {
        mdf(['-c', '-d', '31', ours, dir.file(`split${c.n}.refiltered`)]);
      });
    });
  }
});

describe.runIf(okMdf)('makedumpfile -F on standard input', () => {
  it('`makedumpfile -F … | dumpsieve filter - OUT` equals `dumpsieve filter FILE OUT` on makedumpfile\'s file', async () => {
    const file = dir.file('mdf-plain.kdump');
    mdf(['-c', '-d', '1', image, file]);
    const fromFile = dir.file('from-file.kdump');
    await filterDump({ input: file, output: fromFile, dumpLevel: 31, codec: 'zlib' });
    const fromPipe = dir.file('from-pipe.kdump');
    const r = await runBuiltPiped(`makedumpfile -F -c -d 1 '${image}' 2>/dev/null`, ['filter', '-q', '-c', '-d', '31', '-', fromPipe]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(fromPipe)).equals(await readFile(fromFile))).toBe(true);
    // And the ELF output of both.
    const e1 = dir.file('from-file.elf');
    const e2 = dir.file('from-pipe.elf');
    await filterDump({ input: file, output: e1, dumpLevel: 31, format: 'elf' });
    const r2 = await runBuiltPiped(`makedumpfile -F -c -d 1 '${image}' 2>/dev/null`, ['filter', '-q', '-E', '-d', '31', '-', e2]);
    expect(r2.code, r2.stderr).toBe(0);
    expect((await readFile(e2)).equals(await readFile(e1))).toBe(true);
  }, 180_000);
});

// ---------------------------------------------------------------------------
// QEMU

const haveQemu = spawnSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' }).status === 0;
if (!haveQemu) {
  if (process.env.DUMPSIEVE_REQUIRE_PEERS === '1') throw new Error('qemu-system-x86_64 is required (DUMPSIEVE_REQUIRE_PEERS=1)');
  process.stderr.write('\n*** INTEROP SKIPPED: QEMU dumps: missing qemu-system-x86_64 (apt-get install -y qemu-system-x86)\n');
}

/** Pages of an ELF64 core by pfn, from its PT_LOADs: a judge independent of src/. */
async function elfPages(path: string): Promise<{ get(pfn: number): Promise<Buffer | undefined> }> {
  const fh = await open(path, 'r');
  const eh = Buffer.alloc(64);
  await fh.read(eh, 0, 64, 0);
  const phoff = Number(eh.readBigUInt64LE(32));
  const phnum = eh.readUInt16LE(56);
  const ph = Buffer.alloc(phnum * 56);
  await fh.read(ph, 0, ph.length, phoff);
  const loads: Array<{ paddr: number; off: number; filesz: number }> = [];
  for (let i = 0; i < phnum; i++) {
    if (ph.readUInt32LE(i * 56) !== 1) continue;
    loads.push({ off: Number(ph.readBigUInt64LE(i * 56 + 8)), paddr: Number(ph.readBigUInt64LE(i * 56 + 24)), filesz: Number(ph.readBigUInt64LE(i * 56 + 32)) });
  }
  return {
    async get(pfn) {
      const a = pfn * 4096;
      const l = loads.find((s) => a >= s.paddr && a + 4096 <= s.paddr + s.filesz);
      if (!l) return undefined;
      const b = Buffer.alloc(4096);
      await fh.read(b, 0, 4096, l.off + (a - l.paddr));
      return b;
    },
  };
}

/** Start QEMU (no guest kernel: SeaBIOS runs and waits), let it run a moment, stop it, dump ELF and kdump-zlib. */
async function qemuDumps(elf: string, kdump: string): Promise<void> {
  const sock = dir.file('qmp.sock');
  const q = spawn('qemu-system-x86_64', ['-m', '64', '-nodefaults', '-display', 'none', '-machine', 'pc,accel=tcg', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  try {
    let conn;
    for (let i = 0; ; i++) {
      try {
        conn = createConnection(sock);
        await once(conn, 'connect');
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const lines = createInterface({ input: conn })[Symbol.asyncIterator]();
    const reply = async (): Promise<Record<string, unknown>> => {
      for (;;) {
        const l = JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
        if (!('event' in l)) return l;
      }
    };
    const cmd = async (execute: string, args?: object): Promise<Record<string, unknown>> => {
      conn.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
      const r = await reply();
      if ('error' in r) throw new Error(`QMP ${execute}: ${JSON.stringify(r.error)}`);
      return r;
    };
    await reply(); // greeting
    await cmd('qmp_capabilities');
    await new Promise((r) => setTimeout(r, 1500));
    await cmd('stop');
    await cmd('dump-guest-memory', { paging: false, protocol: `file:${elf}` });
    await cmd('dump-guest-memory', { paging: false, protocol: `file:${kdump}`, format: 'kdump-zlib' });
    await cmd('quit');
    conn.destroy();
  } finally {
    q.kill('SIGKILL');
  }
}

describe.runIf(haveQemu)('QEMU dump-guest-memory', () => {
  it('the kdump-zlib (flattened) file reads page for page as the ELF dump of the same paused guest', async () => {
    const elf = dir.file('qemu.elf');
    const kdump = dir.file('qemu.kdump');
    await qemuDumps(elf, kdump);
    execFileSync('chmod', ['u+rw', elf, kdump]);
    const r = await openInput(kdump);
    expect(r.info.format).toBe('flattened-kdump');
    expect(r.info.details?.['header version']).toBe(6);
    const judge = await elfPages(elf);
    const st = new Uint8Array(r.info.maxPfn);
    await r.pfnStates(0, r.info.maxPfn, st);
    const page = Buffer.alloc(4096);
    let compared = 0;
    let nonzero = 0;
    for (let p = 0; p < r.info.maxPfn; p++) {
      if (st[p] === PfnState.HOLE) continue;
      const want = await judge.get(p);
      expect(want, `pfn 0x${p.toString(16)} is RAM in the kdump file but not in the ELF`).toBeDefined();
      if (st[p] !== PfnState.PRESENT) continue;
      await r.readPages(p, 1, page);
      expect(page.equals(want!), `pfn 0x${p.toString(16)}`).toBe(true);
      compared++;
      if (page.some((b) => b !== 0)) nonzero++;
    }
    await r.close();
    expect(compared).toBeGreaterThanOrEqual(16384);
    expect(nonzero).toBeGreaterThan(0);
    // The same through standard input.
    const viaPipe = await runBuiltPiped(`cat '${kdump}'`, ['info', '--json', '-']);
    expect(viaPipe.code, viaPipe.stderr).toBe(0);
    expect((JSON.parse(viaPipe.stdout) as { ramPages: number }).ramPages).toBe(st.reduce((n, s) => n + (s !== PfnState.HOLE ? 1 : 0), 0));
  }, 120_000);
});
