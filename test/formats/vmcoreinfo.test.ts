import { describe, expect, it } from 'vitest';
import { DumpError } from '../../src/core/errors.js';
import { VmcoreInfo } from '../../src/formats/vmcoreinfo.js';

const TEXT = [
  'OSRELEASE=6.12.0',
  'PAGESIZE=4096',
  'SYMBOL(init_top_pgt)=ffffffff82a10000',
  'OFFSET(page._mapcount)=48',
  'SIZE(page)=64',
  'LENGTH(zone.free_area)=11',
  'NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)=-251658240',
  'NUMBER(kimage_voffset)=0xffff7fff7d600000',
  'KERNELOFFSET=1e000000',
  'CRASHTIME=1700000000',
  'garbage line',
  'NUMBER(phys_base)=0',
  'NUMBER(phys_base)=2097152',
  '',
].join('\n');

describe('VmcoreInfo', () => {
  const vi = VmcoreInfo.parse(Buffer.concat([Buffer.from(TEXT), Buffer.alloc(7)]), { file: 'vmcore', offset: 0x200 });

  it('types every key kind', () => {
    expect(vi.osrelease).toBe('6.12.0');
    expect(vi.pageSize).toBe(4096);
    expect(vi.symbol('init_top_pgt')).toBe(0xffffffff82a10000n);
    expect(vi.offset('page._mapcount')).toBe(48);
    expect(vi.sizeOf('page')).toBe(64);
    expect(vi.length('zone.free_area')).toBe(11);
    expect(vi.number('PAGE_OFFLINE_MAPCOUNT_VALUE')).toBe(-251658240);
    expect(vi.numberBig('kimage_voffset')).toBe(0xffff7fff7d600000n);
    expect(vi.kernelOffset).toBe(0x1e000000n);
    expect(vi.crashTime).toBe(1700000000);
    expect(vi.malformedLines).toBe(1);
  });

  it('takes the last of duplicate keys', () => {
    expect(vi.number('phys_base')).toBe(2097152);
  });

  it('refuses a NUMBER beyond 2^53 as a number', () => {
    expect(() => vi.number('kimage_voffset')).toThrow(/beyond 2\^53/);
  });

  it('names the missing key and what it was needed for', () => {
    try {
      vi.requireOffset('page.private', 'free pages');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DumpError);
      expect((err as DumpError).code).toBe('VMCOREINFO_MISSING');
      expect((err as DumpError).message).toBe('vmcore: offset 0x200: VMCOREINFO has no OFFSET(page.private), needed for free pages');
    }
  });

  it('rejects malformed values with the key in the message', () => {
    const bad = VmcoreInfo.parse('SIZE(page)=sixty-four\nSYMBOL(x)=zz\nNUMBER(y)=1e3\n');
    expect(() => bad.sizeOf('page')).toThrow(/SIZE\(page\) is 'sixty-four'/);
    expect(() => bad.symbol('x')).toThrow(/SYMBOL\(x\)/);
    expect(() => bad.number('y')).toThrow(/NUMBER\(y\)/);
  });

  it('bounds the text size', () => {
    expect(() => VmcoreInfo.parse(new Uint8Array((1 << 20) + 1))).toThrow(/above/);
  });
});
