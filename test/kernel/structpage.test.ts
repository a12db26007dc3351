import { describe, expect, it } from 'vitest';
import { StructPageDecoder } from '../../src/kernel/structpage.js';
import { Prop, PropWindow } from '../../src/kernel/props.js';
import { matcherFor } from '../../src/kernel/pagetypes.js';
import { VmcoreInfo } from '../../src/formats/vmcoreinfo.js';
import { ERAS, encodePages, vmcoreinfoFor, type Era, type State } from './eras.js';

function decode(era: Era, states: State[], firstPfn = 1024): PropWindow {
  const d = new StructPageDecoder(vmcoreinfoFor(era), 'vmcore');
  const win = new PropWindow(states.length);
  win.reset(firstPfn, states.length);
  d.decode(encodePages(era, states, firstPfn), 0, firstPfn, states.length, win, 0);
  return win;
}

describe('page-type matchers from exported values', () => {
  it('recognise the encoding from the value shape', () => {
    expect(matcherFor(-129).encoding).toBe('bits (base 0xf0000000)');
    expect(matcherFor(-1073741825).encoding).toBe('bits (base 0x80000000)');
    expect(matcherFor(-251658240).encoding).toBe('top byte (PGTY)');
    expect(matcherFor(-128).encoding).toBe('exact');
  });
});

describe.each(ERAS)('struct page decoding, era $name', (era) => {
  it('finds offline pages (by key, or by fallback where the key is missing)', () => {
    const w = decode(era, [{ kind: 'kernel' }, { kind: 'offline' }, { kind: 'buddy-head', order: 3 }]);
    const offlineBit = era.offlineKey !== undefined ? Prop.OFFLINE : Prop.OFFLINE_FALLBACK;
    expect(w.props[0]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)).toBe(0);
    expect(w.props[1]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)).toBe(offlineBit);
    expect(w.props[1]! & Prop.BUDDY).toBe(0);
    expect(w.props[2]! & Prop.BUDDY).toBe(Prop.BUDDY);
    expect(w.props[2]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)).toBe(0);
    expect(w.buddyOrder[2]).toBe(3);
    const d = new StructPageDecoder(vmcoreinfoFor(era), 'vmcore');
    expect(d.offlineDetection).toBe(era.offlineKey !== undefined ? 'vmcoreinfo' : 'fallback');
  });

  it('never takes slab pages for buddy or offline, even with look-alike _mapcount', () => {
    const w = decode(era, [{ kind: 'slab', mapcount: era.buddy }, { kind: 'slab', mapcount: era.offlinePage }, { kind: 'slab' }]);
    for (let i = 0; i < 3; i++) {
      expect(w.props[i]! & Prop.SLAB).toBe(Prop.SLAB);
      expect(w.props[i]! & (Prop.BUDDY | Prop.OFFLINE | Prop.OFFLINE_FALLBACK)).toBe(0);
    }
  });

  it('tells cache, private cache, swap cache, anon and hwpoison apart', () => {
    const w = decode(era, [{ kind: 'cache' }, { kind: 'cache-private' }, { kind: 'swapcache' }, { kind: 'anon' }, { kind: 'hwpoison' }, { kind: 'reserved' }]);
    expect(w.props[0]! & (Prop.CACHE | Prop.PRIVATE | Prop.ANON)).toBe(Prop.CACHE);
    expect(w.props[1]! & (Prop.CACHE | Prop.PRIVATE | Prop.ANON)).toBe(Prop.CACHE | Prop.PRIVATE);
    expect(w.props[2]! & Prop.CACHE).toBe(Prop.CACHE);
    expect(w.props[3]! & Prop.ANON).toBe(Prop.ANON);
    expect(w.props[4]! & Prop.HWPOISON).toBe(Prop.HWPOISON);
    expect(w.props[5]! & (Prop.CACHE | Prop.ANON | Prop.HWPOISON)).toBe(0);
  });

  it('reads compound heads: order from the first tail, hugetlb by the era scheme, tails marked', () => {
    const order = 9;
    const n = 1 << order;
    const states: State[] = [{ kind: 'huge-head', hugetlb: true, order, anon: false }];
    for (let i = 1; i < n; i++) states.push({ kind: 'tail', head: 1024, first: i === 1, order, hugetlb: true });
    states.push({ kind: 'huge-head', hugetlb: false, order, anon: true });
    for (let i = 1; i < n; i++) states.push({ kind: 'tail', head: 1024 + n, first: i === 1, order, hugetlb: false });
    const w = decode(era, states, 1024);
    expect(w.props[0]! & Prop.HEAD).toBe(Prop.HEAD);
    expect(w.compoundOrder[0]).toBe(order);
    expect(w.props[0]! & Prop.HUGETLB).toBe(era.hugetlb.kind === 'none' ? 0 : Prop.HUGETLB);
    expect(w.props[1]! & Prop.TAIL).toBe(Prop.TAIL);
    expect(w.props[n - 1]! & Prop.TAIL).toBe(Prop.TAIL);
    expect(w.compoundOrder[n]).toBe(order);
    expect(w.props[n]! & (Prop.HUGETLB | Prop.ANON)).toBe(Prop.ANON);
  });

  it('ignores a compound order that does not fit the alignment, and a head in the last slot of a 512 block', () => {
    const states: State[] = [{ kind: 'huge-head', hugetlb: false, order: 9, anon: true }, { kind: 'tail', head: 1025, first: true, order: 9, hugetlb: false }];
    const w = decode(era, states, 1025); // pfn 1025 is not 512-aligned
    expect(w.compoundOrder[0]).toBe(0);
    const w2 = decode(era, [{ kind: 'huge-head', hugetlb: false, order: 0, anon: true }, { kind: 'tail', head: 1535, first: true, order: 0, hugetlb: false }], 1535);
    expect(w2.compoundOrder[0]).toBe(0);
  });
});

describe.each(ERAS)('struct page words, era $name', (era) => {
  it('decodes a buffer at an odd byte offset as it decodes an aligned one', () => {
    const states: State[] = [
      { kind: 'kernel' }, { kind: 'reserved' }, { kind: 'buddy-head', order: 2 }, { kind: 'offline' }, { kind: 'slab' },
      { kind: 'anon' }, { kind: 'cache' }, { kind: 'cache-private' }, { kind: 'swapcache' }, { kind: 'hwpoison' },
      { kind: 'huge-head', hugetlb: true, order: 1, anon: false }, { kind: 'tail', head: 1034, first: true, order: 1, hugetlb: true },
    ];
    const aligned = decode(era, states, 1024);
    const bytes = encodePages(era, states, 1024);
    const odd = new Uint8Array(bytes.length + 3);
    odd.set(bytes, 3);
    const d = new StructPageDecoder(vmcoreinfoFor(era), 'vmcore');
    const w = new PropWindow(states.length);
    w.reset(1024, states.length);
    d.decode(odd, 3, 1024, states.length, w, 0);
    expect([...w.props]).toEqual([...aligned.props]);
    expect([...w.compoundOrder]).toEqual([...aligned.compoundOrder]);
    expect([...w.buddyOrder]).toEqual([...aligned.buddyOrder]);
    expect(aligned.props[3]! & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)).not.toBe(0);
    expect(aligned.props[9]! & Prop.HWPOISON).toBe(Prop.HWPOISON);
  });
});

describe('owner bits and overlaps', () => {
  it('6.12: an offline page with owner bits in the low 24 bits is still offline (top-byte match)', () => {
    const d = new StructPageDecoder(vmcoreinfoFor(ERAS.find((e) => e.name === '6.12')!), 'vmcore');
    const buf = encodePages(ERAS.find((e) => e.name === '6.12')!, [{ kind: 'offline' }], 0);
    new DataView(buf.buffer).setInt32(48, 0xf1000123 | 0, true);
    const w = new PropWindow(1);
    w.reset(0, 1);
    d.decode(buf, 0, 0, 1, w, 0);
    expect(w.props[0]! & Prop.OFFLINE).toBe(Prop.OFFLINE);
  });

  it('5.10: a page_type with two types at once is flagged as an overlap', () => {
    const era = ERAS.find((e) => e.name === '5.10')!;
    const d = new StructPageDecoder(vmcoreinfoFor(era), 'vmcore');
    const buf = encodePages(era, [{ kind: 'offline' }], 0);
    new DataView(buf.buffer).setInt32(48, ~(0x80 | 0x100), true); // buddy and offline bits both cleared
    const w = new PropWindow(1);
    w.reset(0, 1);
    d.decode(buf, 0, 0, 1, w, 0);
    expect(w.props[0]! & Prop.TYPE_OVERLAP).toBe(Prop.TYPE_OVERLAP);
  });

  it('refuses offsets outside struct page', () => {
    const vi = VmcoreInfo.parse('SIZE(page)=64\nOFFSET(page.flags)=0\nOFFSET(page._mapcount)=62\n');
    expect(() => new StructPageDecoder(vi, 'vmcore')).toThrow(/OFFSET\(page._mapcount\)=62 lies outside SIZE\(page\)=64/);
  });

  it('refuses a field offset that is not a multiple of 4', () => {
    const vi = VmcoreInfo.parse('SIZE(page)=64\nOFFSET(page.flags)=0\nOFFSET(page.mapping)=26\n');
    expect(() => new StructPageDecoder(vi, 'vmcore')).toThrow(/OFFSET\(page.mapping\)=26 is not a multiple of 4/);
  });

  it('names what a dump level needs and lacks', () => {
    const vi = VmcoreInfo.parse('SIZE(page)=64\nOFFSET(page.flags)=0\nOFFSET(page.mapping)=24\n');
    const d = new StructPageDecoder(vi, 'vmcore');
    expect(d.missingFor(1)).toEqual([]);
    expect(d.missingFor(2).join()).toMatch(/NUMBER\(PG_lru\)/);
    expect(d.missingFor(16).join()).toMatch(/PAGE_BUDDY_MAPCOUNT_VALUE/);
  });
});
