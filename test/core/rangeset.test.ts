import { describe, expect, it } from 'vitest';
import { RangeSet, RangeSetBuilder } from '../../src/core/rangeset.js';

const rs = (...r: Array<[number, number]>): RangeSet => RangeSet.from(r.map(([start, end]) => ({ start, end })));

describe('RangeSet', () => {
  it('normalises overlapping, touching and unsorted ranges', () => {
    const s = rs([10, 20], [0, 5], [5, 7], [15, 30], [40, 40]);
    expect(s.toJSON()).toEqual([
      [0, 7],
      [10, 30],
    ]);
    expect(s.size).toBe(27);
  });

  it('answers membership and spans by binary search', () => {
    const s = rs([0, 7], [10, 30]);
    expect(s.has(6)).toBe(true);
    expect(s.has(7)).toBe(false);
    expect(s.has(10)).toBe(true);
    expect(s.has(30)).toBe(false);
    expect(s.span(3)).toEqual({ inside: true, end: 7 });
    expect(s.span(8)).toEqual({ inside: false, end: 10 });
    expect(s.span(8, 9)).toEqual({ inside: false, end: 9 });
    expect(s.span(31).inside).toBe(false);
    expect(s.span(31).end).toBe(Number.POSITIVE_INFINITY);
  });

  it('clips, counts, intersects and subtracts', () => {
    const a = rs([0, 10], [20, 30]);
    const b = rs([5, 25]);
    expect(a.countWithin(8, 22)).toBe(4);
    expect(a.intersect(b).toJSON()).toEqual([
      [5, 10],
      [20, 25],
    ]);
    expect(a.subtract(b).toJSON()).toEqual([
      [0, 5],
      [25, 30],
    ]);
    expect(b.subtract(a).toJSON()).toEqual([[10, 20]]);
    expect(a.union(b).toJSON()).toEqual([[0, 30]]);
    expect([...a.within(8, 22)]).toEqual([
      { start: 8, end: 10 },
      { start: 20, end: 22 },
    ]);
  });

  it('builder merges in-order ranges and refuses out-of-order ones', () => {
    const b = new RangeSetBuilder();
    b.add(0, 2);
    b.add(2, 4);
    b.add(3, 5);
    b.add(9, 10);
    expect(b.build().toJSON()).toEqual([
      [0, 5],
      [9, 10],
    ]);
    expect(() => b.add(1, 2)).toThrow(RangeError);
  });

  it('describes itself briefly', () => {
    expect(rs([0x10, 0x20], [0x30, 0x31]).describe()).toBe('[0x10, 0x20) [0x30, 0x31)');
  });
});
