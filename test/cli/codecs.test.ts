/**
 * The compression options end to end through the CLI (in process, or the
 * entry DUMPSIEVE_BIN names, such as the bundle): every letter and long
 * option writes the pinned bytes, on the main thread and in workers; the
 * options come from the codec table; --version needs no package.json.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CODECS } from '../../src/formats/kdump/codecs/table.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { PINNED } from '../formats/kdump/pinned-output.js';
import { cli } from './run.js';

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
});
