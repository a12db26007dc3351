import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { DumpError, InputError, UsageError } from '../../src/core/errors.js';
import { oracleFromSpec, oracleFromSpecs } from '../../src/ram/chain.js';
import { ChainOracle, VirtioMemModel, XenHvmModel, XenPvModel } from '../../src/ram/models.js';
import { tempDir, type TempDir } from '../helpers/guests.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-oracle-');
});
afterAll(() => dir.remove());

async function file(name: string, text: string): Promise<string> {
  const p = dir.file(name);
  await writeFile(p, text);
  return p;
}

describe('models answer for runs with the kernel callbacks semantics', () => {
  it('Xen HVM: mmio_dm is not RAM; ram_rw and ram_ro are; unlisted pfns are mmio_dm', async () => {
    const p = await file('hvm', 'dumpsieve-xen-hvm-memtypes 1\n0x0 0x10 ram_rw\n0x10 0x8 mmio_dm\n0x20 0x4 ram_ro\n');
    const o = await oracleFromSpec(`xen-hvm:${p}`);
    expect(o.span(0, 100)).toEqual({ ram: true, count: 16 });
    expect(o.span(0x12, 100)).toEqual({ ram: false, count: 6 });
    expect(o.span(0x18, 100)).toEqual({ ram: false, count: 8 }); // gap, then ram_ro at 0x20
    expect(o.span(0x20, 0x22)).toEqual({ ram: true, count: 2 });
    expect(o.callsFor!(0, 10)).toBe(10); // one hypercall per pfn
  });

  it('Xen PV: INVALID_P2M_ENTRY is not RAM, frames are, pfns at or beyond p2m-size are identity', async () => {
    const p = await file('p2m', 'dumpsieve-xen-pv-p2m 1\np2m-size 0x100\n0x0 0x80 mfn 0x1000\n0x80 0x10 invalid\n0x90 0x10 identity\n');
    const o = await oracleFromSpec(`xen-pv:${p}`);
    expect(o.span(0x10, 0x1000).ram).toBe(true);
    expect(o.span(0x80, 0x1000)).toEqual({ ram: false, count: 0x10 });
    expect(o.span(0x90, 0x1000).ram).toBe(true);
    expect(o.span(0xa0, 0x1000)).toEqual({ ram: false, count: 0x60 }); // below p2m-size, not listed: invalid
    expect(o.span(0x100, 0x1000).ram).toBe(true);
  });

  it('virtio-mem: judged only inside the device; one request per device block', async () => {
    const p = await file('vm', 'dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x8000000 0x200000\nplugged 0 0x100000000 0x400000\nplugged 0 0x100800000 0x200000\n');
    const o = (await oracleFromSpec(`virtio-mem:${p}`)) as VirtioMemModel;
    const base = 0x100000000 / 4096;
    expect(o.span(base - 10, base + 10)).toEqual({ ram: true, count: 10 });
    expect(o.span(base, base + 0x8000)).toEqual({ ram: true, count: 1024 });
    expect(o.span(base + 1024, base + 0x8000)).toEqual({ ram: false, count: 1024 });
    expect(o.inDevice(base - 1)).toBe(false);
    expect(o.inDevice(base)).toBe(true);
    expect(o.callsFor(base, base + 1024)).toBe(2); // two 2 MiB blocks
    expect(o.callsFor(base + 511, base + 513)).toBe(2);
    expect(o.callsFor(0, 10)).toBe(0);
  });

  it('chain (5.16+): any "not RAM" wins, and the answer holds as long as it is true', () => {
    const a = new XenHvmModel('a', [{ start: 0, end: 100, type: 'ram_rw' }, { start: 100, end: 120, type: 'mmio_dm' }]);
    const b = new XenPvModel('b', [{ start: 0, end: 50, kind: 'valid' }, { start: 50, end: 110, kind: 'invalid' }, { start: 110, end: 1000, kind: 'valid' }]);
    const c = new ChainOracle([a, b], 'list');
    expect(c.span(0, 1000)).toEqual({ ram: true, count: 50 });
    expect(c.span(50, 1000)).toEqual({ ram: false, count: 60 }); // b says not RAM to 110
    expect(c.span(105, 1000)).toEqual({ ram: false, count: 15 }); // a to 120, b to 110: longest
    expect(c.span(120, 1000)).toEqual({ ram: true, count: 880 });
  });

  it('legacy hook (up to 5.15): one model only, and no virtio-mem', async () => {
    const h = await file('h1', 'dumpsieve-xen-hvm-memtypes 1\n0x0 0x10 ram_rw\n');
    const v = await file('v1', 'dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x8000000 0x200000\n');
    await expect(oracleFromSpecs([`xen-hvm:${h}`, `xen-hvm:${h}`], 'legacy')).rejects.toThrow(/single pfn_is_ram hook/);
    await expect(oracleFromSpecs([`virtio-mem:${v}`], 'legacy')).rejects.toThrow(/only from Linux 5.16/);
    expect((await oracleFromSpecs([`xen-hvm:${h}`], 'legacy')).name).toBe(`xen-hvm:${h}`);
  });

  it('a user module implementing the interface', async () => {
    const m = await file('oracle.mjs', 'export default { name: "mine", span: (pfn, limit) => ({ ram: pfn % 2 === 0, count: 1 }), callsFor: (s, e) => 7 };\n');
    const o = await oracleFromSpec(`module:${m}`);
    expect(o.name).toBe('mine');
    expect(o.span(2, 10)).toEqual({ ram: true, count: 1 });
    expect(o.span(3, 10)).toEqual({ ram: false, count: 1 });
    expect(o.callsFor!(0, 5)).toBe(7);
    const bad = await file('bad.mjs', 'export default { span: () => ({ ram: "yes" }) };\n');
    const o2 = await oracleFromSpec(`module:${bad}`);
    expect(() => o2.span(0, 1)).toThrow(InputError);
  });
});

describe('bad oracle input: one line naming the file and line', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unsorted', 'dumpsieve-xen-hvm-memtypes 1\n0x10 0x10 ram_rw\n0x0 0x10 ram_rw\n', /line 3: run at 0x0 overlaps or precedes the previous run/],
    ['overlap', 'dumpsieve-backed-ranges 1\n0x0 0x10\n0x8 0x10\n', /line 3: run at 0x8 overlaps or precedes/],
    ['bad type', 'dumpsieve-xen-hvm-memtypes 1\n# comment\n0x0 0x10 ram_xx\n', /line 3: memory type 'ram_xx' is not one of/],
    ['wrong magic', 'hello\n', /line 1: not a dumpsieve-xen-hvm-memtypes file/],
  ];
  for (const [name, text, re] of cases) {
    it(name, async () => {
      const p = await file(`bad-${name.replace(' ', '-')}`, text);
      const kind = text.startsWith('dumpsieve-backed') ? 'ranges' : 'xen-hvm';
      const err = await oracleFromSpec(`${kind}:${p}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as DumpError).message.startsWith(`${p}: `)).toBe(true);
      expect((err as DumpError).message).toMatch(re);
    });
  }
  it('an unknown model or a missing file argument is a usage error', async () => {
    await expect(oracleFromSpec('hyperv:x')).rejects.toBeInstanceOf(UsageError);
    await expect(oracleFromSpec('xen-hvm')).rejects.toThrow(/needs a file/);
    const missing = await oracleFromSpec(`ranges:${dir.file('nope')}`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InputError);
    expect((missing as DumpError).message).toMatch(/nope: cannot read/);
  });
});

describe('hypercall and device errors', () => {
  it('Xen HVM: a failing HVMOP_get_mem_type counts as RAM; virtio-mem: a failing request counts as not RAM', async () => {
    const h = await file('hvm-err', 'dumpsieve-xen-hvm-memtypes 1\n0x0 0x10 ram_rw\n0x10 0x10 error\n0x20 0x10 mmio_dm\n');
    const xo = await oracleFromSpec(`xen-hvm:${h}`);
    expect(xo.span(0x10, 0x100)).toEqual({ ram: true, count: 0x10 });
    expect(xo.span(0x20, 0x100).ram).toBe(false);
    const v = await file('vm-err', 'dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x800000 0x200000\nplugged 0 0x100000000 0x400000\nerror 0 0x100200000 0x200000\n');
    const vo = await oracleFromSpec(`virtio-mem:${v}`);
    const base = 0x100000000 / 4096;
    expect(vo.span(base, base + 2048)).toEqual({ ram: true, count: 512 });
    expect(vo.span(base + 512, base + 2048)).toEqual({ ram: false, count: 512 }); // plugged but erroring: not RAM
    expect(vo.span(base + 1024, base + 2048)).toEqual({ ram: false, count: 1024 }); // unplugged
  });
});
