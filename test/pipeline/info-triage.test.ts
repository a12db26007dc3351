/**
 * The crash summary of `info` against the synth truth: release, crash time,
 * uptime, the panic and first-sign lines and the lines before them, the
 * crashing CPU and its NT_PRSTATUS registers, CR2 from the Oops, memory
 * totals with offline and hwpoison pages, and what wrote the dump.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterDump } from '../../src/pipeline/filter.js';
import { inspectDump } from '../../src/pipeline/info.js';
import { renderInfo } from '../../src/report/info-text.js';
import { makeGuest, presentPfns, readTruth, tempDir, type TempDir } from '../helpers/guests.js';
import { parseVmcoreinfo, readPhdrs, vmcoreinfoText } from '../synth/helpers.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-triage-');
});
afterAll(() => dir?.remove());

const CASES = [
  // [scenario, kernel, seed]: sysrq and Oops crashes, static and dynamic buffers, wrapped rings.
  ['virtio-balloon', '6.1', 2],
  ['xen-hvm-balloon', '6.12', 37],
  ['plain', '4.19', 100],
  ['hv-balloon', '5.10', 33],
] as const;

describe('info: the crash summary equals the truth', () => {
  it.each(CASES)('%s %s seed %i', async (scenario, kernel, seed) => {
    const img = await makeGuest(dir, `t-${kernel}-${seed}.vmcore`, { scenario, size: 96 << 20, seed, kernel });
    const { header, runs } = await readTruth(`${img}.truth`);
    const p = header.printk!;
    const vi = parseVmcoreinfo(vmcoreinfoText((await readPhdrs(img)).notes));
    const r = await inspectDump(img);
    const t = r.triage!;
    expect(t.release).toBe(header.osrelease);
    expect(t.crashTime).toBe(Number(vi.get('CRASHTIME')));
    const last = p.records[p.records.length - 1]!;
    expect(t.uptime).toEqual({ sec: Math.floor(last.tsNsec / 1e9), nsec: last.tsNsec % 1e9 });
    expect(t.panic?.text).toBe(p.crash.panic);
    expect(t.cause?.text).toBe(p.crash.cause);
    const ci = p.records.findIndex((x) => x.text === p.crash.cause);
    expect(t.before.map((l) => l.text)).toEqual(p.records.slice(Math.max(0, ci - 10), ci).map((x) => x.text));
    expect(t.cpu).toMatchObject({ index: p.crash.cpu, pid: p.crash.pid, comm: p.crash.comm, rip: p.crash.rip, rsp: p.crash.rsp });
    expect(t.cpu?.cr2).toBe(p.crash.cr2);
    if (p.crash.cr2 !== undefined) expect(t.cpu?.cr2From).toBe('Oops text');
    expect(t.cpuNotes).toBe(2);
    let ram = 0;
    let offline = 0;
    let hwpoison = 0;
    for (const run of runs) {
      if (!run.load) continue;
      ram += run.count;
      if (run.memmap === 'offline') offline += run.count;
      if (run.memmap === 'hwpoison') hwpoison += run.count;
    }
    expect(t.memory).toEqual({ pageSize: 4096, ramPages: ram, dataPages: ram, absentPages: 0, notRamPages: Math.max(...header.loads.map((l) => l.end)) - ram, offlinePages: offline, hwpoisonPages: hwpoison });
    expect(t.dump).toEqual({ format: 'elf', level: undefined, filtered: false, tool: "the kernel's /proc/vmcore (kexec), or a copy of it", compression: undefined });
    expect(t.log).toEqual({ format: p.format, records: p.records.length, lost: p.format === 'lockless' ? p.lost : undefined, inFlight: p.inFlight, warnings: [] });
    if (kernel !== '4.19') expect(offline).toBeGreaterThan(0);

    // The text is one screen, and names what the truth says.
    const text = renderInfo(r);
    const summary = text.slice(text.indexOf('Crash summary:'), text.indexOf('\nHeader:'));
    expect(summary.split('\n').length).toBeLessThanOrEqual(25);
    expect(summary).toContain(p.crash.panic);
    expect(summary).toContain(`RIP ${p.crash.rip.toString(16).padStart(16, '0')}`);

    // After filtering: the same crash, the dump level, fewer pages with data, offline pages still counted.
    const kd = dir.file(`t-${kernel}-${seed}.kdump`);
    await filterDump({ input: img, output: kd, dumpLevel: 31, codec: 'zlib' });
    const f = (await inspectDump(kd)).triage!;
    expect([f.panic, f.cause, f.cpu, f.uptime]).toEqual([t.panic, t.cause, t.cpu, t.uptime]);
    expect(f.dump).toMatchObject({ format: 'kdump', level: 31, filtered: true, compression: 'zlib' });
    const present = await presentPfns(kd);
    const data = present.reduce((a, b) => a + b, 0);
    expect(f.memory).toMatchObject({ ramPages: ram, dataPages: data, absentPages: ram - data, offlinePages: offline, hwpoisonPages: hwpoison });
  }, 60_000);

  it('a dump without a kernel log still gets a summary, saying why', async () => {
    const img = await makeGuest(dir, 'nolog.vmcore', { scenario: 'plain', size: 64 << 20, seed: 1, kernel: '6.1' });
    const { readFile, writeFile } = await import('node:fs/promises');
    const b = await readFile(img);
    b.write('SYMBOL(xrb)=', b.indexOf('SYMBOL(prb)='), 'latin1');
    await writeFile(img, b);
    const r = await inspectDump(img);
    expect(r.triage?.logError).toMatch(/VMCOREINFO has neither SYMBOL\(prb\) nor SYMBOL\(log_buf\)/);
    expect(r.triage?.panic).toBeUndefined();
    expect(renderInfo(r)).toMatch(/\n  panic +unknown: the kernel log cannot be read\n/);
  }, 60_000);
});
