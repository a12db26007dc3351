import { describe, expect, it } from 'vitest';
import { Decider } from '../../src/classify/decide.js';
import { Reason, REASON_NAMES } from '../../src/classify/reasons.js';
import { NO_ORDER, Prop, PropWindow } from '../../src/kernel/props.js';
import { PfnState } from '../../src/formats/types.js';

interface P {
  props?: number;
  corder?: number;
  border?: number;
  state?: number;
}

function run(level: number, pages: P[], windowSize = pages.length): string[] {
  const d = new Decider(level, 11);
  const out: string[] = [];
  for (let w = 0; w < pages.length; w += windowSize) {
    const slice = pages.slice(w, w + windowSize);
    const win = new PropWindow(slice.length);
    win.reset(w, slice.length);
    const states = new Uint8Array(slice.length);
    slice.forEach((p, i) => {
      win.props[i] = p.props ?? 0;
      win.compoundOrder[i] = p.corder ?? 0;
      win.buddyOrder[i] = p.border ?? 0;
      states[i] = p.state ?? PfnState.PRESENT;
    });
    const reasons = new Uint8Array(slice.length);
    d.decide(states, win, w, slice.length, reasons);
    out.push(...[...reasons].map((r) => REASON_NAMES[r]!));
  }
  return out;
}

const plain: P = {};
const cache: P = { props: Prop.CACHE };
const cachePriv: P = { props: Prop.CACHE | Prop.PRIVATE };
const anon: P = { props: Prop.ANON | Prop.CACHE };
const offline: P = { props: Prop.OFFLINE };
const hwpoison: P = { props: Prop.HWPOISON };
const buddy = (order: number): P => ({ props: Prop.BUDDY, border: order });

describe('Decider: makedumpfile first-match rules', () => {
  it('excludes offline and hwpoison pages at every level, the rest only by level', () => {
    const pages = [plain, cache, cachePriv, anon, offline, hwpoison];
    expect(run(0, pages)).toEqual(['kept', 'kept', 'kept', 'kept', 'offline', 'hwpoison']);
    expect(run(2, pages)).toEqual(['kept', 'cache', 'kept', 'kept', 'offline', 'hwpoison']);
    expect(run(4, pages)).toEqual(['kept', 'cache', 'cache-private', 'kept', 'offline', 'hwpoison']);
    expect(run(8, pages)).toEqual(['kept', 'kept', 'kept', 'user', 'offline', 'hwpoison']);
  });

  it('counts a cache page with PG_private at -d 6 as private cache, and anon LRU pages never as cache', () => {
    expect(run(6, [cachePriv, anon])).toEqual(['cache-private', 'kept']);
  });

  it('first match wins: a hwpoisoned cache page is cache at -d 2 and hwpoison at -d 0', () => {
    const p: P = { props: Prop.CACHE | Prop.HWPOISON };
    expect(run(2, [p])).toEqual(['cache']);
    expect(run(0, [p])).toEqual(['hwpoison']);
  });

  it('free blocks take 1 << order pages from the head, whatever the tails say', () => {
    const pages = [buddy(2), cache, offline, plain, plain];
    expect(run(16, pages)).toEqual(['free', 'free', 'free', 'free', 'kept']);
    expect(run(0, pages)).toEqual(['kept', 'kept', 'offline', 'kept', 'kept']);
  });

  it('keeps a buddy head with an out-of-range order (as makedumpfile warns and keeps)', () => {
    expect(run(16, [{ props: Prop.BUDDY, border: NO_ORDER }, plain])).toEqual(['kept', 'kept']);
  });

  it('carries a range across windows and never turns holes into exclusions', () => {
    const pages = [plain, plain, plain, buddy(2), plain, { state: PfnState.HOLE }, plain, plain, plain, plain];
    expect(run(16, pages, 4)).toEqual(['kept', 'kept', 'kept', 'free', 'free', 'hole', 'free', 'kept', 'kept', 'kept']);
  });

  it('compound tails are only excluded through their head', () => {
    const head: P = { props: Prop.HEAD | Prop.ANON, corder: 2 };
    const tail: P = { props: Prop.TAIL };
    expect(run(8, [head, tail, tail, tail, tail])).toEqual(['user', 'user', 'user', 'user', 'kept']);
    expect(run(0, [head, tail, { props: Prop.TAIL | Prop.OFFLINE }, tail])).toEqual(['kept', 'kept', 'kept', 'kept']);
  });

  it('a hugetlb head is user data at -d 8 even without an anon mapping', () => {
    expect(run(8, [{ props: Prop.HEAD | Prop.HUGETLB, corder: 1 }, { props: Prop.TAIL }])).toEqual(['user', 'user']);
  });

  it('pages without data in the input stay absent', () => {
    expect(run(31, [{ state: PfnState.ABSENT, props: Prop.OFFLINE }, { ...buddy(1) }, { state: PfnState.ABSENT }])).toEqual(['absent', 'free', 'absent']);
  });

  it('counts offline pages found by fallback decoding', () => {
    const d = new Decider(0, 11);
    const win = new PropWindow(2);
    win.reset(0, 2);
    win.props[0] = Prop.OFFLINE_FALLBACK;
    const out = new Uint8Array(2);
    d.decide(new Uint8Array([2, 2]), win, 0, 2, out);
    expect(out[0]).toBe(Reason.OFFLINE);
    expect(d.stats.offlineFallback).toBe(1);
  });

  it('unaccepted memory at -d 16 takes a MAX_ORDER block', () => {
    const pages: P[] = [{ props: Prop.UNACCEPTED }, ...Array.from({ length: 1100 }, () => plain)];
    const r = run(16, pages);
    expect(r.slice(0, 1024).every((x) => x === 'unaccepted')).toBe(true);
    expect(r[1024]).toBe('kept');
  });
});
