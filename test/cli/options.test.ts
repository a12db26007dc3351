/**
 * What every command means the same way: numeric options checked by the
 * parser, naming the option; makedumpfile's options dumpsieve does not
 * have, answered in one line (and the commands the answers name exist);
 * -q; -F and a terminal; the reading-cost model only when asked for and
 * labelled as one; pfn ranges as half-open hex ranges.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKdump, type KdumpSpec } from '../builders/kdump-builder.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';
import { cli, cliWith, ptyCli } from './run.js';

const sample = (name: string): string => fileURLToPath(new URL(`../../samples/${name}`, import.meta.url));
const FAULTS = sample('xen-hvm-balloon-faults.vmcore');

let dir: TempDir;
let image: string;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-cli-options-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'xen-hvm-balloon', size: 48 << 20, seed: 12, kernel: '6.1' });
});
afterAll(() => dir?.remove());

describe('numeric options are checked while parsing: exit 2, one line naming the option and the value', () => {
  const cases: Array<[string, string[], string]> = [
    ['-d abc', ['filter', '-d', 'abc', 'IN', 'OUT'], "-d (--dump-level): 'abc' is not a whole number from 0 to 31"],
    ['-d 32', ['filter', '-d', '32', 'IN', 'OUT'], "-d (--dump-level): '32' is not a whole number from 0 to 31"],
    ['-d 1.5', ['filter', '-d', '1.5', 'IN', 'OUT'], "-d (--dump-level): '1.5' is not a whole number from 0 to 31"],
    ['-d empty', ['filter', '-d', '', 'IN', 'OUT'], "-d (--dump-level): '' is not a whole number from 0 to 31"],
    ['--num-threads -3', ['filter', '--num-threads', '-3', 'IN', 'OUT'], "--num-threads: '-3' is not a whole number from 0 to 256"],
    ['--message-level abc', ['filter', '--message-level', 'abc', 'IN', 'OUT'], "--message-level: 'abc' is not a whole number from 0 to 31"],
    ['analyze -d -1', ['analyze', '-d', '-1', 'IN'], "-d (--dump-level): '-1' is not a whole number from 0 to 31"],
    ['--sample x', ['analyze', '--sample', 'x', 'IN'], "--sample: 'x' is not a whole number of at least 0"],
    ['--sample -5', ['analyze', '--sample', '-5', 'IN'], "--sample: '-5' is not a whole number of at least 0"],
    ['analyze --seed 2^32', ['analyze', '--seed', '4294967296', 'IN'], "--seed: '4294967296' is not a whole number from 0 to 4294967295"],
    ['synth --seed x', ['synth', 'plain', 'OUT', '--seed', 'x'], "--seed: 'x' is not a whole number from 0 to 4294967295"],
    ['--tail 2.5', ['dmesg', '--tail', '2.5', 'IN'], "--tail: '2.5' is not a whole number of at least 0"],
    ['--cyclic-buffer 2', ['filter', '--cyclic-buffer', '2', 'IN', 'OUT'], "--cyclic-buffer: '2' is not a whole number from 4 to 65536"],
    ['--memory-limit 0', ['filter', '--memory-limit', '0', 'IN', 'OUT'], "--memory-limit: '0' is not a whole number from 1 to 1048576"],
    ['--cost-params', ['filter', '--cost-params', 'call=fast', 'IN', 'OUT'], "--cost-params: 'call=fast' is not NAME=VALUE (call=2us, read=1GiB/s, fabricate=10ms)"],
  ];
  for (const [name, argv, message] of cases) {
    it(name, async () => {
      const r = await cli(...argv);
      expect([r.code, r.stderr, r.stdout]).toEqual([2, `dumpsieve: ${message}\n`, '']);
    });
  }

  it('an option without its value names the option', async () => {
    const r = await cli('dmesg', image, '--tail');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^dumpsieve: .*\btail\b.*\n$/);
  });

  it('valid values pass: hex, repeated (the last counts), zero', async () => {
    const a = await cli('filter', '-q', '--json', '-d', '0x1f', '-d', '1', '--num-threads', '0', image, dir.file('n1.kdump'));
    expect(a.code).toBe(0);
    expect((JSON.parse(a.stdout) as { dumpLevel: number }).dumpLevel).toBe(1);
    const b = await cli('dmesg', '--tail', '0', image);
    expect([b.code, b.stdout]).toEqual([0, '']);
  });

  it("--memory-limit and makedumpfile's --cyclic-buffer: the same dump, no compression thread where none fits", async () => {
    const plain = await cli('filter', '--json', '-c', '-d', '1', image, dir.file('plain.kdump'));
    const knobs = await cli('filter', '--json', '-c', '-d', '1', '--memory-limit', '64', '--cyclic-buffer', '4', image, dir.file('knobs.kdump'));
    expect([plain.code, knobs.code]).toEqual([0, 0]);
    const workers = (r: { stdout: string }): number => (JSON.parse(r.stdout) as { output: { workers: number } }).output.workers;
    // Without the limit zlib gets a worker per CPU (at most 4) on a machine with more than one.
    expect(workers(plain)).toBe(availableParallelism() > 1 ? Math.min(4, availableParallelism()) : 0);
    expect(workers(knobs)).toBe(0);
    expect(readFileSync(dir.file('knobs.kdump')).equals(readFileSync(dir.file('plain.kdump')))).toBe(true);
  });
});

describe("makedumpfile's options that dumpsieve does not have", () => {
  const flags = ['-x', '-i', '-g', '--split', '--reassemble', '-R', '--eppic', '--config', '-e', '--mem-usage', '--dump-dmesg', '-X'];
  /** What each answer must name where dumpsieve has an equivalent, and the command that is. */
  const use: Array<[string, string, string]> = [
    ['--reassemble', 'use dumpsieve reassemble OUT PART...', 'reassemble'],
    ['-R', 'use dumpsieve filter - DUMP', 'filter'],
    ['--mem-usage', 'use dumpsieve analyze DUMP', 'analyze'],
    ['--dump-dmesg', 'use dumpsieve dmesg DUMP', 'dmesg'],
    ['-g', 'use dumpsieve info DUMP', 'info'],
    ['-i', 'use --flags FILE', 'filter'],
    ['--split', 'dumpsieve filter PART... OUT', 'filter'],
  ];

  it('each is one line, exit 2, before anything is read, with or without a command', async () => {
    for (const flag of flags) {
      for (const argv of [['filter', flag, 'vmlinux', image, dir.file('never')], [flag, image], ['analyze', flag.startsWith('--') ? `${flag}=x` : flag, image]]) {
        const r = await cli(...argv);
        expect(r.code, argv.join(' ')).toBe(2);
        expect(r.stderr).toMatch(new RegExp(`^dumpsieve: ${flag} is not supported: [^\\n]+\\n$`));
        expect(r.stdout).toBe('');
      }
    }
    expect(existsSync(dir.file('never'))).toBe(false);
  });

  it('where dumpsieve has an equivalent, the answer names it, and that command exists', async () => {
    for (const [flag, answer, command] of use) {
      const r = await cli(flag);
      expect(r.stderr).toContain(answer);
      const help = await cli(command, '--help');
      expect(help.code).toBe(0);
    }
    // The -R answer runs as given: a flattened stream on standard input.
    const flat = await cli('filter', '-F', '-d', '31', image);
    expect(flat.code).toBe(0);
    const back = await cliWith({ stdin: flat.stdoutBytes }, 'filter', '-q', '-', dir.file('from-stdin.kdump'));
    expect(back.code).toBe(0);
  });

  it('`filter --help` lists each with its answer', async () => {
    const help = (await cli('filter', '--help')).stdout;
    const section = help.slice(help.indexOf("makedumpfile options dumpsieve does not have:"));
    for (const flag of flags) {
      const r = await cli(flag);
      const answer = r.stderr.replace(`dumpsieve: ${flag} is not supported: `, '').trim();
      expect(section.replace(/\s+/g, ' ')).toContain(`${flag} not supported: ${answer}`);
    }
  });
});

describe('-q means the same in every command: no report, no progress; errors, the exit code and what was asked for remain', () => {
  it('filter, analyze, info, synth: nothing on standard output or error; outputs written', async () => {
    const runs = [
      ['filter', '-q', '-d', '31', image, dir.file('q.kdump')],
      ['analyze', '-q', '--sample', '64', '--svg', dir.file('q.svg'), image],
      ['info', '-q', image],
      ['synth', '-q', 'plain', dir.file('q-synth.vmcore'), '--size', '32M'],
    ];
    for (const argv of runs) {
      const r = await cli(...argv);
      expect([r.code, r.stdout, r.stderr], argv.join(' ')).toEqual([0, '', '']);
    }
    for (const f of ['q.kdump', 'q.svg', 'q-synth.vmcore', 'q-synth.vmcore.truth']) expect(existsSync(dir.file(f)), f).toBe(true);
  });

  it('validate: only the exit code tells (3 on an error-severity finding)', async () => {
    const args = [`${FAULTS}.br`, '--ram-oracle', `xen-hvm:${FAULTS}.memtypes`];
    const loud = await cli('validate', ...args);
    expect(loud.code).toBe(3);
    expect(loud.stdout).toMatch(/^ERROR /m);
    const q = await cli('validate', '-q', ...args);
    expect([q.code, q.stdout, q.stderr]).toEqual([3, '', '']);
  });

  it('--json still prints with -q, the same JSON as without it', async () => {
    for (const argv of [['info', image], ['analyze', '--sample', '64', image], ['validate', image], ['dmesg', image]]) {
      const plain = await cli(...argv, '--json');
      const quiet = await cli(...argv, '--json', '-q');
      expect(quiet.code, argv[0]).toBe(plain.code);
      expect(quiet.stderr).toBe('');
      // The same report, but for the time the run took.
      const report = (r: { stdout: string }): unknown => ({ ...(JSON.parse(r.stdout) as object), seconds: undefined });
      expect(report(quiet)).toEqual(report(plain));
    }
    const f = await cli('filter', '-q', '--json', image, dir.file('qj.kdump'));
    expect([f.code, f.stderr]).toEqual([0, '']);
    expect(JSON.parse(f.stdout)).toHaveProperty('pages');
  });

  it('dmesg: the log is what was asked for; -q drops only the summary line', async () => {
    const loud = await cli('dmesg', image);
    const q = await cli('dmesg', '-q', image);
    expect(q.stdout).toBe(loud.stdout);
    expect(loud.stderr).toMatch(/records from the/);
    expect(q.stderr).toBe('');
  });

  it('reassemble: nothing printed, the file written', async () => {
    const spec = (part?: { start: number; end: number }): KdumpSpec => ({
      maxPfn: 600,
      ram: [[0, 600]],
      codec: 'zlib',
      dumpLevel: 1,
      vmcoreinfo: 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\n',
      pages: Array.from({ length: 200 }, (_, i) => ({ pfn: 3 * i })),
      ...(part ? { part } : {}),
    });
    const parts = [dir.file('r.1'), dir.file('r.2')];
    await writeFile(parts[0]!, buildKdump(spec({ start: 0, end: 0x123 })));
    await writeFile(parts[1]!, buildKdump(spec({ start: 0x123, end: 600 })));
    const r = await cli('reassemble', '-q', dir.file('r.kdump'), ...parts);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '', '']);
    expect(existsSync(dir.file('r.kdump'))).toBe(true);
    // info on the parts: each part's pfns as a half-open hex range.
    const info = await cli('info', '--no-triage', ...parts);
    expect(info.stdout).toMatch(/r\.1 +pfns \[0x0, 0x123\)/);
    expect(info.stdout).toMatch(/r\.2 +pfns \[0x123, 0x258\)/);
  });

  it('errors are printed with -q', async () => {
    const r = await cli('info', '-q', dir.file('no-such-dump'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dumpsieve: .*no-such-dump/);
  });
});

describe('-F and a terminal', () => {
  it('refuses to write a dump to a terminal (exit 2, nothing written)', async () => {
    const r = await ptyCli(['filter', '-F', '-d', '31', image]);
    expect(r.code).toBe(2);
    expect(r.screen).toBe('dumpsieve: -F writes a dump to standard output, which is a terminal: redirect it (> FILE) or pipe it (| ssh HOST ...)\r\n');
  });
});

describe('the reading-cost model', () => {
  const oracle = (): string[] => ['--ram-oracle', `xen-hvm:${image}.memtypes`];

  it('filter prints it only with --cost (or --cost-params), as a model with its parameters', async () => {
    const plain = await cli('filter', '-d', '31', ...oracle(), image, dir.file('c0.kdump'));
    expect([plain.code, plain.stdout]).toEqual([0, '']);
    expect(plain.stderr).toMatch(/Remaining pages/);
    expect(plain.stderr).not.toMatch(/cost|pfn_is_ram calls/i);
    const cost = await cli('filter', '-d', '31', '--cost', ...oracle(), image, dir.file('c1.kdump'));
    expect(cost.stderr).toContain('Reading-cost model (an estimate, not measured)');
    expect(cost.stderr).toContain('priced at 2.0 µs per pfn_is_ram answer, 1.00 GiB/s reading, 10.0 ms per page the hypervisor fabricates (change with --cost-params)');
    expect(cost.stderr).toMatch(/^ {2}flags \+ oracle \(this run\) /m);
    const params = await cli('filter', '-d', '31', '--cost-params', 'read=512MiB/s,call=5us', ...oracle(), image, dir.file('c2.kdump'));
    expect(params.stderr).toContain('priced at 5.0 µs per pfn_is_ram answer, 512 MiB/s reading, 10.0 ms per page');
  });

  it('the model times are the page counts of the JSON report priced at the stated parameters', async () => {
    const j = await cli('filter', '-q', '--json', '-d', '31', '--cost-params', 'call=1ms,read=1MiB/s,fabricate=1s', ...oracle(), image, dir.file('c3.kdump'));
    type S = { name: string; calls: number; bytesRead: number; unbackedRead: number; seconds: number };
    const strategies = (JSON.parse(j.stdout) as { cost: { strategies: S[] } }).cost.strategies;
    expect(strategies.length).toBeGreaterThan(3);
    for (const s of strategies) expect(s.seconds).toBeCloseTo(s.calls * 1e-3 + s.bytesRead / 2 ** 20 + s.unbackedRead, 6);
  });

  it('analyze always prints it, labelled the same way', async () => {
    const r = await cli('analyze', '--sample', '64', image);
    expect(r.stdout).toContain('Reading-cost model (an estimate, not measured)');
    expect(r.stdout).toContain('without a RAM oracle');
  });
});

describe('pfn ranges in human output are half-open hex ranges', () => {
  it('validate findings: the text ranges are the JSON ranges, written [start, end)', async () => {
    const args = [`${FAULTS}.br`, '--ram-oracle', `xen-hvm:${FAULTS}.memtypes`, '--flags', `${FAULTS}.kpageflags`, '--kexec-segments', `${FAULTS}.kexec`];
    const text = (await cli('validate', ...args)).stdout;
    const json = JSON.parse((await cli('validate', '--json', ...args)).stdout) as { findings: Array<{ id: string; ranges: Array<[number, number]>; moreRanges: number }> };
    expect(json.findings.length).toBeGreaterThan(2);
    for (const f of json.findings) {
      if (!f.ranges.length) continue;
      const want = f.ranges.map(([s, e]) => `[0x${s.toString(16)}, 0x${e.toString(16)})`).join(' ') + (f.moreRanges ? ` … (+${f.moreRanges} more)` : '');
      expect(text).toContain(`  pfns ${want}\n`);
    }
    for (const line of text.split('\n').filter((l) => /\bpfns? 0x/.test(l))) expect(line).not.toMatch(/0x[0-9a-f]+-0x/);
  });

  it('info: the kernel image as [start, end) ranges, the same as the JSON report', async () => {
    const text = (await cli('info', '--no-triage', image)).stdout;
    const j = JSON.parse((await cli('info', '--no-triage', '--json', image)).stdout) as { kernelImage: Array<[number, number]> };
    const [s, e] = j.kernelImage[0]!;
    expect(text).toContain(`pfns [0x${s.toString(16)}, 0x${e.toString(16)})`);
  });
});
