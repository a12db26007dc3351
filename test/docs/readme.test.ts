/**
 * The README's examples run as written: every ```sh block with a dumpsieve
 * command runs, command by command, through bash (pipes and redirections
 * as a reader's shell does them) in one scratch directory, with
 * `dumpsieve` on the PATH (the built CLI, or the entry DUMPSIEVE_BIN
 * names), and each must exit 0. Blocks that also run makedumpfile need it
 * installed (test/interop/peers.ts). And `npm start` works twice in a row,
 * writing into the git-ignored samples/out/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertFreshBuild, ROOT } from '../helpers/built-cli.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { havePeers } from '../interop/peers.js';
import { BIN, binCommand } from '../cli/run.js';

interface Block {
  /** Line of the opening fence. */
  line: number;
  /** Commands: continuation lines joined, comments and blank lines dropped. */
  commands: string[];
}

/** The ```sh blocks of a markdown text. */
function shellBlocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    const commands: string[] = [];
    let pending = '';
    for (const l of body) {
      if (!pending && (/^\s*#/.test(l) || !l.trim())) continue;
      pending += l.replace(/\\$/, ' ');
      if (!l.endsWith('\\')) {
        commands.push(pending.replace(/\s+/g, ' ').trim());
        pending = '';
      }
    }
    out.push({ line: start, commands });
  }
  return out;
}

const runs = (c: string, program: string): boolean => new RegExp(`(^|[|;&]\\s*)${program}\\s`).test(c);

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const BLOCKS = shellBlocks(README).filter((b) => b.commands.some((c) => runs(c, 'dumpsieve')));

describe('README examples', () => {
  let dir: TempDir;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    if (!BIN) assertFreshBuild();
    dir = await tempDir('dumpsieve-readme-');
    // `dumpsieve` as an installed package provides it: a command on the PATH.
    const [cmd, pre] = binCommand(BIN ?? join(ROOT, 'bin/dumpsieve.js'));
    const q = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
    await writeFile(dir.file('dumpsieve'), `#!/bin/sh\nexec ${[cmd, ...pre].map(q).join(' ')} "$@"\n`);
    await chmod(dir.file('dumpsieve'), 0o755);
    env = { ...process.env, PATH: `${dir.path}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  });
  afterAll(() => dir?.remove());

  it('has blocks to run, the first making the guest the others read', () => {
    expect(BLOCKS.length).toBeGreaterThanOrEqual(2);
    expect(BLOCKS[0]!.commands[0]).toMatch(/^dumpsieve synth /);
  });

  for (const block of BLOCKS) {
    const needsMakedumpfile = block.commands.some((c) => runs(c, 'makedumpfile'));
    it(`README.md:${block.line}: ${block.commands.length} commands exit 0`, () => {
      if (needsMakedumpfile && !havePeers(`README.md:${block.line}`, 'makedumpfile')) return;
      const work = join(dir.path, 'work');
      mkdirSync(work, { recursive: true });
      for (const command of block.commands) {
        const r = spawnSync('bash', ['-o', 'pipefail', '-c', command], { cwd: work, env, encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20 });
        expect(r.status, `${command}\n${r.stderr.slice(-2000)}`).toBe(0);
        expect(r.stderr).not.toMatch(/internal error/);
      }
      // The side files the examples name are files the synth command wrote.
      for (const name of new Set(block.commands.join(' ').match(/guest\.vmcore\.[a-z-]+/g) ?? [])) expect(existsSync(join(work, name)), name).toBe(true);
    }, 600_000);
  }

  it('the block parser joins continuation lines and drops comments', () => {
    const b = shellBlocks('text\n```sh\n# a comment\ndumpsieve validate x \\\n    --flags y\n\necho hi\n```\n');
    expect(b).toEqual([{ line: 2, commands: ['dumpsieve validate x --flags y', 'echo hi'] }]);
  });
});

describe('npm start', () => {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  const out = join(ROOT, 'samples/out/xen-hvm-balloon.kdump');

  it('writes into samples/out/ (git-ignored), not a fixed path elsewhere', () => {
    expect(script).toContain('samples/out/xen-hvm-balloon.kdump');
    expect(script).not.toMatch(/\/tmp|TMPDIR/);
    const ignored = spawnSync('git', ['check-ignore', '-q', 'samples/out/xen-hvm-balloon.kdump'], { cwd: ROOT });
    expect(ignored.status).toBe(0);
  });

  it('runs twice in a row (the build step aside), printing what it saved', () => {
    if (!BIN) assertFreshBuild();
    for (let i = 0; i < 2; i++) {
      const r = spawnSync('npm', ['run', '--silent', '--ignore-scripts', 'start'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Remaining pages/);
      expect(r.stderr).toContain('Reading-cost model (an estimate, not measured)');
      expect(existsSync(out)).toBe(true);
    }
  }, 300_000);
});
