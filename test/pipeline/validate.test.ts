import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { validateDump } from '../../src/pipeline/validate.js';
import { oracleFromSpec } from '../../src/ram/chain.js';
import { readKexecSegments } from '../../src/formats/kexec-segments.js';
import { cli } from '../cli/run.js';
import { makeGuest, readTruth, tempDir, type TempDir } from '../helpers/guests.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-validate-');
});
afterAll(() => dir.remove());

const ORACLE: Record<string, string> = {
  'xen-hvm-balloon': 'xen-hvm:.memtypes',
  'xen-pv-balloon': 'xen-pv:.p2m',
  'virtio-mem': 'virtio-mem:.virtio-mem',
};
const oracleSpec = (scenario: string, image: string): string => {
  const [kind, suffix] = (ORACLE[scenario] ?? 'ranges:.backed').split(':');
  return `${kind}:${image}${suffix}`;
};

async function run(scenario: string, image: string, maxRanges = 8) {
  const kexec = scenario === 'xen-hvm-balloon' ? await readKexecSegments(`${image}.kexec`) : undefined;
  return validateDump({
    input: image,
    oracle: await oracleFromSpec(oracleSpec(scenario, image)),
    flagsTable: `${image}.kpageflags`,
    kexecSegments: kexec,
    readUnbacked: true,
    maxRanges,
  });
}

const CLEAN: Array<[string, string]> = [
  ['xen-hvm-balloon', '5.10'],
  ['xen-hvm-balloon', '6.12'],
  ['xen-pv-balloon', '6.1'],
  ['virtio-balloon', '4.19'],
  ['virtio-balloon', '5.10'],
  ['virtio-balloon', '6.1'],
  ['virtio-balloon', '6.12'],
  ['hv-balloon', '6.6'],
  ['virtio-mem', '6.11'],
  ['vmware-balloon', '5.10-nohugetlb'],
  ['plain', '5.10'],
  ['plain', '6.12'],
];

describe('clean guests give no findings', () => {
  for (const [scenario, kernel] of CLEAN) {
    it(`${scenario} (${kernel})`, async () => {
      const image = await makeGuest(dir, `clean-${scenario}-${kernel}.vmcore`, { scenario, size: 64 << 20, seed: 71, kernel });
      const r = await run(scenario, image);
      expect(r.findings).toEqual([]);
      // Free pages reported to the host are unbacked but no finding: the note counts them.
      const { runs } = await readTruth(`${image}.truth`);
      const reported = runs.filter((x) => x.variant === 'reported' && !x.ram).reduce((a, x) => a + x.count, 0);
      const note = /(\d+) free pages are not backed \(reported to the host\)/.exec(r.notes.join('\n'));
      expect(note ? Number(note[1]) : 0).toBe(reported);
      expect(r.failed).toBe(false);
      const ran = r.checks.filter((c) => c.ran).map((c) => c.id);
      expect(ran).toEqual(expect.arrayContaining(['offline-backed', 'unbacked-unflagged', 'kpageflags-memmap', 'content-not-ram', 'device-in-dump', 'protected-excluded']));
      if (scenario === 'xen-pv-balloon') expect(ran).toContain('xen-pv-p2m');
      if (scenario === 'virtio-mem') expect(ran).toContain('virtio-mem');
      if (scenario === 'xen-hvm-balloon') expect(ran).toContain('kexec-overlap');
    }, 60_000);
  }
});

const FAULTS: Array<[string, string, string[]]> = [
  ['unflagged-balloon', 'unbacked-unflagged', ['xen-hvm-balloon', 'xen-pv-balloon', 'virtio-balloon', 'hv-balloon', 'virtio-mem', 'vmware-balloon']],
  ['backed-offline', 'offline-backed', ['xen-hvm-balloon', 'xen-pv-balloon', 'virtio-balloon', 'hv-balloon', 'virtio-mem', 'vmware-balloon']],
  ['kexec-over-balloon', 'kexec-overlap', ['xen-hvm-balloon']],
  ['kpageflags-mismatch', 'kpageflags-memmap', ['xen-hvm-balloon', 'virtio-balloon', 'plain']],
  ['scratch-in-ptload', 'device-in-dump', ['xen-hvm-balloon']],
  ['stale-unbacked', 'content-not-ram', ['xen-hvm-balloon', 'virtio-mem', 'vmware-balloon']],
  ['type-overlap', 'type-overlap', ['virtio-balloon', 'plain']],
];

describe('each planted fault is found by its check, at the planted pfns', () => {
  for (const [fault, check, hosts] of FAULTS) {
    for (const scenario of hosts) {
      it(`${fault} in ${scenario}`, async () => {
        const image = await makeGuest(dir, `fault-${fault}-${scenario}.vmcore`, { scenario, size: 64 << 20, seed: 81, kernel: '5.10', faults: [fault] });
        const { runs } = await readTruth(`${image}.truth`);
        const planted = new Set<number>();
        for (const r of runs) if (r.fault === fault) for (let p = r.start; p < r.start + r.count; p++) planted.add(p);
        expect(planted.size).toBeGreaterThan(0);
        const r = await run(scenario, image, 1_000_000);
        const f = r.findings.find((x) => x.id === check);
        expect(f, `findings: ${r.findings.map((x) => x.id).join(', ')}`).toBeDefined();
        const found = new Set<number>();
        for (const [s, e] of f!.ranges) for (let p = s; p < e; p++) found.add(p);
        expect(f!.moreRanges).toBe(0);
        if (check === 'kexec-overlap' || check === 'type-overlap') {
          // kexec: the ballooned pfns under the segment; type-overlap on a
          // free block: its head pages (the tails carry no type).
          for (const p of found) expect(planted.has(p), `pfn 0x${p.toString(16)}`).toBe(true);
          for (const r of runs) if (r.fault === fault) expect([...found].some((p) => p >= r.start && p < r.start + r.count)).toBe(true);
        } else {
          expect([...found].sort((a, b) => a - b)).toEqual([...planted].sort((a, b) => a - b));
        }
        expect(r.failed).toBe(f!.severity === 'error' || r.findings.some((x) => x.severity === 'error'));
      }, 60_000);
    }
  }
});

describe('bad or conflicting inputs', () => {
  it('a malformed kexec segment file, and a kpageflags table shorter than the image, exit 2 with one line', async () => {
    const image = await makeGuest(dir, 'bad-inputs.vmcore', { scenario: 'xen-hvm-balloon', size: 64 << 20, seed: 91, kernel: '6.1' });
    const seg = dir.file('bad.kexec');
    await writeFile(seg, 'dumpsieve-kexec-segments 1\nmem=0x1000 memsz=banana\n');
    const a = await cli('validate', image, '--kexec-segments', seg);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(new RegExp(`^dumpsieve: ${seg}: line 2: .+\\n$`));
    const short = dir.file('short.kpageflags');
    await writeFile(short, (await readFile(`${image}.kpageflags`)).subarray(0, 8 * 0x2000));
    const b = await cli('validate', image, '--flags', short);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(new RegExp(`^dumpsieve: ${short}: the kpageflags table has 8192 entries but the image has RAM up to pfn 0x[0-9a-f]+ \\(\\d+ RAM pfns not covered\\)\\n$`));
  });

  it('a table longer than the image (the kernel rounds to a section) is reported, not refused', async () => {
    const image = dir.file('bad-inputs.vmcore');
    const r = await validateDump({ input: image, flagsTable: `${image}.kpageflags` });
    expect(r.notes.join('\n')).toMatch(/kpageflags table covers pfns up to 0x[0-9a-f]+ \(rounded to a section/);
  });

  it('exit code 3 when an error-severity check fails, 0 when clean', async () => {
    const bad = await makeGuest(dir, 'exit3.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 92, kernel: '6.1', faults: ['backed-offline'] });
    const r3 = await cli('validate', bad, '--ram-oracle', `ranges:${bad}.backed`);
    expect(r3.code).toBe(3);
    expect(r3.stdout).toMatch(/^ERROR offline-backed: offline pages the hypervisor backs: [\d,]+ pages$/m);
    const clean = await makeGuest(dir, 'exit0.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 92, kernel: '6.1' });
    const r0 = await cli('validate', '--json', clean, '--ram-oracle', `ranges:${clean}.backed`);
    expect(r0.code).toBe(0);
    expect(JSON.parse(r0.stdout).findings).toEqual([]);
  });

  it('the headline says how many checks ran and what enables the rest; a warning is WARN, not FAIL', async () => {
    const clean = await makeGuest(dir, 'headline.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 94, kernel: '6.1' });
    const r = await cli('validate', clean);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[1]).toBe('3 of 11 checks ran: no findings.');
    expect(lines[2]).toMatch(/^Not run: offline-backed, unbacked-unflagged \(needs --ram-oracle\); .*kpageflags-memmap \(needs --flags FILE\.kpageflags\); .*content-not-ram \(needs --ram-oracle and --read-unbacked\)/);
    expect(r.stdout).not.toMatch(/No findings/);
    const warn = await makeGuest(dir, 'warn.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 93, kernel: '6.1', faults: ['type-overlap'] });
    const w = await cli('validate', warn);
    expect(w.code).toBe(0);
    expect(w.stdout.split('\n')[1]).toBe('3 of 11 checks ran: 1 warning.');
    expect(w.stdout).toMatch(/^ {2}WARN {2}type-overlap /m);
    expect(w.stdout).not.toMatch(/FAIL/);
  });
});
