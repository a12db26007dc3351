/**
 * The compression options end to end through the CLI (in process, or the
 * entry DUMPSIEVE_BIN names, such as the bundle): every letter and long
 * option writes the pinned bytes, on the main thread and in workers; the
 * options come from the codec table; --version needs no package.json.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CODECS } from '../../src/formats/kdump/codecs/table.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { PINNED } from '../formats/kdump/pinned-output.js';
import { BIN, binCommand, cli } from './run.js';
import { assertFreshBuild, ROOT } from '../helpers/built-cli.js';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url);
const sample = (name: string): string => fileURLToPath(new URL(`samples/${name}.vmcore.br`, root));

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-cli-codecs-');
});
afterAll(() => dir?.remove());

describe('compression options', () => {
  // plain -d 0 keeps enough pages for the worker pool; xen-hvm-balloon -d 31 runs on the main thread.
  for (const [name, level, codec, want] of PINNED) {
    const spec = PAGE_CODECS.find((c) => c.name === codec);
    const threads = name === 'plain' ? '2' : '0';
    const opt = spec ? (level === 0 ? [`--${spec.long}`] : [`-${spec.letter}`]) : [];
    it(`${name} -d ${level} ${opt.join(' ') || '(none)'} --num-threads ${threads}`, async () => {
      const out = dir.file(`${name}-${codec}.kdump`);
      const r = await cli('filter', '-q', ...opt, '-d', String(level), '--num-threads', threads, sample(name), out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(want);
    });
  }

  it('refuses two codecs, and a codec with ELF', async () => {
    const two = await cli('filter', '-l', '--zstd', sample('plain'), dir.file('x'));
    expect(two.code).toBe(2);
    expect(two.stderr).toBe('dumpsieve: choose one compression: -l, -z\n');
    const elf = await cli('filter', '-E', '--snappy', sample('plain'), dir.file('x'));
    expect(elf.code).toBe(2);
    expect(elf.stderr).toBe('dumpsieve: -E (ELF) cannot be combined with -p: ELF pages are not compressed\n');
  });

  it('filter --help lists one option per codec of the table', async () => {
    const r = await cli('filter', '--help');
    for (const c of PAGE_CODECS) expect(r.stdout).toMatch(new RegExp(`-${c.letter}, --${c.long}\\s+Compress pages with ${c.name}`));
  });

  it('analyze predicts a column per codec, named with its option', async () => {
    const r = await cli('analyze', sample('xen-hvm-balloon'));
    expect(r.code).toBe(0);
    const header = r.stdout.split('\n').find((l) => l.includes('kept pages'))!;
    expect(header.trim().split(/\s{2,}/)).toEqual(['level', 'kept pages', 'none', ...PAGE_CODECS.map((c) => `${c.name} (-${c.letter})`), 'ELF (-E)']);
  });

  it('--version is package.json\'s version', async () => {
    const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as { version: string };
    const r = await cli('--version');
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  // A node started with --jitless (or --lite-mode) has no WebAssembly, which
  // zstd is; LZO falls back to its JavaScript compressor.
  describe('on a node without WebAssembly', () => {
    const jitless = (...argv: string[]): { code: number | null; stderr: string } => {
      let cmd: string;
      let args: string[];
      let env = process.env;
      if (BIN && !/\.m?js$/.test(BIN)) {
        [cmd, args] = binCommand(BIN);
        env = { ...process.env, DUMPSIEVE_NODE_OPTIONS: '--jitless' };
      } else {
        if (!BIN) assertFreshBuild();
        cmd = process.execPath;
        args = ['--jitless', BIN ?? join(ROOT, 'bin/dumpsieve.js')];
      }
      const r = spawnSync(cmd, [...args, ...argv], { encoding: 'utf8', env, timeout: 120_000 });
      // node's own notice of the flag it turned off is not dumpsieve's.
      return { code: r.status, stderr: r.stderr.replace(/^Warning: disabling flag --expose_wasm.*\n/m, '') };
    };
    const refusal = 'dumpsieve: zstd pages need WebAssembly, which this node runs without (started with --jitless or --lite-mode?)\n';

    it('-z ends in one line, exit 2, nothing left in the output folder (workers or not)', async () => {
      const sub = dir.file('jitless-z');
      await mkdir(sub);
      for (const threads of ['0', '2']) {
        const r = jitless('filter', '-z', '-d', '0', '--num-threads', threads, sample('plain'), join(sub, 'out.kdump'));
        expect(r.stderr).toBe(refusal);
        expect(r.code).toBe(2);
      }
      expect(await readdir(sub)).toEqual([]);
    });

    it('reading a zstd dump names the missing WebAssembly, not a page missing from the dump', async () => {
      const kd = dir.file('jitless-read.kdump');
      expect((await cli('filter', '-q', '-z', '-d', '31', sample('xen-hvm-balloon'), kd)).code).toBe(0);
      for (const argv of [['dmesg', kd], ['filter', '-q', '-d', '31', kd, dir.file('jitless-refilter.kdump')]]) {
        const r = jitless(...argv);
        expect(r.stderr, argv[0]).toBe(refusal);
        expect(r.code, argv[0]).toBe(2);
      }
    });

    it('-l writes the pinned bytes with the JavaScript compressor', async () => {
      const [, level, , want] = PINNED.find(([name, , codec]) => name === 'xen-hvm-balloon' && codec === 'lzo')!;
      const out = dir.file('jitless.lzo.kdump');
      const r = jitless('filter', '-q', '-l', '-d', String(level), sample('xen-hvm-balloon'), out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(want);
    });
  });
});
